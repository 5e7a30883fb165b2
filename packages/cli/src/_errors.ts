import { type ErrorCode, PError } from "@p/exec/protocol";
import { log } from "./_log.ts";

/** Exit codes of p itself. A job that ran exits with its own code instead. */
export const EXIT = {
  ok: 0,
  /** Bad input: unknown flag, worker or job, malformed connection string or config. */
  usage: 64,
  /** p could not do its work: sync or launch failed, a remote command broke. */
  failure: 70,
  /** p wait --timeout gave up (as GNU timeout exits). */
  timeout: 124,
  /** Ctrl+C: detached from a job (it keeps running) or cancelled before it started. */
  interrupted: 130,
  /** stdout's reader went away (`p -- cmd | head`): as a command killed by SIGPIPE exits. */
  outputClosed: 141,
  /** The worker could not be reached or would not let us in (as ssh uses 255). */
  unreachable: 255,
} as const;

/** Each error code's exit code: the one place they are chosen (a new code must be given one). */
const EXIT_FOR: Record<ErrorCode | "internal", number> = {
  invalid_argument: EXIT.usage,
  config_invalid: EXIT.usage,
  worker_not_found: EXIT.usage,
  worker_exists: EXIT.usage,
  job_not_found: EXIT.usage,
  ambiguous_job_id: EXIT.usage,
  worker_unreachable: EXIT.unreachable,
  auth_failed: EXIT.unreachable,
  host_key_mismatch: EXIT.unreachable,
  host_key_unknown: EXIT.unreachable,
  connection_lost: EXIT.unreachable,
  remote_failed: EXIT.failure,
  sync_failed: EXIT.failure,
  sync_stale: EXIT.failure,
  rsync_missing: EXIT.failure,
  repository_refused: EXIT.failure,
  store_busy: EXIT.failure,
  sync_cancelled: EXIT.interrupted,
  internal: EXIT.failure,
};

/** Bad command-line input. */
export const usage = (message: string) => new PError("invalid_argument", message);

/** An error's stable code; citty's own argument errors are bad input too. */
export function codeOf(err: unknown): ErrorCode | "internal" {
  if (err instanceof PError) return err.code;
  if ((err as Error)?.name === "CLIError") return "invalid_argument";
  return "internal";
}

export const exitCodeFor = (err: unknown): number => EXIT_FOR[codeOf(err)];

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
