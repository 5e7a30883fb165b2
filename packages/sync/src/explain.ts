import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { explainIgnored, git, gitFiles, syncedFiles } from "./files.ts";
import { planList } from "./plan.ts";

export interface Listing {
  files: { path: string; size: number }[];
  totalBytes: number;
}

export interface Explanation {
  path: string;
  synced: boolean;
  reason: string;
  rule?: { pattern: string; source: string; line: number };
}

/** The files a sync of `source` sends to a fresh destination, with their sizes (rsync's own count). */
export async function listSynced(source: string): Promise<Listing> {
  const scratch = mkdtempSync(join(tmpdir(), "p-list-"));
  try {
    const plan = planList(source, await syncedFiles(source), join(scratch, "dest"));
    const proc = Bun.spawn(plan.argv, { stdin: "pipe", stdout: "pipe", stderr: "ignore" });
    proc.stdin.write(plan.stdin ?? "");
    proc.stdin.end();
    const [out] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    const files = out
      .split("\n")
      .map((l) => /^(\d+) (.*[^/])$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ path: m[2]!, size: Number(m[1]) }));
    return { files, totalBytes: files.reduce((a, f) => a + f.size, 0) };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

const ruleText = (r: Explanation["rule"]) => (r ? ` (${r.source}:${r.line}: ${r.pattern})` : "");

/** Is `path` (relative to `source`) synced, and which rule decides it? */
export async function explainPath(source: string, path: string): Promise<Explanation> {
  const rel = posix.normalize(path).replace(/\/+$/, "");
  const exists = existsSync(join(source, rel));
  if ((await gitFiles(source)) !== null) {
    if (rel === ".git" || rel.startsWith(".git/")) return { path: rel, synced: exists, reason: ".git is always sent" };
    if (git(source, "ls-files", "--error-unmatch", "--", rel).ok)
      return { path: rel, synced: true, reason: "tracked by git" };
    const ignored = git(source, "check-ignore", "-v", "--", rel);
    if (ignored.ok) {
      const m = /^(.*?):(\d+):(.*)\t/.exec(ignored.out);
      const rule = m ? { source: m[1]!, line: Number(m[2]), pattern: m[3]! } : undefined;
      return { path: rel, synced: false, reason: `ignored by git${ruleText(rule)}`, ...(rule && { rule }) };
    }
    if (!exists) return { path: rel, synced: false, reason: "no such file" };
    return { path: rel, synced: true, reason: "untracked, and no ignore rule matches" };
  }
  const v = explainIgnored(source, rel);
  if (v.ignored)
    return {
      path: rel,
      synced: false,
      reason: `ignored${ruleText(v.rule)}${v.at !== rel ? ` on ${v.at}` : ""}`,
      ...(v.rule && { rule: v.rule }),
    };
  if (!exists) return { path: rel, synced: false, reason: "no such file" };
  if (v.rule) return { path: rel, synced: true, reason: `re-included${ruleText(v.rule)}`, rule: v.rule };
  return { path: rel, synced: true, reason: "no .gitignore rule matches" };
}
