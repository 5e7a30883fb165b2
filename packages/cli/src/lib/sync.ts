import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import {
  type Connection,
  MOVED_MARK,
  mirrorCommand,
  mirrorDir,
  mirrorFamily,
  type PError,
  parseConnection,
  RELAY_FDS,
  RELAY_RSH,
  type ServedRelay,
  serveRelay,
  shq,
  type Target,
  workDir,
} from "@p/exec";
import { cacheDir, type Worker, writeFileAtomic, writeFileAtomicAsync } from "@p/store";
import {
  changeRules,
  ignoredPaths,
  linkedWorktree,
  type Overlay,
  parentDir,
  parseWalkText,
  planMirrorSync,
  planOverlaySync,
  planSync,
  type RunSyncOptions,
  repositoryOf,
  runSync,
  type SyncPlan,
  syncedFiles,
  type Tree,
  treeOf,
  type Walk,
  walkText,
  walkTree,
  worktreeOverlay,
} from "@p/sync";
import { v4 as uuid } from "uuid";
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

/** Where a worker keeps its mirror of `source` (this client user's, on this host). */
const mirrorOf = (source: string, root?: string) =>
  mirrorDir({ uid: process.getuid?.() ?? "", host: hostname(), path: source }, root);

/**
 * The plan that gives job `id` a fresh work dir holding `source`, sending only what
 * changed since the last sync from the same client directory (the worker keeps a mirror),
 * leaving out `exclude` (what git ignores there). Every kind of worker is synced alike: a
 * batch scheduler's login node too.
 */
export function planJobSync(
  source: string,
  worker: Pick<Worker, "connection" | "root">,
  id: string,
  exclude: string[],
  opts: {
    overlay?: Overlay;
    first?: boolean;
    rsh?: string;
    only?: string[];
    token?: { next: string; expect?: string };
    follows?: boolean;
    copy?: number;
  } = {},
): SyncPlan {
  const target = parseConnection(worker.connection);
  const { root } = worker;
  const { overlay } = opts;
  const mirror = mirrorOf(source, root);
  const repository = repositoryOf(source);
  const family =
    repository === undefined
      ? undefined
      : mirrorFamily({ uid: process.getuid?.() ?? "", host: hostname(), repository });
  // a first sync of a checkout may find its files in another checkout's mirror, where only
  // their content can say they are the same: it compares by checksum, and only it may
  const seed = opts.first === true && family !== undefined;
  return planMirrorSync({
    source,
    host: target.host,
    rsh: opts.rsh ?? rshFor(target),
    mirror,
    remoteCommand: mirrorCommand(mirror, workDir(id, root), {
      ...(root !== undefined && { root }),
      ...(family !== undefined && { family }),
      seed,
      ...(opts.token && { token: opts.token }),
      ...(opts.follows && { follows: true }),
      ...(opts.copy !== undefined && { copy: opts.copy }),
    }),
    exclude: [...exclude, ...(overlay?.exclude ?? [])],
    compress: true,
    ...(seed && { checksum: true }),
    ...(opts.only && { only: opts.only }),
    ...(overlay && { overlay: overlay.paths }),
  });
}

/**
 * What a sync of a directory starts from: what git ignores there, and (but in a linked
 * worktree, whose .git is sent another way) the tree it sends (see walkTree), walked
 * before any rsync reads a file, so that what a sync sends is never older than what is
 * kept of it; and what it takes to send that tree over one kept before (changeRules), by
 * the kept tree's hash.
 */
interface Scan {
  /** Which scan it is (the rules over its walk, once another sync has sent it, are made once). */
  id: string;
  exclude: string[];
  walk?: Walk;
  rules: Map<string, string[] | undefined>;
  /** The name the walk is kept by, once it is (see writeKept). */
  kept?: Promise<string>;
}

/**
 * What several runs that start together share (a group's syncs, which would only cost each
 * other asking git, walking and reading again; its jobs' provenance), made afresh for any
 * that starts once it is done (a long-lived p, the dashboard's, runs again later).
 */
export function sharedWhileRunning<T>(make: (key: string) => Promise<T>): (key: string) => Promise<T> {
  const running = new Map<string, Promise<T>>();
  return (key) => {
    let made = running.get(key);
    if (!made) {
      made = make(key);
      running.set(key, made);
      const done = () => running.delete(key);
      made.then(done, done); // (whoever waits for it hears of a failure)
    }
    return made;
  };
}

