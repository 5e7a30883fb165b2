import { existsSync } from "node:fs";
import { join } from "node:path";

/**
 * The files git considers not ignored under `dir` (tracked, plus untracked that no ignore
 * rule excludes), plus `.git` itself when `dir` holds it. Null when `dir` is not in a git
 * work tree or git is not installed: rsync's `.gitignore` filter is used instead.
 */
export async function gitFiles(dir: string): Promise<string[] | null> {
  let proc;
  try {
    proc = Bun.spawn(["git", "-C", dir, "ls-files", "-z", "--cached", "--others", "--exclude-standard"], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "ignore",
    });
  } catch {
    return null;
  }
  const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  if (code !== 0) return null;
  const files = new Set(out.split("\0").filter(Boolean));
  if (existsSync(join(dir, ".git"))) files.add(".git");
  return [...files];
}
