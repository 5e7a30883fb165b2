import { parseStatusReport, remoteSh, statusScript, type RemoteState } from "@p/exec/scripts";
import type { JobRecord, JobStore } from "@p/store";

export interface Reconciled {
  jobs: JobRecord[];
  /** Workers that could not be asked, with the reason; their jobs keep their last known state. */
  unreachable: Map<string, string>;
}

/** The record a worker's answer implies. */
export function applyState(job: JobRecord, s: RemoteState): JobRecord {
  switch (s.state) {
    case "running":
      return job;
    case "exited":
      return { ...job, status: s.stopped ? "stopped" : "done", exit_code: s.exitCode, ended_at: s.endedAt ?? job.ended_at };
    case "lost":
    case "gone":
      return { ...job, status: "unknown", ended_at: job.ended_at };
  }
}

/** Jobs grouped by the worker (name and connection) they ran on. */
export function byWorker(jobs: JobRecord[]): JobRecord[][] {
  const groups = new Map<string, JobRecord[]>();
  for (const j of jobs) {
    const key = `${j.worker}\0${j.connection}`;
    groups.set(key, [...(groups.get(key) ?? []), j]);
  }
  return [...groups.values()];
}

/**
 * Ask each worker that has running jobs for their state: in parallel, one round trip per
 * worker, with a short timeout so a dead worker never holds `ls` up. Records are updated.
 */
export async function reconcile(store: JobStore, jobs: JobRecord[], timeoutMs = 5000): Promise<Reconciled> {
  const unreachable = new Map<string, string>();
  const updated = new Map<string, JobRecord | undefined>();
  await Promise.all(
    byWorker(jobs.filter((j) => j.status === "running")).map(async (group) => {
      const { worker: name, connection } = group[0]!;
      try {
        // the SSH client loads only when there is a worker to ask: `p ls` with nothing
        // running starts as fast as `p --version`
        const { connectWorker } = await import("./_ssh.ts");
        const conn = await connectWorker({ name, connection }, { timeoutMs });
        try {
          const r = await conn.run(remoteSh(statusScript(group.map((j) => j.id))));
          const states = parseStatusReport(r.stdout);
          for (const job of group) {
            const s = states.get(job.id);
            if (!s || s.state === "running") continue;
            // another p may have changed or removed the record since it was read
            updated.set(job.id, store.update(job.id, (current) => applyState(current, s)));
          }
        } finally {
          conn.close();
        }
      } catch (err) {
        unreachable.set(name, (err as Error).message);
      }
    }),
  );
  return { jobs: jobs.flatMap((j) => (updated.has(j.id) ? (updated.get(j.id) ?? []) : [j])), unreachable };
}
