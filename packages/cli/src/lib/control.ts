import type { OutputSink, StopReport, WorkerBackend } from "@p/exec";
import type { JobRecord, JobStore, Worker } from "@p/store";
import { applyState } from "./records.ts";
import { openWorker } from "./workers.ts";

/** Run `fn` with a connection to `worker`, closed afterwards whatever happens. */
export async function withWorker<T>(
  worker: Worker,
  fn: (backend: WorkerBackend) => Promise<T>,
  timeoutMs?: number,
): Promise<T> {
  const backend = await openWorker(worker, timeoutMs === undefined ? {} : { timeoutMs });
  try {
    return await fn(backend);
  } finally {
    backend.close();
  }
}

export interface Stopped extends StopReport {
  /** The record as it now stands (p keeps one). */
  job?: JobRecord;
}

/**
 * Stop a job and record the truth: `stopped` if the stop ended it, its own exit code if
 * it ended by itself meanwhile.
 */
export async function stopJob(worker: Worker, id: string, store?: JobStore): Promise<Stopped> {
  const report = await withWorker(worker, (backend) => backend.stop(id));
  const state = report.state;
  const job = state && store?.update(id, (current) => applyState(current, state));
  return { ...report, ...(job && { job }) };
}

/** Print what a job has written so far, from byte `offset`. */
export async function printLog(worker: Worker, id: string, out: OutputSink, offset = 0) {
  return withWorker(worker, (backend) => backend.follow(id, { out, offset, follow: false }));
}
