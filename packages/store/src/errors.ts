export type StoreErrorCode = "config_invalid" | "worker_not_found" | "worker_exists" | "invalid_argument" | "job_not_found" | "ambiguous_job_id" | "store_busy";

export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "StoreError";
  }
}
