import { posix } from "node:path";
import { PError } from "@p/exec/protocol";
import type { SyncPlan } from "./plan.ts";
import { remoteSpec } from "./plan.ts";

/**
 * A path inside a job's work dir, normalized; anything that would leave it (absolute,
 * `..` above the top) is refused.
 */
export function insideWorkDir(path: string): string {
  const norm = posix.normalize(path.trim()).replace(/\/+$/, "");
  if (path.trim() === "" || posix.isAbsolute(norm) || norm === ".." || norm.startsWith("../"))
    throw new PError(
      "invalid_argument",
      `${JSON.stringify(path)} is outside the job's work dir; give a path relative to it`,
    );
  return norm === "" ? "." : norm;
}

export interface PullInput {
  host: string;
  rsh: string;
  /** The job's work dir on the remote, relative to the remote home. */
  workDir: string;
  /** Path inside the work dir. */
  path: string;
  /** Local destination (rsync semantics: a directory receives the named file or directory). */
  dest: string;
}

/** Copy a file or directory out of a job's work dir; incremental, like any rsync. */
export function planPull(input: PullInput): SyncPlan {
  const inside = insideWorkDir(input.path);
  const src = `${input.workDir.replace(/\/+$/, "")}/${inside === "." ? "" : inside}`;
  // --protect-args: the remote path goes to rsync as data, never through the remote shell
  return { argv: ["rsync", "-a", "--protect-args", "-e", input.rsh, "--", remoteSpec(input.host, src), input.dest] };
}
