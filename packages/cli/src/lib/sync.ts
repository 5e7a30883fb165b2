import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import {
  mirrorCommand,
  mirrorDir,
  mirrorFamily,
  parseConnection,
  shq,
  sshCommandArgv,
  sshTargetArgs,
  type Target,
  workDir,
} from "@p/exec";
import type { Worker } from "@p/store";
import {
  ignoredPaths,
  type Overlay,
  parentDir,
  planMirrorSync,
  planOverlaySync,
  planSync,
  type RunSyncOptions,
  repositoryOf,
  runSync,
  type SyncPlan,
  syncedFiles,
  worktreeOverlay,
} from "@p/sync";
import { rshFor, sshCommand } from "./workers.ts";

/** A destination as rsync and the remote shell take it: `~/x` is `x`, relative to the remote home. */
export const remotePath = (dest: string) => dest.replace(/^~\/?/, "") || ".";

/**
 * The plans that send `source` (what git would not ignore, plus .git) to `dest` on
 * `target`: one, or in a linked worktree (given its overlay) a second that sends its
 * repository as `.git/`, as a job gets it.
 */
export async function planSyncTo(source: string, target: Target, dest: string, overlay?: Overlay) {
  const path = remotePath(dest);
  const files = await syncedFiles(source);
  const plans: SyncPlan[] = [
    planSync({
      source,
      host: target.host,
      dest: path,
      rsh: rshFor(target),
      // the destination's parents may not exist yet on a new worker
      rsyncPath: `mkdir -p ${shq(parentDir(path))} && rsync`,
      files: overlay ? files.filter((f) => f !== ".git") : files,
    }),
  ];
  if (overlay)
    plans.push(
      planOverlaySync({
        paths: overlay.paths,
        host: target.host,
        dest: path,
        rsh: rshFor(target),
        exclude: overlay.exclude,
      }),
    );
  return plans;
}

/**
 * The plan that gives job `id` a fresh work dir holding `source`, sending only what
 * changed since the last sync from the same client directory (the worker keeps a mirror).
 * Every kind of worker is synced alike: a batch scheduler's login node too.
 */
export async function planJobSync(
  source: string,
  worker: Pick<Worker, "connection" | "root">,
  id: string,
  overlay?: Overlay,
  opts: { first?: boolean; rsh?: string } = {},
): Promise<SyncPlan> {
  const target = parseConnection(worker.connection);
  const { root } = worker;
  const uid = process.getuid?.() ?? "";
  const mirror = mirrorDir({ uid, host: hostname(), path: source }, root);
  const repository = repositoryOf(source);
  const family = repository === undefined ? undefined : mirrorFamily({ uid, host: hostname(), repository });
  // a first sync of a checkout may find its files in another checkout's mirror, where only
  // their content can say they are the same: it compares by checksum, and only it may
  const seed = opts.first === true && family !== undefined;
  return planMirrorSync({
    source,
    host: target.host,
    rsh: opts.rsh ?? rshFor(target),
    mirror,
    remoteCommand: mirrorCommand(mirror, workDir(id, root), root, family, seed),
    exclude: [...(await ignoredOnce(source)), ...(overlay?.exclude ?? [])],
    compress: true,
    ...(seed && { checksum: true }),
    ...(overlay && { overlay: overlay.paths }),
  });
}

/**
 * What git ignores in a directory, asked once per p: a group's jobs all sync the same
 * directory at once, and each asking git again would only cost them all.
 */
const ignored = new Map<string, Promise<string[]>>();
const ignoredOnce = (source: string) => {
  let found = ignored.get(source);
  if (!found) {
    found = ignoredPaths(source);
    found.catch(() => {}); // (whoever syncs hears of a failure)
    ignored.set(source, found);
  }
  return found;
};

/**
 * An OpenSSH connection to a worker made ahead of rsync, while git lists what rsync waits
 * for: rsync's ssh then rides on it (ControlMaster) instead of making its own handshake.
 * Nothing outlives p: the master's one session is `cat`, which ends when its stdin (p's
 * pipe) closes, after the sync or with p, and the master ends once rsync has done. If it
 * cannot be made, rsync's ssh connects by itself as it always did (and says why not).
 */
class SshAhead {
  private readonly proc: Bun.Subprocess<"pipe", "ignore", "ignore">;
  private readonly dir: string;
  readonly path: string;
  private users = 0;

