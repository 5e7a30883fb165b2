/**
 * A directory's tree as a sync sees it: each path it sends (relative; "" for the top) with
 * the signature of its lstat: type and mode, size, mtime and ctime to the nanosecond, inode
 * and device. A path changed in any way since has another signature (its ctime, which no
 * process can set back, moves), so two trees tell what a sync of one over the other must
 * look at, and nothing else need be looked at.
 *
 * A signature taken within RACY_MS of a change may not be (a file system's clock is
 * coarse: a change in the same tick leaves the same times). Such an entry is marked racy
 * ("?" first) and never counts as unchanged, as git treats its racily clean index entries.
 *
 * A tree is kept as find prints it (walkCommand): path and signature, each NUL-ended, in
 * find's order (a directory before what it holds); read, it is `pairs`, the same strings
 * split (path, signature, path, ...), and a Tree, a map of them, only where looked up.
 */
export type Tree = Map<string, string>;

/**
 * How close to the walk a change leaves its entry unsure: above any file system's tick
 * (FAT's is 2 s, and find's -newerct is strict), with room for a clock a little off.
 */
export const RACY_MS = 3000;

/** More ignored paths than this, and find would spend longer matching them than rsync scanning. */
const MAX_EXCLUDE = 300;

/** find's record of a path: the path, then its signature's fields (type letter first); each NUL-ended. */
const FORMAT = "%P\\0%y %m %s %T@ %C@ %i %D\\0";

const isDir = (sig: string) => sig[sig[0] === "?" ? 1 : 0] === "d";
const same = (was: string | undefined, now: string) => was === now && now[0] !== "?";

/** find's -path pattern for a path under `.`: its glob characters escaped. */
const findPath = (path: string) => `./${path.replace(/[\\*?[]/g, "\\$&")}`;

/**
 * GNU find's arguments (run in the directory) that list the tree a sync sends as of
 * `at` (ms), leaving out `exclude` (relative paths, a directory's with a trailing slash, as
 * ignoredPaths gives them), each entry changed within RACY_MS of `at` marked racy by find
 * itself. Undefined for more than MAX_EXCLUDE ignored paths.
 */
export function walkCommand(exclude: readonly string[], at: number): string[] | undefined {
  if (exclude.length > MAX_EXCLUDE) return undefined;
  const prune = exclude.flatMap((e, i) => [
    ...(i ? ["-o"] : []),
    ...(e.endsWith("/") ? ["(", "-path", findPath(e.slice(0, -1)), "-type", "d", ")"] : ["-path", findPath(e)]),
  ]);
  const racyFrom = `@${((at - RACY_MS) / 1000).toFixed(3)}`;
  return [
    "find",
    ".",
    ...(prune.length ? ["(", ...prune, ")", "-prune", "-o"] : []),
    ...["-newerct", racyFrom, "-printf", FORMAT.replace("\\0%y", "\\0?%y"), "-o", "-printf", FORMAT],
  ];
}

/**
 * find's output (walkCommand) as pairs; undefined if it is not whole: a name that is not
 * UTF-8, a record cut short, no top.
 */
export function parseWalk(text: string): string[] | undefined {
  if (text.includes("\uFFFD") || !text.startsWith("\0")) return undefined;
  const pairs = text.split("\0");
  if (pairs.pop() !== "" || pairs.length % 2 !== 0) return undefined;
  for (let i = 1; i < pairs.length; i += 2) if (!/^\??[a-zA-Z] /.test(pairs[i]!)) return undefined;
  return pairs;
}

/** The tree of pairs (see parseWalk). */
export function treeOf(pairs: readonly string[]): Tree {
  const tree: Tree = new Map();
  for (let i = 0; i < pairs.length; i += 2) tree.set(pairs[i]!, pairs[i + 1]!);
  return tree;
}

/** A walk of a tree: find's output (walkCommand), when it started (ms), and its pairs. */
export interface Walk {
  text: string;
  at: number;
  pairs: string[];
}

/**
 * The tree a sync of `source` sends, as of now (see walkCommand). Undefined where it
 * cannot be told exactly (no GNU find, a directory that cannot be read): such a sync looks
 * at the whole tree instead.
 */
