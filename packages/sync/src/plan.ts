import { anchored } from "./snapshot.ts";

/** What to sync where. Pure data: the CLI fills it from the worker's connection. */
export interface SyncInput {
  /** Local directory whose contents are sent. */
  source: string;
  /** rsync's host: an ssh alias, a name or an address. */
  host: string;
  /** Destination directory on the remote, relative to the remote user's home. */
  dest: string;
  /** rsync's remote shell (`-e`): the ssh command with the target's port and user flags. */
  rsh: string;
  /** The remote command that starts rsync (`--rsync-path`), e.g. one that creates the parents first. */
  rsyncPath?: string;
  /** The paths to send, relative to `source` (see syncedFiles): rsync decides nothing itself. */
  files: string[];
  dryRun?: boolean;
}

export interface SyncPlan {
  argv: string[];
  /** The NUL-separated file list rsync reads from stdin (`--files-from=-`). */
  stdin?: string;
}

/** The parent directory of a destination, which must exist before rsync runs. */
export function parentDir(dest: string): string {
  return withSlash(dest).replace(/[^/]+\/$/, "") || ".";
}

/** rsync's `host:path`, with an IPv6 address in brackets. */
export function remoteSpec(host: string, path: string): string {
  return `${host.includes(":") ? `[${host}]` : host}:${path}`;
}

const withSlash = (p: string) => (p.endsWith("/") ? p : `${p}/`);
const nulList = (files: string[]) => files.map((f) => `${f}\0`).join("");

/** The rsync invocation for a sync: pure, so `--dry-run` can print it and tests can pin it. */
export function planSync(input: SyncInput): SyncPlan {
  const dest = withSlash(input.dest);
  // --protect-args: paths reach the remote rsync as data, never through its shell
  const argv = [
    "rsync",
    "-a",
    "--protect-args",
    ...(input.rsyncPath ? [`--rsync-path=${input.rsyncPath}`] : []),
    "-e",
    input.rsh,
  ];
  if (input.dryRun) argv.push("--dry-run", "--itemize-changes");
  // -r so a listed .git directory is sent whole; a tracked file deleted locally is skipped
  argv.push("--from0", "--files-from=-", "-r", "--ignore-missing-args");
  argv.push("--", withSlash(input.source), remoteSpec(input.host, dest));
  return { argv, stdin: nulList(input.files) };
}

/** What an overlay (see worktreeOverlay) adds to a sync already made: its paths, --relative. */
export interface OverlaySyncInput {
  paths: string[];
  host: string;
  dest: string;
  rsh: string;
  exclude: string[];
  dryRun?: boolean;
}

export function planOverlaySync(input: OverlaySyncInput): SyncPlan {
  const argv = ["rsync", "-a", "--protect-args", "-R", "-e", input.rsh];
  if (input.dryRun) argv.push("--dry-run", "--itemize-changes");
  argv.push("--from0", "--exclude-from=-", "--", ...input.paths, remoteSpec(input.host, withSlash(input.dest)));
  return { argv, stdin: excludeRules(input.exclude) };
}

/** A local dry run of the same file list: rsync prints each file it would send (`size path`). */
export function planList(source: string, files: string[], scratch: string): SyncPlan {
  const argv = [
    "rsync",
    "-a",
    "--dry-run",
    "--out-format=%l %n",
    "--from0",
    "--files-from=-",
    "-r",
    "--ignore-missing-args",
  ];
  argv.push("--", withSlash(source), withSlash(scratch));
  return { argv, stdin: nulList(files) };
}

/**
 * rsync exclude rules (NUL-separated under --from0) for paths relative to the source:
 * anchored, so `build/` is the top-level build only, and with rsync's wildcards escaped
 * (a backslash escapes only in a pattern that has a wildcard, which an escaped one is).
 */
export function excludeRules(paths: string[]): string {
  return paths.map((p) => `${anchored(p)}\0`).join("");
}

export interface MirrorSyncInput {
  source: string;
  host: string;
  rsh: string;
  /** The worker's mirror of `source`, kept between jobs (relative to the remote home). */
  mirror: string;
  /**
   * rsync's remote command (`--rsync-path`): the worker's side of the sync, which brings
   * the mirror up to date and makes the job's work dir out of it (the worker protocol's
   * mirrorCommand).
   */
  remoteCommand: string;
  /** The paths not to send, relative to `source` (see ignoredPaths); the mirror loses them too. */
  exclude: string[];
  /** Let rsync compress (it picks zstd or the best both ends have; skips compressed formats). */
  compress?: boolean;
  /**
   * Compare files by their checksums, not their sizes and mtimes: for a first sync that
   * may find the files already on the worker (another checkout's mirror), with other mtimes.
   */
  checksum?: boolean;
  /**
   * A sync of only what changed since the sync the mirror last had: rsync filter rules that
   * take just that (changeRules), checked after the rules that leave out `exclude`. What
   * they leave out is neither looked at nor deleted.
   */
  only?: string[];
  /**
   * Paths sent before `source`, in rsync's --relative form (`base/./path`: `path` is where
   * it lands): a name they share with `source` is theirs (see worktreeOverlay).
   */
  overlay?: string[];
}

/**
 * A sync into a fresh work dir that sends only what changed since the last sync of the
 * same directory: rsync mirrors `source` into `mirror` on the worker, whose remote
 * command then makes the work dir out of it.
 */
export function planMirrorSync(input: MirrorSyncInput): SyncPlan {
  const argv = ["rsync", "-a", "--protect-args", `--rsync-path=${input.remoteCommand}`, "-e", input.rsh];
  if (input.compress) argv.push("-z");
  if (input.checksum) argv.push("-c");
  // the mirror holds what is here and nothing else: deleted and newly ignored files go too
  // --modify-window=-1: compare mtimes to the nanosecond, so a file saved twice within one
  // second at the same size is still seen as changed (rsync >= 3.1.3 on the worker)
  argv.push("-r", "--delete", "--modify-window=-1", "--from0");
  // (only what changed: what its rules leave out stays, so what is ignored here stays
  // ignored there too: the same ignored paths, or else the whole tree is synced)
  if (input.only) argv.push("--filter=. -");
  else argv.push("--delete-excluded", "--exclude-from=-");
  const overlay = input.overlay ?? [];
  // with an overlay every source says where it lands (--relative); the first to name a path wins
  if (overlay.length) argv.push("-R");
  const sources = overlay.length ? [...overlay, `${withSlash(input.source)}./`] : [withSlash(input.source)];
  argv.push("--", ...sources, remoteSpec(input.host, withSlash(input.mirror)));
  const stdin = input.only
    ? [...input.exclude.map((p) => `- ${anchored(p)}`), ...input.only].map((r) => `${r}\0`).join("")
    : excludeRules(input.exclude);
  return { argv, stdin };
}
