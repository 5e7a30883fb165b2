import { createHash } from "node:crypto";
import { hostname } from "node:os";
import { MIRRORS_DIR, shq, workDir, type Target } from "@p/exec";
import { ignoredPaths, parentDir, planMirrorSync, planSync, syncedFiles, type SyncPlan } from "@p/sync";
import { rshFor } from "./_ssh.ts";

/** A destination as rsync and the remote shell take it: `~/x` is `x`, relative to the remote home. */
export const remotePath = (dest: string) => dest.replace(/^~\/?/, "") || ".";

/** The plan that sends `source` (what git would not ignore, plus .git) to `dest` on `target`. */
export async function planSyncTo(source: string, target: Target, dest: string): Promise<SyncPlan> {
  const path = remotePath(dest);
  return planSync({
    source,
    host: target.host,
    dest: path,
    rsh: rshFor(target),
    // the destination's parents may not exist yet on a new worker
    rsyncPath: `mkdir -p ${shq(parentDir(path))} && rsync`,
    files: await syncedFiles(source),
  });
}

/**
 * The worker's mirror of a client directory: one per client user, machine and path, so
 * re-runs from the same directory send only what changed.
 */
export function mirrorDir(source: string): string {
  // the uid, not the user name: a uid with no passwd entry (containers) has no name
  const who = `${process.getuid?.() ?? ""}@${hostname()}:${source}`;
  return `${MIRRORS_DIR}/${createHash("sha256").update(who).digest("hex").slice(0, 24)}`;
}

/** The plan that gives job `id` on `target` a fresh work dir holding `source`, sending only what changed. */
export async function planJobSync(source: string, target: Target, id: string): Promise<SyncPlan> {
  return planMirrorSync({
    source,
    host: target.host,
    rsh: rshFor(target),
    mirror: mirrorDir(source),
    workDir: workDir(id),
    exclude: await ignoredPaths(source),
    compress: true,
  });
}
