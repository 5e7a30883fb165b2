import type { Readable } from "node:stream";
import type { ErrorCode } from "./errors.ts";
import { PError, problem } from "./errors.ts";
import type { FollowStatus, Probe, RemoteState, StopReport } from "./protocol/protocol.ts";
import type { LaunchSpec, RemoveOptions } from "./protocol/scripts.ts";

/** Where a followed job's output goes, with backpressure (process.stdout, a file, a test's sink). */
export interface OutputSink {
  write(chunk: Uint8Array): boolean;
  once(event: "drain", listener: () => void): unknown;
}

export interface FollowOptions {
  /** The byte of the log to start at. */
  offset?: number;
  /** Keep following until the job ends (else print what there is). */
  follow?: boolean;
  out: OutputSink;
  /** Bytes written to `out` so far, counted as they go: what was shown when a stream is cut. */
  progress?: { bytes: number };
  /** Told, after a launch, that the job waits in the worker's queue, and for what. */
  onQueued?: (waitingFor: string) => void;
  /** Told that the worker found the job (after a launch: that it has started). */
  onFound?: () => void;
  /** Told, after a launch on a Slurm worker, Slurm's id for the job. */
  onSubmitted?: (slurmJobId: string) => void;
  /** With a launch whose spec says `input`: what the job reads on its stdin, passed on as it reads it. */
  input?: Readable;
}

export interface FollowResult extends FollowStatus {
  /** Bytes written to `out`. */
  bytes: number;
  /** Lines the worker wrote to stderr that are not part of the protocol. */
  diagnostics: string[];
}

/**
 * A stream cut before the job's end was read. `confirmed`: the worker had found the job
 * (after a launch, it had started) before the cut.
 */
export class StreamCut extends PError {
  constructor(
    readonly confirmed: boolean,
    readonly bytes: number,
    why: string,
  ) {
    super("connection_lost", why);
  }
}

export interface Removal {
  /** Bytes each job held, for the jobs found (and removed unless a dry run). */
  sizes: Map<string, number>;
  /** What no job owns (with RemoveOptions.sweepDays). */
  leftovers: { path: string; bytes: number }[];
}

/**
 * The operations on the jobs of one kind of worker, over one connection. Each is one
 * remote invocation that nothing else can cut short. A second kind (a batch scheduler
 * behind a login node) is a second implementation of this interface.
 */
export interface WorkerBackend {
  /**
   * Send a job's launch ahead while its sync runs, so that the launch costs no round trip
   * once the sync has ended: the worker holds it until `launch` or `start` (detached as
   * `follow` says) takes it up with the same spec, or `withdraw` calls it off. Optional:
   * a backend without it launches when asked.
   */
  sendAhead?(spec: LaunchSpec, follow: boolean): void;
  /** Call off a launch sent ahead: nothing of it happens on the worker. */
  withdraw?(id: string): void;
  /** Record and start a job, detached; its state right after (running, or queued). */
  launch(spec: LaunchSpec): Promise<RemoteState | undefined>;
  /** Record and start a job, and follow it to its end, in one round trip. */
  start(spec: LaunchSpec, opts: FollowOptions): Promise<FollowResult>;
  /** A job's output (to its end with `follow`), and its status. */
  follow(id: string, opts: FollowOptions): Promise<FollowResult>;
  /** The state of many jobs at once. */
  status(ids: readonly string[]): Promise<Map<string, RemoteState>>;
  /** Stop a job and its whole process tree; says whether it had ended by itself. */
  stop(id: string): Promise<StopReport>;
  /** Measure and remove jobs (stopping running ones with `stop`), and sweep leftovers. */
  remove(ids: readonly string[], opts?: RemoveOptions): Promise<Removal>;
  /** What the worker has; with `slurm`, whether Slurm's tools are there and answer. */
  probe(opts?: { slurm?: boolean }): Promise<Probe>;
  close(): void;
}

/** An operation's failure, as a sentence with its code; `what` failed (or nothing, to say only why). */
export function remoteFailure(what: string, stderr: string, code: number | null, signal?: string): PError {
  const why =
    stderr.trim().split("\n").filter(Boolean).join("; ") ||
    (signal
      ? `the worker's shell was killed by SIG${signal}`
      : `the worker's shell exited with ${code ?? "no status"}`);
  const kind: ErrorCode = code === null && !signal ? "connection_lost" : "remote_failed";
  return new PError(kind, what ? problem(what, why) : why);
}
