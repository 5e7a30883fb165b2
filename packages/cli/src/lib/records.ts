import type { WorkerBackend } from "@p/exec";
import type { FollowStatus, RemoteState, SlurmInfo } from "@p/exec/protocol";
import type { JobRecord, JobStore, Worker } from "@p/store";

export interface Reconciled {
  jobs: JobRecord[];
  /** Workers that could not be asked, with the reason; their jobs keep their last known state. */
  unreachable: Map<string, string>;
}

const now = () => Math.floor(Date.now() / 1000);

/** A new job's record, before anything has run. */
export function newRecord(id: string, worker: Worker, argv: string[], command: string, cwd: string, synced: boolean) {
  const record: JobRecord = {
    id,
    worker: worker.name,
    connection: worker.connection,
    command,
    argv,
    cwd,
    status: "running",
    exit_code: null,
    started_at: now(),
    created_ms: Date.now(),
    ended_at: null,
    synced,
    ...(worker.root && { root: worker.root }),
  };
  return record;
}

/** A followed job's last status line, as the state it says. */
export function stateOfFollow(s: FollowStatus): RemoteState {
  if (s.exitCode === null && s.ran) return { state: "lost" };
  const { exitCode, endedAt, startedAt, stopped, timedOut, skipped } = s;
  return { state: "exited", exitCode, endedAt, startedAt, stopped, timedOut, skipped };
}

/** The record a worker's answer implies: the one place a worker's word becomes a status. */
export function applyState(record: JobRecord, s: RemoteState): JobRecord {
  // what Slurm says, kept as it last said it while the job is still on; an end seen without
  // Slurm's word (a follow's, or once Slurm forgot the job) keeps no state of Slurm's from before
  const ended = s.state !== "running" && s.state !== "queued";
  const job =
    s.slurm && !(ended && !s.slurm.state)
      ? { ...record, slurm: slurmOf(record, s.slurm) }
      : record.slurm && ended
        ? { ...record, slurm: { job_id: record.slurm.job_id, ...(record.slurm.node && { node: record.slurm.node }) } }
        : record;
  const { follow_offset, client_pid, waiting_for, ...settled } = job;
  const { waiting_for: _, ...started } = job;
  // (when it began to run, once the worker says: after its sync and any wait in the queue)
  const ran = (s.state === "running" || s.state === "exited") && s.startedAt ? { run_started_at: s.startedAt } : {};
  switch (s.state) {
    case "running":
      if (job.status === "queued") return { ...started, ...ran, status: "running" };
      return ran.run_started_at && job.run_started_at !== ran.run_started_at ? { ...job, ...ran } : job;
    case "queued":
      return job.status === "queued" && waiting_for === s.waitingFor
        ? job
        : { ...job, status: "queued", waiting_for: s.waitingFor };
    case "exited":
      return {
        ...settled,
        ...ran,
        status: s.skipped ? "skipped" : s.stopped ? "stopped" : s.timedOut ? "timeout" : "done",
        exit_code: s.exitCode,
        ended_at: s.endedAt ?? job.ended_at ?? now(),
      };
    case "lost":
    case "gone":
      return { ...settled, status: "unknown", ended_at: job.ended_at ?? now() };
  }
}

function slurmOf(job: JobRecord, info: SlurmInfo): NonNullable<JobRecord["slurm"]> {
  const last = job.slurm?.job_id === info.jobId ? job.slurm : undefined;
  const state = info.state ?? last?.state;
  const node = info.node ?? last?.node;
  // (a reason is only a pending job's: None once it runs)
  const reason = info.state ? info.reason : last?.reason;
  return {
    job_id: info.jobId,
    ...(state && { state }),
    ...(reason && reason !== "None" && { reason }),
    ...(node && { node }),
  };
}

/** A job that has not ended: running, or waiting in its worker's queue. */
export const isActive = (job: JobRecord) => job.status === "running" || job.status === "queued";

/** A job that never started: the sync or the launch failed. */
export const failedRecord = (job: JobRecord, error: string): JobRecord => ({
  ...job,
  status: "failed",
  ended_at: now(),
  error,
});

/** Nothing new from Slurm (or no Slurm): a running job's record stays as it is. */
const sameSlurm = (job: JobRecord, s: RemoteState) =>
  !s.slurm || JSON.stringify(slurmOf(job, s.slurm)) === JSON.stringify(job.slurm);

/** Jobs grouped by the worker (name and connection) they ran on. */
export function byWorker(jobs: JobRecord[]): JobRecord[][] {
  const groups = new Map<string, JobRecord[]>();
  for (const j of jobs) {
    const key = `${j.worker}\0${j.connection}\0${j.root ?? ""}`;
    groups.set(key, [...(groups.get(key) ?? []), j]);
  }
  return [...groups.values()];
}

/** The worker a job ran on, as its record remembers it. */
export const workerOf = (job: JobRecord): Worker => ({
  name: job.worker,
  connection: job.connection,
  ...(job.root && { root: job.root }),
});

/**
 * Ask each worker that has running jobs for their state: in parallel, one round trip per
 * worker, with a short timeout so a dead worker never holds `ls` up. Records are updated.
 */
/** Connections kept open between calls of reconcile (p wait asks each second): close them with closeAll. */
export class KeptConnections {
  private readonly open = new Map<string, Promise<WorkerBackend>>();

  /** The worker's connection, opened once; a failed one is forgotten, so the next call tries again. */
  get(worker: Worker, connect: () => Promise<WorkerBackend>): Promise<WorkerBackend> {
    const key = `${worker.name}\0${worker.connection}`;
    let backend = this.open.get(key);
    if (!backend) {
      backend = connect();
      this.open.set(key, backend);
      backend.catch(() => this.open.delete(key));
    }
    return backend;
  }

  forget(worker: Worker): void {
    const key = `${worker.name}\0${worker.connection}`;
    void this.open.get(key)?.then(
      (b) => b.close(),
      () => {},
    );
    this.open.delete(key);
  }

  closeAll(): void {
    for (const b of this.open.values())
      void b.then(
        (x) => x.close(),
        () => {},
      );
    this.open.clear();
  }
}

export async function reconcile(
  store: JobStore,
  jobs: JobRecord[],
  timeoutMs = 5000,
  kept?: KeptConnections,
): Promise<Reconciled> {
  const unreachable = new Map<string, string>();
  const updated = new Map<string, JobRecord | undefined>();
  await Promise.all(
    byWorker(jobs.filter(isActive)).map(async (group) => {
      const worker = workerOf(group[0]!);
      try {
        // the SSH client loads only when there is a worker to ask: `p ls` with nothing
        // running starts as fast as `p --version`
        const { openWorker } = await import("./workers.ts");
        const connect = () => openWorker(worker, { timeoutMs });
        const backend = await (kept ? kept.get(worker, connect) : connect());
        let failed = true;
        try {
          const states = await backend.status(group.map((j) => j.id));
          for (const job of group) {
            const s = states.get(job.id);
            if (!s || (s.state === "running" && job.status === "running" && sameSlurm(job, s))) continue;
            // another p may have changed or removed the record since it was read
            updated.set(
              job.id,
              store.update(job.id, (current) => applyState(current, s)),
            );
          }
          failed = false;
        } finally {
          // a kept connection stays open for the next call, unless it failed
          if (!kept) backend.close();
          else if (failed) kept.forget(worker);
        }
      } catch (err) {
        unreachable.set(worker.name, (err as Error).message);
      }
    }),
  );
  return { jobs: jobs.flatMap((j) => (updated.has(j.id) ? (updated.get(j.id) ?? []) : [j])), unreachable };
}
