import { describe, expect, test } from "bun:test";
import type { RemoteState } from "@p/exec/protocol";
import type { JobRecord } from "@p/store";
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
      { state: "exited", exitCode: 0, endedAt: 9, stopped: false, timedOut: false, skipped: false },
      { status: "done", slurm: { job_id: "7" } },
    ],
  ])("%s", (_, record, state, expected) => {
    expect(applyState(record, state)).toMatchObject(expected);
    expect(applyState(record, state).slurm).toEqual(expected.slurm!);
  });
});
