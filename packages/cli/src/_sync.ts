import { shq, type Target } from "@p/exec";
import { parentDir, planSync, syncedFiles, type SyncPlan } from "@p/sync";
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
