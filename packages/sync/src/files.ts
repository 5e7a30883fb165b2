import { existsSync, lstatSync, readdirSync, readFileSync, realpathSync } from "node:fs";
import { join, posix, resolve } from "node:path";
import { PError, problem, shq } from "@p/exec/protocol";
import ignore, { type Ignore } from "ignore";

/**
 * The files git considers not ignored under `dir` (tracked, plus untracked that no ignore
 * rule excludes: nested .gitignore, negations, info/exclude, the global excludes file),
 * plus `.git` itself when `dir` holds it. Null when `dir` is not in a git work tree or git
 * is not installed.
 */
export async function gitFiles(dir: string): Promise<string[] | null> {
  const listed = await lsFiles(dir, ["--cached", "--others", "--exclude-standard"]);
  if (!listed) return null;
  const files = new Set(listed);
  if (existsSync(join(dir, ".git"))) files.add(".git");
  return [...files];
}

/**
 * `git ls-files -z <args>` in `dir`, as paths; null outside a work tree or without git. A
 * repository git refuses to read is an error: its set of files cannot be known, and no
 * other set may be sent in its place.
 */
async function lsFiles(dir: string, args: string[]): Promise<string[] | null> {
  let proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  try {
    proc = Bun.spawn(["git", "-C", dir, "ls-files", "-z", ...args], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
  } catch {
    return null;
  }
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (code !== 0 && /dubious ownership/.test(err)) throw refused(dir, err);
  return code === 0 ? out.split("\0").filter(Boolean) : null;
}

/** Git's safety check refused `dir` (owned by another user): say so, with git's own fix. */
function refused(dir: string, err: string): PError {
  const repo = /safe\.directory (.+)$/m.exec(err)?.[1]?.trim() ?? dir;
  return new PError(
    "repository_refused",
    problem(
      `git refuses to read the repository at ${repo}`,
      "detected dubious ownership: it belongs to another user",
      `nothing was synced; if you trust it: git config --global --add safe.directory ${shq(repo)}`,
    ),
  );
}

/** The .gitignore rules of one directory, relative to it. */
interface Level {
  base: string;
  ig: Ignore;
  lines: string[];
}

function level(dir: string, base: string): Level | undefined {
  const file = join(dir, base, ".gitignore");
  if (!existsSync(file)) return undefined;
  const text = readFileSync(file, "utf8");
  return { base, ig: ignore().add(text), lines: text.split("\n") };
}

export interface IgnoreVerdict {
  ignored: boolean;
  /** The deciding rule: its .gitignore (relative to the root) and line. */
  rule?: { source: string; line: number; pattern: string };
}

/** Git's reading of a path against a stack of .gitignore levels: the nearest one that has a say decides. */
function judge(levels: Level[], path: string, isDir: boolean): IgnoreVerdict {
  for (let i = levels.length - 1; i >= 0; i--) {
    const { base, ig, lines } = levels[i]!;
    const rel = `${base === "" ? path : path.slice(base.length + 1)}${isDir ? "/" : ""}`;
    const t = ig.test(rel);
    if (!t.ignored && !t.unignored) continue;
    for (let n = lines.length - 1; n >= 0; n--) {
      const pattern = lines[n]!.trim();
      if (!pattern || pattern.startsWith("#")) continue;
      const one = ignore().add(pattern).test(rel);
      if (one.ignored || one.unignored)
        return { ignored: t.ignored, rule: { source: posix.join(base, ".gitignore"), line: n + 1, pattern } };
    }
    return { ignored: t.ignored };
  }
  return { ignored: false };
}

/**
 * Outside git, the same reading of `.gitignore` files git would make (rsync's own
 * `:- .gitignore` filter treats `!` as "clear the list", not as negation). Files only:
 * an ignored directory is not entered, as in git.
 */
export function walkFiles(dir: string): string[] {
  return walk(dir).files;
}

/** The walk behind walkFiles: what is sent, and what is ignored (directories with a trailing slash). */
function walk(dir: string): { files: string[]; ignored: string[] } {
  const files: string[] = [];
  const ignored: string[] = [];
  const visit = (rel: string, levels: Level[]) => {
    const here = level(dir, rel);
    const stack = here ? [...levels, here] : levels;
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const path = rel === "" ? name : `${rel}/${name}`;
      const isDir = lstatSync(join(dir, path)).isDirectory();
      if (judge(stack, path, isDir).ignored) ignored.push(isDir ? `${path}/` : path);
      else if (isDir) visit(path, stack);
      else files.push(path);
    }
  };
  visit("", []);
  return { files, ignored };
}

