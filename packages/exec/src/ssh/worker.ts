import type { Readable } from "node:stream";
import { type FollowOptions, type FollowResult, remoteFailure, StreamCut, type WorkerBackend } from "../backend.ts";
import { PError, problem } from "../errors.ts";
import {
  FOLLOW_MARK,
  type FollowStatus,
  parseFollowStatus,
  parseLeftovers,
  parseProbe,
  parseSizes,
  parseStatusReport,
  parseStopReport,
  QUEUED_MARK,
  type RemoteState,
  SCRIPT_EXIT,
  STATUS_MARK,
  type StopReport,
  SUBMITTED_MARK,
} from "../protocol/protocol.ts";
import {
  followCommand,
  inputCommand,
  type LaunchSpec,
  launchCommand,
  probeCommand,
  type RemoveOptions,
  removeCommand,
  secretInput,
  statusCommand,
  stopCommand,
} from "../protocol/scripts.ts";
import type { Connection, RemoteCommand } from "./connect.ts";

/** A launch sent ahead (see WorkerBackend.sendAhead): its command, started and waiting. */
interface Ahead {
  follow: boolean;
  started: Promise<RemoteCommand>;
}

/**
 * A worker reached over SSH: it runs each job itself (see launch.sh), or, a Slurm login
 * node, submits the jobs whose spec says so to Slurm (see slurm.sh); both keep their jobs
 * under the worker's root.
 */
export class SshWorker implements WorkerBackend {
  constructor(
    readonly conn: Connection,
    /** The worker's name, for messages. */
    readonly name: string,
    /** Where p keeps its files on the worker (see layout.ts); ~/.p if none. */
    readonly root?: string,
  ) {}

  private readonly ahead = new Map<string, Ahead>();

  sendAhead(spec: LaunchSpec, follow: boolean): void {
    const started = this.conn.exec(launchCommand(spec, follow, this.root, true));
    started.then(
      ({ channel }) => {
        const secrets = secretInput(spec);
        if (secrets) channel.write(secrets);
      },
      () => {}, // (said by launch or start, which take it up)
    );
    this.ahead.set(spec.id, { follow, started });
  }

  withdraw(id: string): void {
    const ahead = this.ahead.get(id);
    this.ahead.delete(id);
    // (its stdin ends before "go": it leaves at once, having done nothing)
    ahead?.started.then(
      ({ channel }) => channel.end(),
      () => {},
    );
  }

  /**
   * The launch of `spec` sent ahead, told to go, if one was sent detached as `follow` says
   * (one sent otherwise is called off: the launch is made afresh).
   */
  private go(spec: LaunchSpec, follow: boolean): Promise<RemoteCommand> | undefined {
    const ahead = this.ahead.get(spec.id);
    if (!ahead || ahead.follow !== follow) {
      this.withdraw(spec.id);
      return undefined;
    }
    this.ahead.delete(spec.id);
    return ahead.started.then((command) => {
      // a detached launch reads nothing more; a followed one's stdin stays open, its end
      // telling the worker the client has gone
      if (follow) command.channel.write("go\n");
      else command.channel.end("go\n");
      return command;
    });
  }

  async launch(spec: LaunchSpec): Promise<RemoteState | undefined> {
    const secrets = secretInput(spec);
    const ahead = this.go(spec, false);
    const r = ahead
      ? await this.conn.collect(await ahead)
      : await this.conn.run(launchCommand(spec, false, this.root), secrets || undefined);
    if (r.code === null && r.signal === undefined)
      throw new PError(
        "connection_lost",
        problem(
          `lost the connection to ${this.name} while starting job ${spec.id.slice(0, 8)}`,
          undefined,
          "it may or may not have started: p ls shows what the worker says",
        ),
      );
    if (r.code !== 0) throw remoteFailure("", r.stderr, r.code, r.signal);
    return parseStatusReport(r.stdout).get(spec.id);
  }

  start(spec: LaunchSpec, opts: FollowOptions): Promise<FollowResult> {
    const ahead = this.go(spec, true);
    const command = ahead ?? launchCommand(spec, true, this.root);
    const { input, ...rest } = opts;
    // (sent with the launch: it waits for the job there)
    const passing = input && spec.input ? this.passInput(spec.id, input) : undefined;
    const followed = this.followWith(command, spec.id, { ...rest, offset: 0 }, ahead ? "" : secretInput(spec));
    // (the job has ended, or p goes: what is left of its input is not read)
    return followed.finally(() => passing?.then((passed) => passed?.channel.end()));
  }

  /**
   * Pass `input` on to job `id`'s stdin (see input.sh), as the job reads it: its end is the
   * end of the job's stdin. Where this fails, the job reads nothing (its runner waits 10 s).
   */
  private passInput(id: string, input: Readable): Promise<RemoteCommand | undefined> {
    return this.conn.exec(inputCommand(id, this.root)).then(
      (passed) => {
        const { channel } = passed;
        channel.on("error", () => {});
        // (the job stopped reading, or ended)
        channel.on("close", () => input.unpipe(channel));
        channel.resume();
        input.pipe(channel);
        return passed;
      },
      () => undefined,
    );
  }