const scanOnce = sharedWhileRunning(async (source): Promise<Scan> => {
  if (linkedWorktree(source)) return { id: uuid(), exclude: await ignoredPaths(source), rules: new Map() };
  // find starts at once, leaving out what git ignored at the last sync, while git says what
  // it ignores now: the same, mostly (else find walks again)
  const last = lastExclude(source);
  const [exclude, early] = await Promise.all([ignoredPaths(source), last && walkTree(source, last)]);
  const walk = early && sameList(last!, exclude) ? early : await walkTree(source, exclude);
  return { id: uuid(), exclude, ...(walk && { walk }), rules: new Map() };
});

const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Two scans of a directory that found it the same: the same walk, with the same paths left out. */
const sameTree = (a: Scan, b: Scan) =>
  a === b || (a.walk !== undefined && a.walk.text === b.walk?.text && sameList(a.exclude, b.exclude));

/**
 * What p keeps of its syncs of a directory (in the cache: losing it only makes the next
 * sync look at the whole tree), in a directory of its own: per worker (by a hash of how it
 * is reached), the mark its last sync left the mirror and the name of the tree it sent;
 * each such tree, by a name of its own (`<uuid>.tree`), so that the workers a group synced
 * share one, read once; and what git ignored at the last sync.
 */
const hash = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 32);
const keptDir = (source: string) => join(cacheDir(), "synced", hash(`${hostname()}\0${source}`));
const keptFile = (worker: Pick<Worker, "connection" | "root">) => hash(`${worker.connection}\0${worker.root ?? ""}`);
const TREE = ".tree";
/** What git ignored at the last sync of the directory (JSON), for the next walk to begin with. */
const EXCLUDE = "exclude";

function lastExclude(source: string): string[] | undefined {
  try {
    const list = JSON.parse(readFileSync(join(keptDir(source), EXCLUDE), "utf8"));
    return Array.isArray(list) && list.every((e) => typeof e === "string") ? list : undefined;
  } catch {
    return undefined;
  }
}

const readTree = sharedWhileRunning(async (file) => {
  const walk = parseWalkText(await Bun.file(file).text());
  return walk && treeOf(walk.pairs);
});

/** Whether p kept what a sync of `source` to `worker` left there (then the mirror there is this tree's). */
export const syncedBefore = (source: string, worker: Pick<Worker, "connection" | "root">) =>
  existsSync(join(keptDir(source), keptFile(worker)));

/** The mark a worker's mirror got from the last sync of `source` there, and the tree that sync sent. */
async function readKept(source: string, worker: Pick<Worker, "connection" | "root">) {
  try {
    const dir = keptDir(source);
    const [token, treeName] = readFileSync(join(dir, keptFile(worker)), "utf8").split(" ");
    if (!token || !treeName) return undefined;
    const tree = await readTree(join(dir, treeName + TREE));
    return tree && { token, treeName, tree };
  } catch {
    return undefined;
  }
}

/**
 * Keep what a sync of `source` to `worker` left there (nothing, where its mirror became
 * the job's); let go of trees no worker's mark names.
 */
async function writeKept(
  source: string,
  worker: Pick<Worker, "connection" | "root">,
  token: string | undefined,
  scan: Scan,
) {
  try {
    const dir = keptDir(source);
    if (token === undefined) {
      rmSync(join(dir, keptFile(worker)), { force: true });
      return;
    }
    // (the walk is kept once, by a name of its own, for all the workers a group synced)
    // (written apart from the main thread: a tree of 100,000 paths is some 9 MB)
    scan.kept ??= (async () => {
      const name = uuid();
      await writeFileAtomicAsync(join(dir, name + TREE), walkText(scan.walk!));
      writeFileAtomic(join(dir, EXCLUDE), JSON.stringify(scan.exclude));
      return name;
    })();
    const treeName = await scan.kept;
    writeFileAtomic(join(dir, keptFile(worker)), `${token} ${treeName}`);
    const names = readdirSync(dir);
    const named = new Set(
      names.filter((n) => /^[0-9a-f]{32}$/.test(n)).map((n) => readFileSync(join(dir, n), "utf8").split(" ")[1]),
    );
    for (const n of names)
      if (n.endsWith(TREE) && !named.has(n.slice(0, -TREE.length))) rmSync(join(dir, n), { force: true });
  } catch {
    // (a cache that cannot be written only makes the next sync look at the whole tree)
  }
}

/**
 * The rules that send the scanned tree over one sent before (changeRules), made once per
 * tree it goes over (`key`; `tree` is read only then).
 */
function rulesOver(scan: Scan, key: string, tree: () => Tree) {
  if (!scan.rules.has(key)) scan.rules.set(key, changeRules(tree(), scan.walk!.pairs, scan.exclude));
  return scan.rules.get(key);
}