/** Why `path` is or is not ignored outside git: the deciding rule, checking its parents first. */
export function explainIgnored(dir: string, path: string): IgnoreVerdict & { at: string } {
  const parts = path.split("/");
  const levels: Level[] = [];
  for (let i = 0; i < parts.length; i++) {
    const here = level(dir, parts.slice(0, i).join("/"));
    if (here) levels.push(here);
    const at = parts.slice(0, i + 1).join("/");
    const isDir = i < parts.length - 1 || (existsSync(join(dir, at)) && lstatSync(join(dir, at)).isDirectory());
    const v = judge(levels, at, isDir);
    if (v.ignored) return { ...v, at };
    if (i === parts.length - 1) return { ...v, at };
  }
  return { ignored: false, at: path };
}

/** What a sync of `dir` sends: git's answer in a work tree, the same rules walked by hand outside one. */
export async function syncedFiles(dir: string): Promise<string[]> {
  return (await gitFiles(dir)) ?? walkFiles(dir);
}

/**
 * What a sync of `dir` leaves out: git's ignored paths (an ignored directory once, with a
 * trailing slash), or the same rules walked by hand outside a work tree. Usually a handful
 * of entries (build/, node_modules/, *.log files), where the files sent are thousands.
 */
export async function ignoredPaths(dir: string): Promise<string[]> {
  return (await lsFiles(dir, ["--others", "--ignored", "--exclude-standard", "--directory"])) ?? walk(dir).ignored;
}

/**
 * What a run from `dir` syncs, and where in it the job runs (`sub`, "" for the top): a
 * directory that git tracks files in, below the top of its checkout, goes with the whole
 * checkout (and .git), so that the job finds what it would here: git works, and `../lib`
 * is there. The top of a checkout, a directory outside any, or one in which git tracks
 * nothing (ignored, new, or under a repository kept in a parent, as a home's dotfiles)
 * syncs alone. Asks git only below a top: the top itself holds `.git`.
 */
export function checkoutOf(dir: string): { top: string; sub: string } {
  const alone = { top: dir, sub: "" };
  if (existsSync(join(dir, ".git"))) return alone;
  const where = git(dir, "rev-parse", "--show-toplevel", "--show-prefix");
  const [top, prefix] = where.ok ? where.out.split("\n") : [];
  if (!top || !prefix) return alone;
  // (a pathspec that matches no tracked file fails --error-unmatch)
  if (!git(dir, "ls-files", "--error-unmatch", "--", ".").ok) return alone;
  return { top, sub: prefix.replace(/\/+$/, "") };
}

/** A git command in `dir`, to its end: whether it succeeded, and what it printed. */
export function git(dir: string, ...args: string[]) {
  const r = Bun.spawnSync(["git", "-C", dir, ...args], { stdin: "ignore", stderr: "ignore" });
  return { ok: r.exitCode === 0, out: r.stdout.toString() };
}

/** A linked worktree (`git worktree add`): its own git dir (HEAD, index) and the repository's common dir. */
export interface LinkedWorktree {
  gitDir: string;
  commonDir: string;
}

/**
 * If `dir` is a linked worktree, where its repository lives: there `.git` is a file,
 * `gitdir: <repo>/.git/worktrees/<name>`, whose `commondir` names the shared objects and
 * refs. A submodule's `.git` file (its git dir has no commondir) is not one.
 */
