import type { OutputSink, StopReport, WorkerBackend } from "@p/exec";
import { type Config, type JobRecord, type JobStore, type Worker, workerKind } from "@p/store";
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

/** What a probe of a worker found: reachable, rsync there, one round trip's time. */
export interface WorkerCheck {
  reachable: boolean;
  rsync?: boolean;
  rtt_ms?: number;
  error?: string;
}

/** Probe a worker once (with a connection of its own, or the one `open` gives and keeps). */
export async function checkWorker(w: Worker, open?: (w: Worker) => Promise<WorkerBackend>): Promise<WorkerCheck> {
  const probe = async (backend: WorkerBackend) => {
    const t0 = performance.now();
    const found = await backend.probe();
    return { reachable: true, rsync: found.rsync, rtt_ms: Math.round(performance.now() - t0) };
  };
  try {
    return await (open ? open(w).then(probe) : withWorker(w, probe, 5000));
  } catch (err) {
    return { reachable: false, error: (err as Error).message };
  }
}

/**
 * The registered workers as p worker ls --json shows them: kind, default, slots in use
 * (this machine's jobs running there, as last known) and what a probe found.
 */
export function workerRows(config: Config, jobs: JobRecord[], checks: (WorkerCheck | undefined)[] = []) {
  const running = jobs.filter((j) => j.status === "running");
  return config.workers.map((w, i) => ({
    ...w,
    kind: workerKind(w),
    default: w.name === config.default_worker,
    ...(w.slots !== undefined && { slots_in_use: running.filter((j) => j.worker === w.name).length }),
    ...(checks[i] && { check: checks[i] }),
  }));
}