export async function walkTree(source: string, exclude: readonly string[]): Promise<Walk | undefined> {
  const at = Date.now();
  const argv = walkCommand(exclude, at);
  if (!argv) return undefined;
  try {
    const proc = Bun.spawn(argv, { cwd: source, stdin: "ignore", stdout: "pipe", stderr: "ignore" });
    const [text, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    const pairs = code === 0 ? parseWalk(text) : undefined;
    return pairs && { text, at, pairs };
  } catch {
    return undefined;
  }
}

/**
 * An rsync pattern for `path` (anchored at the top of the transfer), then `tail`: with
 * rsync's wildcards escaped where the pattern has any (a backslash escapes only there).
 */
export function anchored(path: string, tail = ""): string {
  const wild = /[*?[]/.test(path) || /[*?[]/.test(tail);
  return `/${wild ? path.replace(/[\\*?[]/g, "\\$&") : path}${tail}`;
}

/**
 * rsync filter rules (for `rsync -r --delete`, after the rules that leave out what is
 * ignored) that send `now` (a walk's pairs) over a copy of `before`, looking at nothing
 * else: each path that is new, changed or gone (a directory that is new, gone or of
 * another type with all it holds), each changed directory's entries (so that an entry it
 * gained and lost since, which `before` never held, is deleted too), and the directories
 * above them; then `- *`.
 * What the rules leave out is protected from rsync's --delete, and so is what `exclude`
 * leaves out (what git ignores now, as `now` was walked): undefined where `before` holds
 * any of that (newly ignored: only a whole sync deletes it there), or where more than
 * `limit` rules would be needed (a whole scan is then as cheap).
 */
export function changeRules(
  before: Tree,
  now: readonly string[],
  exclude: readonly string[] = [],
  limit = 2000,
): string[] | undefined {
  if (exclude.some((e) => before.has(e.endsWith("/") ? e.slice(0, -1) : e))) return undefined;
  const rules: string[] = [];
  const above = new Set<string>();
  /** Directories whose whole content the rules already take. */
  const whole = new Set<string>();
  const covered = (path: string) => {
    for (let i = path.lastIndexOf("/"); i > 0; i = path.lastIndexOf("/", i - 1))
      if (whole.has(path.slice(0, i))) return true;
    return false;
  };
  const take = (path: string, all: boolean) => {
    rules.push(`+ ${anchored(path)}`);
    if (all) {
      rules.push(`+ ${anchored(path, "/***")}`);
      whole.add(path);
    }
    for (let i = path.lastIndexOf("/"); i > 0; i = path.lastIndexOf("/", i - 1)) above.add(path.slice(0, i));
  };
  // (what `before` holds that is here too: all of it, and nothing went)
  let kept = 0;
  for (let i = 0; i < now.length; i += 2) {
    const path = now[i]!;
    const sig = now[i + 1]!;
    const was = before.get(path);
    if (was !== undefined) kept++;
    if (same(was, sig)) continue;
    if (path === "") {
      rules.push(`+ ${anchored("", "*")}`);
      continue;
    }
    if (covered(path)) continue;
    const dir = isDir(sig);
    // new, or of another type: all of it; a changed directory: itself and its entries
    if (was === undefined || isDir(was) !== dir) take(path, dir || (was !== undefined && isDir(was)));
    else {
      take(path, false);
      if (dir) rules.push(`+ ${anchored(path, "/*")}`);
    }
    if (rules.length > limit) return undefined;
  }
  if (kept < before.size) {
    const here = treeOf(now);
    for (const [path, was] of before) {
      if (here.has(path) || covered(path)) continue;
      // (one whose directory is gone, or is no directory now, goes with it)
      const into = here.get(path.slice(0, Math.max(0, path.lastIndexOf("/"))));
      if (into === undefined || !isDir(into)) continue;
      take(path, isDir(was));
      if (rules.length > limit) return undefined;
    }
  }
  for (const dir of above) rules.push(`+ ${anchored(dir, "/")}`);
  rules.push("- *");
  return rules.length > limit ? undefined : rules;
}

/** A walk as text, to keep between runs: when it started, then find's output. */
export const walkText = (walk: Walk) => `${walk.at}${walk.text}`;

/** A walk kept by walkText; undefined if `text` is not one. */
export function parseWalkText(text: string): Walk | undefined {
  const cut = text.indexOf("\0");
  const at = Number(text.slice(0, cut));
  if (cut < 0 || !Number.isSafeInteger(at)) return undefined;
  const walked = text.slice(cut);
  const pairs = parseWalk(walked);
  return pairs && { text: walked, at, pairs };
}
