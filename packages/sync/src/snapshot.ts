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
 */
export type Tree = Map<string, string>;

/** How close to the walk a change leaves its entry unsure (far above any file system's tick). */
export const RACY_MS = 2000;

/** More ignored paths than this, and find would spend longer matching them than rsync scanning. */
const MAX_EXCLUDE = 300;

/** find's record of a path: its signature's fields (type letter first), then the path; NUL-ended. */
const FORMAT = "%y %m %s %T@ %C@ %i %D %P\\0";
const FIELDS = 7;

const isDir = (sig: string) => sig[sig[0] === "?" ? 1 : 0] === "d";
const same = (was: string | undefined, now: string) => was === now && now[0] !== "?";

/** find's -path pattern for a path under `.`: its glob characters escaped. */
const findPath = (path: string) => `./${path.replace(/[\\*?[]/g, "\\$&")}`;

/**
 * GNU find's arguments (run in the directory) that list the tree a sync sends, leaving out
 * `exclude` (relative paths, a directory's with a trailing slash, as ignoredPaths gives
 * them): see parseWalk. Undefined for more than MAX_EXCLUDE of them.
 */
export function walkCommand(exclude: readonly string[]): string[] | undefined {
  if (exclude.length > MAX_EXCLUDE) return undefined;
  const prune = exclude.flatMap((e, i) => [
    ...(i ? ["-o"] : []),
    ...(e.endsWith("/") ? ["(", "-path", findPath(e.slice(0, -1)), "-type", "d", ")"] : ["-path", findPath(e)]),
  ]);
  return ["find", ".", ...(prune.length ? ["(", ...prune, ")", "-prune", "-o"] : []), "-printf", FORMAT];
}

/**
 * The tree find's output says (walkCommand), each entry whose ctime is at or after
 * `racyFrom` (ms) marked racy. Undefined if it is not whole: a name that is not UTF-8, or
 * a record cut short.
 */
export function parseWalk(text: string, racyFrom: number): Tree | undefined {
  if (text.includes("\uFFFD") || (text && !text.endsWith("\0"))) return undefined;
  const from = racyFrom / 1000;
  const tree: Tree = new Map();
  for (const record of text.split("\0")) {
    if (!record) continue;
    let at = -1;
    for (let k = 0; k < FIELDS; k++) {
      at = record.indexOf(" ", at + 1);
      if (at < 0) return undefined;
    }
    const sig = record.slice(0, at);
    const ctime = Number(sig.split(" ")[4]);
    if (Number.isNaN(ctime)) return undefined;
    tree.set(record.slice(at + 1), ctime >= from ? `?${sig}` : sig);
  }
  return tree.has("") ? tree : undefined;
}

/** A walk of a tree: find's output (walkCommand), when it started (ms), and the tree it says. */
export interface Walk {
  text: string;
  at: number;
  tree: Tree;
}

/**
 * The tree a sync of `source` sends, as of now (see walkCommand). Undefined where it
 * cannot be told exactly (no GNU find, a directory that cannot be read): such a sync looks
 * at the whole tree instead.
 */
export async function walkTree(source: string, exclude: readonly string[]): Promise<Walk | undefined> {
  const argv = walkCommand(exclude);
  if (!argv) return undefined;
  const at = Date.now();
  try {
    const proc = Bun.spawn(argv, { cwd: source, stdin: "ignore", stdout: "pipe", stderr: "ignore" });
    const [text, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    const tree = code === 0 ? parseWalk(text, at - RACY_MS) : undefined;
    return tree && { text, at, tree };
  } catch {
    return undefined;
  }
}

/** A walk as text, to keep between runs: when it started, then find's output. */
export const walkText = (walk: Walk) => `${walk.at}\0${walk.text}`;

/** A walk kept by walkText; undefined if `text` is not one. */
export function parseWalkText(text: string): Walk | undefined {
  const cut = text.indexOf("\0");
  const at = Number(text.slice(0, cut));
  if (cut < 0 || !Number.isSafeInteger(at)) return undefined;
  const walked = text.slice(cut + 1);
  const tree = parseWalk(walked, at - RACY_MS);
  return tree && { text: walked, at, tree };
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
 * ignored) that send `now` over a copy of `before`, looking at nothing else: each path
 * that is new, changed or gone (a directory that is new, gone or of another type with all
 * it holds), each changed directory's entries (so that an entry it gained and lost since,
 * which `before` never held, is deleted too), and the directories above them; then `- *`.
 * What the rules leave out is protected from rsync's --delete, and so is what `exclude`
 * leaves out (what git ignores now, as `now` was walked): undefined where `before` holds
 * any of that (newly ignored: only a whole sync deletes it there), or where more than
 * `limit` rules would be needed (a whole scan is then as cheap).
 */
export function changeRules(
  before: Tree,
  now: Tree,
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
  for (const [path, sig] of now) {
    const was = before.get(path);
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
  for (const [path, was] of before) {
    if (now.has(path) || covered(path)) continue;
    // (one whose directory is gone, or is no directory now, goes with it)
    const parent = path.slice(0, Math.max(0, path.lastIndexOf("/")));
    const into = now.get(parent);
    if (into === undefined || !isDir(into)) continue;
    take(path, isDir(was));
    if (rules.length > limit) return undefined;
  }
  for (const dir of above) rules.push(`+ ${anchored(dir, "/")}`);
  rules.push("- *");
  return rules.length > limit ? undefined : rules;
}
