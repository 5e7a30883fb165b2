import { hostname } from "node:os";
import {
  type Connection,
  mirrorCommand,
  mirrorDir,
  mirrorFamily,
  parseConnection,
  RELAY_FDS,
  RELAY_RSH,
  serveRelay,
  shq,
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
import { rshFor } from "./workers.ts";

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
 * rsync's remote shell over the job's own SSH connection (see @p/exec's relay): rsync
 * then makes no handshake of its own, and starts as soon as git has said what it sends.
 */
function relayOver(connection: Promise<Connection>) {
  let served: { close(): void } | undefined;
  return {
    rsh: RELAY_RSH,
    sockets: { count: RELAY_FDS, use: (fds: number[]) => (served = serveRelay(fds, connection)) },
    close: () => served?.close(),
  };
}

/**
 * Start what a sync of `source` needs before rsync can start, so that it runs while the
 * rest of the run gets ready: git's list of ignored paths, which rsync waits for.
 */
export function prepareSync(source: string): void {
  ignoredOnce(source);
}

/**
 * Sync `source` into job `id`'s fresh work dir (a linked worktree with a repository of its
 * own); a sync of a tree synced there before goes over `via`, the job's own SSH
 * connection, where it is given.
 */
export async function syncJob(
  source: string,
  worker: Pick<Worker, "connection" | "root">,
  id: string,
  opts: RunSyncOptions & { first?: boolean; via?: Promise<Connection> } = {},
) {
  const overlay = worktreeOverlay(source);
  // (a first sync too: measured on a 100 MB first sync, the pass through p cost nothing
  // over rsync's own ssh, at 100 Mbit/s or unshaped, and the handshake it saves shows)
  const relay = opts.via ? relayOver(opts.via) : undefined;
  try {
    const { first, via: _, ...run } = opts;
    const plan = await planJobSync(source, worker, id, overlay, {
      ...(first !== undefined && { first }),
      ...(relay && { rsh: relay.rsh }),
    });
    await runSync(plan, { ...run, ...(relay && { sockets: relay.sockets }) });
  } finally {
    relay?.close();
    overlay?.cleanup();
  }
}
