import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PError, problem } from "@p/exec/protocol";
import { linkedWorktree } from "./files.ts";

/** What a sync adds to make a linked worktree's `.git` a repository on the worker. */
export interface Overlay {
  /** Sources in rsync's --relative form, sent before the tree (see MirrorSyncInput.overlay). */
  paths: string[];
  /** Paths not to send (relative to the tree): other worktrees' own state. */
  exclude: string[];
  /** Removes the scratch it made. */
  cleanup(): void;
}

/** Files of a worktree's own git dir that make it that worktree: where it stands, what it has staged. */
const OWN = ["HEAD", "index", "ORIG_HEAD"];

/**
 * In a linked worktree (`git worktree add`), `.git` is a file naming a git dir outside the
 * tree, which a job on a worker could not reach. The job gets instead a `.git` directory
 * that answers as the worktree does: the repository's common dir (objects, refs, config)
 * with the worktree's own HEAD and index in place of the main ones. Nothing on the client
 * changes: the sync sends the common dir through a symbolic link, and copies of the
 * worktree's own files, from a scratch directory. Undefined outside a linked worktree.
 */
export function worktreeOverlay(source: string): Overlay | undefined {
  const wt = linkedWorktree(source);
  if (!wt) return undefined;
  const scratch = mkdtempSync(join(tmpdir(), "p-worktree-"));
  try {
    const own = join(scratch, "own", ".git");
    mkdirSync(own, { recursive: true });
    const paths: string[] = [];
    for (const name of OWN.filter((n) => existsSync(join(wt.gitDir, n)))) {
      // the copy keeps the original's mtime to the nanosecond (as the mirror's rsync compares
      // it), so an unchanged index is not sent again; node's utimes would round it
      const cp = Bun.spawnSync(["cp", "-p", "--", join(wt.gitDir, name), join(own, name)], { stderr: "pipe" });
      if (cp.exitCode !== 0)
        throw new PError("sync_failed", problem(`cannot read ${join(wt.gitDir, name)}`, cp.stderr.toString().trim()));
      // (by hand: join() would drop the /./ that tells rsync where the path starts)
      paths.push(`${scratch}/own/./.git/${name}`);
    }
    mkdirSync(join(scratch, "common"));
    symlinkSync(wt.commonDir, join(scratch, "common", ".git"));
    // a trailing slash: rsync sends what the link points to
    paths.push(`${scratch}/common/./.git/`);
    return {
      paths,
      exclude: [".git/worktrees/"],
      cleanup: () => rmSync(scratch, { recursive: true, force: true }),
    };
  } catch (err) {
    rmSync(scratch, { recursive: true, force: true });
    throw err;
  }
}
