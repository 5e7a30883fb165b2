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
  /**
   * The paths to send, relative to `source`, when git decides what is ignored; null when
   * the source is not a git work tree and rsync reads `.gitignore` files itself.
   */
  files: string[] | null;
  dryRun?: boolean;
}

export interface SyncPlan {
  argv: string[];
  /** The NUL-separated file list rsync reads from stdin (`--files-from=-`). */
  stdin?: string;
}

/** rsync's `host:path`, with an IPv6 address in brackets. */
export function remoteSpec(host: string, path: string): string {
  return `${host.includes(":") ? `[${host}]` : host}:${path}`;
}

const withSlash = (p: string) => (p.endsWith("/") ? p : `${p}/`);

/** The rsync invocation for a sync: pure, so `--dry-run` can print it and tests can pin it. */
export function planSync(input: SyncInput): SyncPlan {
  const dest = withSlash(input.dest);
  const parent = dest.replace(/[^/]+\/$/, "") || ".";
  const argv = [
    "rsync",
    "-a",
    // the destination's parents may not exist yet on a new worker
    `--rsync-path=mkdir -p ${parent.replace(/[^A-Za-z0-9._/-]/g, "")} && rsync`,
    "-e",
    input.rsh,
  ];
  if (input.dryRun) argv.push("--dry-run", "--itemize-changes");
  if (input.files) {
    // git's own answer to "what is not ignored" (negations, info/exclude, global excludes);
    // -r so the listed .git directory is sent whole; a tracked file deleted locally is skipped
    argv.push("--from0", "--files-from=-", "-r", "--ignore-missing-args");
  } else {
    argv.push("--filter=:- .gitignore");
  }
  argv.push("--", withSlash(input.source), remoteSpec(input.host, dest));
  return input.files ? { argv, stdin: input.files.map((f) => `${f}\0`).join("") } : { argv };
}
