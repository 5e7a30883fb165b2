/**
 * Every error p reports, by a stable code. The CLI derives the exit code and the `--json`
 * error from the code alone (see packages/cli/src/_errors.ts); the message is a sentence
 * for the user: what failed, where, and what to do.
 */
export type ErrorCode =
  // bad input: a flag, a name, an id, a connection string, the config
  | "invalid_argument"
  | "config_invalid"
  | "worker_not_found"
  | "worker_exists"
  | "job_not_found"
  | "ambiguous_job_id"
  // the worker could not be reached or would not let us in
  | "worker_unreachable"
  | "auth_failed"
  | "host_key_mismatch"
  | "host_key_unknown"
  | "connection_lost"
  // p could not do its work
  | "remote_failed"
  | "sync_failed"
  // (a sync of only what changed, refused by the worker: p syncs the whole tree instead)
  | "sync_stale"
  | "rsync_missing"
  | "repository_refused"
  | "store_busy"
  // Ctrl+C before anything started
  | "sync_cancelled";

export class PError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "PError";
  }
}

/**
 * The one shape of an error message: what failed, why (in parentheses), and what to do
 * (after a semicolon). `problem("worker beefy is unreachable", "Connection refused",
 * "check that sshd runs there")`.
 */
export function problem(what: string, why?: string, fix?: string): string {
  return `${what}${why ? ` (${why})` : ""}${fix ? `; ${fix}` : ""}`;
}