export function linkedWorktree(dir: string): LinkedWorktree | undefined {
  const dotGit = join(dir, ".git");
  let text: string;
  try {
    if (!lstatSync(dotGit).isFile()) return undefined;
    text = readFileSync(dotGit, "utf8");
  } catch {
    return undefined;
  }
  const m = /^gitdir: (.+)$/m.exec(text);
  if (!m) return undefined;
  const gitDir = resolve(dir, m[1]!.trim());
  try {
    const common = readFileSync(join(gitDir, "commondir"), "utf8").trim();
    return { gitDir, commonDir: resolve(gitDir, common) };
  } catch {
    return undefined;
  }
}

/**
 * Which repository a checkout is of, as far as its files alone tell: the URL of its remote
 * `origin` (a local path stands for the repository there), or else the repository itself
 * (its common git dir, which all its linked worktrees share). Undefined where `dir` is not
 * the top of a checkout. Two checkouts of one repository (a second clone, a worktree) say
 * the same; their files may still differ, and nothing may take this for their content.
 */
export function repositoryOf(dir: string, hops = 0): string | undefined {
  let common: string;
  try {
    const dotGit = join(dir, ".git");
    if (lstatSync(dotGit).isDirectory()) common = dotGit;
    else {
      const wt = linkedWorktree(dir);
      if (!wt) return undefined;
      common = wt.commonDir;
    }
    common = realpathSync(common);
  } catch {
    return undefined;
  }
  let url: string | undefined;
  try {
    url = originUrl(readFileSync(join(common, "config"), "utf8"));
  } catch {} // no config: no remote
  if (url !== undefined) {
    const local = url.startsWith("file://") ? url.slice("file://".length) : url.startsWith("/") ? url : undefined;
    // (a local origin is followed, not a long chain of them)
    const there =
      local === undefined || hops >= 3 ? undefined : (repositoryOf(local, hops + 1) ?? bareRepository(local));
    return there ?? `remote:${url}`;
  }
  return `dir:${common}`;
}

/** A bare repository at `path` (a clone's origin, often): itself. */
function bareRepository(path: string): string | undefined {
  try {
    return existsSync(join(path, "objects")) && existsSync(join(path, "HEAD"))
      ? `dir:${realpathSync(path)}`
      : undefined;
  } catch {
    return undefined;
  }
}

/** `remote.origin.url` from a git config file's text. */
export function originUrl(config: string): string | undefined {
  let inOrigin = false;
  for (const raw of config.split("\n")) {
    const line = raw.trim();
    const section = /^\[\s*remote\s+"origin"\s*\]$/.exec(line);
    if (line.startsWith("[")) inOrigin = section !== null;
    else if (inOrigin) {
      const m = /^url\s*=\s*(.*?)\s*$/i.exec(line);
      if (m) return m[1]!.replace(/^"(.*)"$/, "$1");
    }
  }
  return undefined;
}

/** Where a directory's files come from in git: the commit, the branch, and whether they differ. */
export interface Provenance {
  commit: string;
  /** Null on a detached HEAD. */
  branch: string | null;
  /** The files git would sync differ from the commit: changed, staged or new (not ignored). */
  dirty: boolean;
}

/** The provenance of a git work tree's files, or undefined outside one (or before a first commit). */
export async function gitProvenance(dir: string): Promise<Provenance | undefined> {
  // one git, whose status says the commit and branch too (no optional locks: git status
  // would otherwise refresh the index under index.lock, a file that appears and vanishes
  // while the sync beside it lists .git)
  const proc = Bun.spawn(
    ["git", "--no-optional-locks", "-C", dir, "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=normal"],
    { stdout: "pipe", stderr: "ignore", stdin: "ignore" },
  );
  const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  if (code !== 0) return undefined;
  const records = out.split("\0").filter(Boolean);
  const header = (name: string) => records.find((r) => r.startsWith(`# branch.${name} `))?.slice(name.length + 10);
  const commit = header("oid");
  const branch = header("head");
  if (!commit || !/^[0-9a-f]{40,64}$/.test(commit)) return undefined;
  return {
    commit,
    branch: branch && branch !== "(detached)" ? branch : null,
    dirty: records.some((r) => !r.startsWith("# ")),
  };
}