  follow(id: string, opts: FollowOptions): Promise<FollowResult> {
    return this.followWith(followCommand(id, opts.offset, opts.follow ?? true, this.root), id, opts);
  }

  /** Stream to the end; GNU tail may quit before it has sent all a fast job wrote: fetch the rest. */
  private async followWith(
    command: string | Promise<RemoteCommand>,
    id: string,
    opts: FollowOptions,
    input = "",
  ): Promise<FollowResult> {
    const offset = opts.offset ?? 0;
    const progress = opts.progress ?? { bytes: 0 };
    let s = await this.stream(command, id, opts, progress, input);
    for (let tries = 0; offset + progress.bytes < s.size && tries < 5; tries++)
      s = await this.stream(followCommand(id, offset + progress.bytes, false, this.root), id, opts, progress);
    return s;
  }

  /**
   * One run of a follow script (or of one started already): stdout to `out` with
   * backpressure, until its status line.
   */
  private async stream(
    command: string | Promise<RemoteCommand>,
    id: string,
    opts: FollowOptions,
    progress: { bytes: number },
    input = "",
  ) {
    const { out } = opts;
    const { channel, ended } = await (typeof command === "string" ? this.conn.exec(command) : command);
    // stdin stays open: its end tells the worker the client has gone
    if (input) channel.write(input);
    return new Promise<FollowResult>((resolve, reject) => {
      let status: FollowStatus | undefined;
      let found = false;
      let pending = "";
      const diagnostics: string[] = [];
      channel.on("data", (d: Buffer) => {
        progress.bytes += d.length;
        if (!out.write(d)) {
          channel.pause();
          out.once("drain", () => channel.resume());
        }
      });
      channel.stderr.on("data", (d: Buffer) => {
        pending += d.toString();
        for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          if (line.startsWith(STATUS_MARK)) status = parseFollowStatus(line);
          else if (line === FOLLOW_MARK) {
            found = true;
            opts.onFound?.();
          } else if (line.startsWith(QUEUED_MARK)) opts.onQueued?.(line.slice(QUEUED_MARK.length));
          else if (line.startsWith(SUBMITTED_MARK)) opts.onSubmitted?.(line.slice(SUBMITTED_MARK.length));
          else diagnostics.push(line);
        }
      });
      void ended.then(({ code, signal }) => {
        if (pending) diagnostics.push(pending);
        if (status) return resolve({ ...status, bytes: progress.bytes, diagnostics });
        if (code === SCRIPT_EXIT.noJob)
          return reject(
            new PError(
              "job_not_found",
              found
                ? `job ${id.slice(0, 8)} was removed from ${this.name} while p followed it`
                : `no job ${id} on ${this.name}`,
            ),
          );
        if (code !== null || signal !== undefined)
          return reject(remoteFailure("", diagnostics.join("\n"), code, signal));
        reject(new StreamCut(found, progress.bytes, `lost the connection to ${this.name}`));
      });
    });
  }

  async status(ids: readonly string[]) {
    if (ids.length === 0) return new Map();
    const r = await this.conn.run(statusCommand(ids, this.root));
    if (r.code !== 0) throw remoteFailure(`cannot read the jobs' state on ${this.name}`, r.stderr, r.code, r.signal);
    return parseStatusReport(r.stdout);
  }

  async stop(id: string): Promise<StopReport> {
    const r = await this.conn.run(stopCommand(id, undefined, this.root));
    if (r.code === SCRIPT_EXIT.noJob)
      throw new PError("job_not_found", `job ${id.slice(0, 8)} is no longer on ${this.name}`);
    const report = r.code === 0 ? parseStopReport(r.stdout) : undefined;
    if (!report) throw remoteFailure(`cannot stop job ${id.slice(0, 8)} on ${this.name}`, r.stderr, r.code, r.signal);
    return report;
  }

  async remove(ids: readonly string[], opts: RemoveOptions = {}) {
    const r = await this.conn.run(removeCommand(ids, opts, this.root));
    if (r.code !== 0) throw remoteFailure(`cannot remove jobs on ${this.name}`, r.stderr, r.code, r.signal);
    return { sizes: parseSizes(r.stdout), leftovers: parseLeftovers(r.stdout) };
  }

  async probe(opts: { slurm?: boolean } = {}) {
    const r = await this.conn.run(probeCommand(this.root, opts.slurm));
    if (r.code !== 0) throw remoteFailure(`cannot probe ${this.name}`, r.stderr, r.code, r.signal);
    return parseProbe(r.stdout);
  }

  close(): void {
    this.conn.close();
  }
}