  constructor(
    target: Target,
    private readonly key: string,
  ) {
    const dir = mkdtempSync(join(aheadsDir(), "c"));
    this.dir = dir;
    this.path = join(dir, "s");
    // (ControlPersist=no whatever the user's config says: the master must end with its session)
    const args = ["-o", "BatchMode=yes", "-o", "ControlMaster=yes", "-o", "ControlPersist=no"];
    args.push("-o", `ControlPath=${this.path}`);
    this.proc = Bun.spawn(sshCommandArgv(sshCommand(), [...args, ...sshTargetArgs(target), "cat >/dev/null"]), {
      stdin: "pipe",
      stdout: "ignore",
      stderr: "ignore",
    });
    this.proc.exited.then(() => this.forget());
  }

  /** Its socket's directory goes: once no sync will connect to it, or when p ends. */
  forget(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A sync will use it (taken at once, so that no other sync's release ends it meanwhile). */
  take(): this {
    this.users++;
    return this;
  }

  /**
   * rsync's `-e` over this connection, once it is up (its socket is there); undefined if
   * it ended, or is not up within the time an ssh would give up connecting.
   */
  async rsh(target: Target, signal?: AbortSignal): Promise<string | undefined> {
    const until = Date.now() + 20_000;
    while (!existsSync(this.path)) {
      if (this.proc.exitCode !== null || this.proc.signalCode !== null || signal?.aborted || Date.now() > until)
        return undefined;
      await Bun.sleep(5);
    }
    return `${rshFor(target)} -o ControlMaster=no -o ControlPath=${this.path}`;
  }

  /** A sync is done with it: the last one lets it go (its master ends once rsync's session has). */
  release(): void {
    if (--this.users > 0) return;
    if (aheads.get(this.key) === this) aheads.delete(this.key);
    this.proc.stdin.end();
    // (rsync's session is made: nothing connects to the socket again)
    this.forget();
  }
}

/**
 * Where this user's sockets of connections made ahead live: a private directory (refused
 * if it is anyone else's, or open to others). What a p killed outright left there (no
 * socket is needed once its rsync has connected) goes after ten minutes.
 */
function aheadsDir(): string {
  const dir = join(tmpdir(), `p-ssh-${process.getuid?.() ?? "user"}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== process.getuid?.() || (st.mode & 0o077) !== 0)
    throw new Error(`${dir} is not this user's private directory`);
  for (const name of readdirSync(dir)) {
    const old = statSync(join(dir, name), { throwIfNoEntry: false });
    if (old && Date.now() - old.mtimeMs > 600_000) rmSync(join(dir, name), { recursive: true, force: true });
  }
  return dir;
}

/** The connections made ahead, by worker connection: a group's jobs to one worker share one. */
const aheads = new Map<string, SshAhead>();
process.on("exit", () => {
  for (const ahead of aheads.values()) ahead.forget();
});

/**
 * Start what a sync of `source` to `worker` needs before rsync can start, so that it runs
 * while the rest of the run gets ready: git's list of ignored paths (rsync waits for it)
 * and the SSH connection rsync will use.
 */
export function prepareSync(source: string, worker: Pick<Worker, "connection">): void {
  ignoredOnce(source);
  if (!aheads.has(worker.connection)) {
    try {
      aheads.set(worker.connection, new SshAhead(parseConnection(worker.connection), worker.connection));
    } catch {} // (no ssh to start, or no private place for its socket: rsync connects by itself)
  }
}

/** Sync `source` into job `id`'s fresh work dir (a linked worktree with a repository of its own). */
export async function syncJob(
  source: string,
  worker: Pick<Worker, "connection" | "root">,
  id: string,
  opts: RunSyncOptions & { first?: boolean } = {},
) {
  const overlay = worktreeOverlay(source);
  const ahead = aheads.get(worker.connection)?.take();
  try {
    const { first, ...run } = opts;
    const rsh = await ahead?.rsh(parseConnection(worker.connection), opts.signal);
    const plan = await planJobSync(source, worker, id, overlay, {
      ...(first !== undefined && { first }),
      ...(rsh && { rsh }),
    });
    await runSync(plan, run);
  } finally {
    ahead?.release();
    overlay?.cleanup();
  }
}
