/** Stable codes that the CLI maps to exit codes and `--json` errors. */
export type SshErrorCode =
  | "invalid_argument"
  | "worker_unreachable"
  | "auth_failed"
  | "host_key_mismatch"
  | "host_key_unknown"
  | "remote_failed";

export class SshError extends Error {
  constructor(
    readonly code: SshErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "SshError";
  }
}
