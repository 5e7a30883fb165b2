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
