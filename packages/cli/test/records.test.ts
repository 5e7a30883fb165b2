import { describe, expect, test } from "bun:test";
import type { RemoteState } from "@p/exec/protocol";
import type { JobRecord } from "@p/store";
import { durationS } from "../src/_format.ts";
import { applyState } from "../src/lib/records.ts";

// What a Slurm worker says becomes the record: Slurm's word kept as it last said it.
const job: JobRecord = {
  id: "00000000-0000-4000-8000-000000000001",
  worker: "hpc",
  connection: "login",
  command: "true",
  argv: ["true"],
  cwd: "/c",
  status: "running",
  exit_code: null,
  started_at: 1,
  ended_at: null,
  synced: true,
};

describe("applyState with Slurm's word", () => {
  test.each<[string, JobRecord, RemoteState, Partial<JobRecord>]>([
    [
      "pending: queued with Slurm's reason",
      job,
      { state: "queued", waitingFor: "Resources", slurm: { jobId: "7", state: "PENDING", reason: "Resources" } },
      { status: "queued", waiting_for: "Resources", slurm: { job_id: "7", state: "PENDING", reason: "Resources" } },
    ],
    [
      "running: its node, and no reason (Slurm says None)",
      {
        ...job,
        status: "queued",
        waiting_for: "Resources",
        slurm: { job_id: "7", state: "PENDING", reason: "Resources" },
      },
      { state: "running", slurm: { jobId: "7", state: "RUNNING", node: "n1", reason: "None" } },
      { status: "running", slurm: { job_id: "7", state: "RUNNING", node: "n1" } },
    ],
    [
      "ended, Slurm still knows it: its final state",
      { ...job, slurm: { job_id: "7", state: "RUNNING", node: "n1" } },
      {
        state: "exited",
        exitCode: 3,
        endedAt: 9,
        startedAt: 5,
        stopped: false,
        timedOut: false,
        skipped: false,
        slurm: { jobId: "7", state: "FAILED", node: "n1" },
      },
      { status: "done", exit_code: 3, slurm: { job_id: "7", state: "FAILED", node: "n1" } },
    ],
    [
      "ended, Slurm forgot it: the node is kept",
      { ...job, slurm: { job_id: "7", state: "RUNNING", node: "n1" } },
      {
        state: "exited",
        exitCode: 0,
        endedAt: 9,
        startedAt: 5,
        stopped: false,
        timedOut: false,
        skipped: false,
        slurm: { jobId: "7" },
      },
      { status: "done", slurm: { job_id: "7", node: "n1" } },
    ],
    [
      "ended as a follow saw it (no word of Slurm's): no state from before",
      { ...job, slurm: { job_id: "7", state: "PENDING", reason: "Resources" } },
      { state: "exited", exitCode: 0, endedAt: 9, startedAt: 5, stopped: false, timedOut: false, skipped: false },
      { status: "done", slurm: { job_id: "7" } },
    ],
  ])("%s", (_, record, state, expected) => {
    expect(applyState(record, state)).toMatchObject(expected);
    expect(applyState(record, state).slurm).toEqual(expected.slurm!);
  });
});

// A job's duration is how long it ran: from when the worker says it began (after its sync
// and any wait in the queue), by the worker's clock, as its end is.
describe("when a job began to run, and its duration", () => {
  const exited = {
    state: "exited",
    exitCode: 0,
    endedAt: 109,
    stopped: false,
    timedOut: false,
    skipped: false,
  } as const;
  const queued: JobRecord = { ...job, status: "queued", waiting_for: "slot", started_at: 100 };
  // (a running job's duration runs to now)
  const now = () => Math.floor(Date.now() / 1000);
  test.each<[string, JobRecord, RemoteState, Partial<JobRecord>, () => number]>([
    [
      "queued, then running: since it began",
      queued,
      { state: "running", startedAt: 104 },
      { run_started_at: 104 },
      () => now() - 104,
    ],
    [
      "running, its start not written yet: since p started it",
      queued,
      { state: "running" },
      { run_started_at: undefined },
      () => now() - 100,
    ],
    [
      "ended after 5 s in the queue: it ran 5 s",
      queued,
      { ...exited, startedAt: 104 },
      { run_started_at: 104 },
      () => 5,
    ],
    [
      "stopped while queued: it never ran",
      queued,
      { ...exited, exitCode: null, startedAt: null, stopped: true },
      { run_started_at: undefined },
      () => 9,
    ],
    [
      "ended, said of a job whose start was known",
      { ...job, started_at: 100, run_started_at: 101 },
      { ...exited, startedAt: 101 },
      { run_started_at: 101 },
      () => 8,
    ],
  ])("%s", (_, record, state, expected, seconds) => {
    const after = applyState(record, state);
    expect(after.run_started_at).toBe(expected.run_started_at!);
    expect(durationS(after)).toBe(seconds());
  });
});