/**
 * rsync's remote shell over the job's own SSH connection (see @p/exec's relay): rsync
 * then makes no handshake of its own, and starts as soon as git has said what it sends.
 * (Each rsync it starts has a relay of its own: a sync refused is made again.)
 */
function relayOver(connection: Promise<Connection>) {
  const served: ServedRelay[] = [];
  return {
    rsh: RELAY_RSH,
    sockets: {
      count: RELAY_FDS,
      use: (fds: number[]) => {
        const relay = serveRelay(fds, connection);
        served.push(relay);
        return relay.ended;
      },
    },
    close: () => {
      for (const s of served) s.close();
    },
  };
}

/**
 * Start what a sync of `source` needs before rsync can start, so that it runs while the
 * rest of the run gets ready: git's list of ignored paths and the walk of the tree, which
 * rsync waits for.
 */
export function prepareSync(source: string): void {
  scanOnce(source).catch(() => {});
}

/**
 * Sync `source` into job `id`'s fresh work dir (a linked worktree with a repository of its
 * own); over `via`, the job's own SSH connection, where it is given. Where p kept the
 * tree its last sync there sent, and the mirror still holds that sync's mark, only what
 * changed since is looked at, here and there; else (and for a linked worktree) the whole
 * tree is.
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
  // a sync of the mirror another sync of this p is making goes after it, over what it left
  const mirror = `${keptDir(source)}/${keptFile(worker)}`;
  const before = lastSyncs.get(mirror);
  let left: (sync: LeftSync | undefined) => void = () => {};
  const mine = new Promise<LeftSync | undefined>((resolve) => (left = resolve));
  lastSyncs.set(mirror, mine);
  let leaves: LeftSync | undefined;
  try {
    const { first, via: _, ...run } = opts;
    // (what was kept of the last sync there is read while git and find run)
    const keeping = first === true || before ? undefined : readKept(source, worker);
    const scanning = scanOnce(source);
    const prior = await before;
    const scan = await scanning;
    const plan = (more: { only?: string[]; token?: { next: string; expect?: string }; copy?: number }) =>
      planJobSync(source, worker, id, scan.exclude, {
        ...(overlay && { overlay }),
        ...(first !== undefined && { first }),
        ...(relay && { rsh: relay.rsh }),
        // (another sync of this p waits for this one's mirror: a group's, all begun by now)
        ...(lastSyncs.get(mirror) !== mine && { follows: true }),
        ...more,
      });
    const sync = (more: Parameters<typeof plan>[0]) =>
      runSync(plan(more), { ...run, ...(relay && { sockets: relay.sockets }) });
    if (!scan.walk) {
      await sync({});
      return;
    }
    // (over what the sync before in this p sent: its walk, made a map only once)
    const kept = prior
      ? { token: prior.token, key: `after ${prior.scan.id}`, tree: () => treeOf(prior.scan.walk!.pairs) }
      : await keeping?.then((k) => k && { token: k.token, key: k.treeName, tree: () => k.tree });
    const only = kept && rulesOver(scan, kept.key, kept.tree);
    // the same tree as the sync before in this p (a group's job on the same worker): the
    // mirror holds it already, and this work dir is copied from it beside the ones after
    const copyOf = prior && only && sameTree(prior.scan, scan) ? prior : undefined;
    if (copyOf) {
      leaves = { ...copyOf, copies: copyOf.copies + 1 };
      left(leaves);
    }
    const next = uuid();
    let said: string;
    try {
      if (copyOf) {
        await sync({ only, token: { next: copyOf.token, expect: copyOf.token }, copy: copyOf.copies });
        return;
      }
      said = await sync(kept && only ? { only, token: { next, expect: kept.token } } : { token: { next } });
    } catch (err) {
      // (refused: the mirror lacks the mark expected, and the whole tree is synced)
      if ((err as PError).code !== "sync_stale") throw err;
      leaves = undefined;
      said = await sync({ token: { next } });
    }
    // (kept once the launch has had its word: it does not wait for the cache)
    const token = said.includes(MOVED_MARK) ? undefined : next;
    if (token) leaves = { token, scan, copies: 0 };
    setImmediate(() => void writeKept(source, worker, token, scan));
  } finally {
    left(leaves);
    if (lastSyncs.get(mirror) === mine) lastSyncs.delete(mirror);
    relay?.close();
    overlay?.cleanup();
  }
}

/**
 * What a sync left its mirror: its mark, the walk of what it sent, and how many of the
 * group's jobs after it have had their work dirs copied from it since (see mirrorCommand's copy).
 */
interface LeftSync {
  token: string;
  scan: Scan;
  copies: number;
}

/** The last sync this p started of each mirror (by where it is kept), until it has ended. */
const lastSyncs = new Map<string, Promise<LeftSync | undefined>>();
