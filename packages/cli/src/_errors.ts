import { log } from "./_log.ts";

/** Exit codes of p itself. A job that ran exits with its own code instead. */
export const EXIT = {
  /** Bad input: unknown flag, worker or job, malformed connection string or config. */
  usage: 64,
  /** p could not do its work: sync or launch failed, a remote command broke. */
  failure: 70,
  /** Ctrl+C: detached from a job (it keeps running) or cancelled before it started. */
  interrupted: 130,
  /** The worker could not be reached or would not let us in (as ssh uses 255). */
  unreachable: 255,
} as const;

const USAGE_CODES = new Set(["invalid_argument", "worker_not_found", "worker_exists", "job_not_found", "ambiguous_job_id", "config_invalid"]);
const UNREACHABLE_CODES = new Set(["worker_unreachable", "connection_lost", "auth_failed", "host_key_mismatch", "host_key_unknown"]);

export class UsageError extends Error {
  readonly code = "invalid_argument";
}

/** An error that is already a sentence for the user, with a stable code. */
export function codeOf(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  if ((err as Error)?.name === "CLIError") return "invalid_argument"; // citty's own argument errors
  return typeof code === "string" && /^[a-z_]+$/.test(code) ? code : "internal";
}

export function exitCodeFor(err: unknown): number {
  const code = codeOf(err);
  if (USAGE_CODES.has(code)) return EXIT.usage;
  if (UNREACHABLE_CODES.has(code)) return EXIT.unreachable;
  if (code === "sync_cancelled") return EXIT.interrupted;
  return EXIT.failure;
}

/**
 * Print an error as one line, or as `{"error": {"code", "message"}}` on stdout under --json;
 * a stack only with --verbose. Gives the exit code.
 */
export function report(err: unknown, opts: { json?: boolean; verbose?: boolean } = {}): number {
  const message = (err instanceof Error ? err.message : String(err)).split("\n")[0]!;
  if (opts.json) process.stdout.write(`${JSON.stringify({ error: { code: codeOf(err), message } })}\n`);
  else log.error(message);
  if (opts.verbose && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  return exitCodeFor(err);
}
