import { shq } from "@p/exec";

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
  const argv = ["rsync", "-a", "--protect-args", ...(input.rsyncPath ? [`--rsync-path=${input.rsyncPath}`] : []), "-e", input.rsh];
  if (input.dryRun) argv.push("--dry-run", "--itemize-changes");
  // -r so a listed .git directory is sent whole; a tracked file deleted locally is skipped
  argv.push("--from0", "--files-from=-", "-r", "--ignore-missing-args");
  argv.push("--", withSlash(input.source), remoteSpec(input.host, dest));
  return { argv, stdin: nulList(input.files) };
}

/** A local dry run of the same file list: rsync prints each file it would send (`size path`). */
export function planList(source: string, files: string[], scratch: string): SyncPlan {
  const argv = ["rsync", "-a", "--dry-run", "--out-format=%l %n", "--from0", "--files-from=-", "-r", "--ignore-missing-args"];
  argv.push("--", withSlash(source), withSlash(scratch));
  return { argv, stdin: nulList(files) };
}

/**
 * rsync exclude rules (NUL-separated under --from0) for paths relative to the source:
 * anchored, so `build/` is the top-level build only, and with rsync's wildcards escaped
 * (a backslash escapes only in a pattern that has a wildcard, which an escaped one is).
 */
export function excludeRules(paths: string[]): string {
  return paths.map((p) => `/${/[*?[]/.test(p) ? p.replace(/[\\*?[]/g, "\\$&") : p}\0`).join("");
}

export interface MirrorSyncInput {
  source: string;
  host: string;
  rsh: string;
  /** The worker's mirror of `source`, kept between jobs (relative to the remote home). */
  mirror: string;
  /** The job's own work dir, made from the mirror once it is up to date. */
  workDir: string;
  /** The paths not to send, relative to `source` (see ignoredPaths); the mirror loses them too. */
  exclude: string[];
  /** Let rsync compress (it picks zstd or the best both ends have; skips compressed formats). */
  compress?: boolean;
}

/**
 * The worker side of a mirrored sync, run as rsync's remote command (rsync's own arguments
 * follow), under the mirror's lock so two jobs from one directory never mix their trees:
 * 1. rsync brings the mirror (`$c`) up to date;
 * 2. the work dir is made from the spare (`$c.spare`, a pristine copy of the mirror made
 *    while the previous job ran): a local rsync brings it level with the mirror, touching
 *    only what changed, and it is renamed into place;
 * 3. the next spare is copied in the background; it holds the lock until it is ready.
 * With no spare (the first run), the job needs no copy made first: the mirror itself is
 * renamed into the work dir, and the background makes the mirror again out of a copy of
 * the work dir, keeping only the files the job has not touched (their ctime, which no
 * process can set, is not newer than a mark made before the job could start), then the
 * spare. Where `find` lacks -cnewer, the mirror is copied to the work dir first instead.
 * A work dir only ever appears complete, and no job can change the mirror, the spare or
 * another job's files.
 */
const MIRROR_SCRIPT = [
  'c=$1 w=$2; shift 2; s="$c.spare" l="$PWD/$c.lock"; mkdir -p "${c%/*}" "${w%/*}" || exit 12; exec 9>>"$l"',
  'if command -v flock >/dev/null; then flock 9; fi; touch "$l"',
  'rsync "$@" || exit',
  'copy() { cp -a --reflink=auto "$1/." "$2" 2>/dev/null || { rm -rf "$2"; cp -a "$1/." "$2"; }; }',
  'spare() { rm -rf "$s.part"; { copy "$c" "$s.part" && mv "$s.part" "$s"; } || rm -rf "$s.part"; }',
  // every untouched file is read once, then kept by a hard link out of the full copy
  'refill() { rm -rf "$c.part" "$c.keep"; copy "$w" "$c.part" && ( cd "$w" && find . ! -type d ! -cnewer "$l" -print0 ) >"$c.keep" && rsync -a --from0 --files-from="$c.keep" --link-dest="$PWD/$c.part" "$c.part/" "$c/"; r=$?; rm -rf "$c.part" "$c.keep"; return $r; }',
  'later() { ( "$@" ) </dev/null >/dev/null 2>&1 & }',
  'rm -rf "$w.part"',
  'if [ -d "$s" ] && rsync -a --delete --modify-window=-1 "$c/" "$s/" && mv "$s" "$w"; then later spare; exit 0; fi',
  'rm -rf "$s"',
  // after the mark, wait for the file system's clock to tick (ms, or a whole second on
  // some), so that whatever the job does is newer than the mark
  'tick() { n=0; while [ $n -lt 300 ]; do touch "$l.tick" && [ -n "$(find "$l.tick" -newer "$l")" ] && { rm -f "$l.tick"; return; }; sleep 0.01 2>/dev/null || sleep 1; n=$((n + 1)); done; rm -f "$l.tick"; return 1; }',
  'if find "$l" -cnewer "$l" >/dev/null 2>&1 && touch "$l" && tick; then mv "$c" "$w" || exit 11; later eval "refill && spare"; exit 0; fi',
  '{ copy "$c" "$w.part" && mv "$w.part" "$w"; } || { rm -rf "$w.part"; exit 11; }; later spare',
].join("; ");

/**
 * A sync into a fresh work dir that sends only what changed since the last sync of the
 * same directory: rsync mirrors `source` into `mirror` on the worker, which then makes the
 * work dir out of it (see MIRROR_SCRIPT).
 */
export function planMirrorSync(input: MirrorSyncInput): SyncPlan {
  const rsyncPath = `sh -c ${shq(MIRROR_SCRIPT)} p-sync ${shq(input.mirror)} ${shq(input.workDir.replace(/\/+$/, ""))}`;
  const argv = ["rsync", "-a", "--protect-args", `--rsync-path=${rsyncPath}`, "-e", input.rsh];
  if (input.compress) argv.push("-z");
  // the mirror holds what is here and nothing else: deleted and newly ignored files go too
  // --modify-window=-1: compare mtimes to the nanosecond, so a file saved twice within one
  // second at the same size is still seen as changed (rsync >= 3.1.3 on the worker)
  argv.push("-r", "--delete", "--delete-excluded", "--modify-window=-1", "--from0", "--exclude-from=-");
  argv.push("--", withSlash(input.source), remoteSpec(input.host, withSlash(input.mirror)));
  return { argv, stdin: excludeRules(input.exclude) };
}
