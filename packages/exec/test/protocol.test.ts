import { describe, expect, test } from "bun:test";
import {
  parseFollowStatus,
  parseLeftovers,
  parseProbe,
  parseSizes,
  parseStateLine,
  parseStatusReport,
  parseStopReport,
} from "../src/protocol/index.ts";

const ID = "00000000-0000-4000-8000-000000000001";

/** A job's end, as a state line says it: ended well, begun 10 s before, but what is given. */
const exited = (over: object = {}) => ({
  state: "exited" as const,
  exitCode: 0,
  endedAt: 1700000000,
  startedAt: 1699999990,
  stopped: false,
  timedOut: false,
  skipped: false,
  ...over,
});
/** The same, as a follow's status line says it, with the log's size. */
const status = (over: object = {}) => {
  const { state: _, ...end } = exited();
  return { ...end, ran: true, size: 0, ...over };
};

describe("parseStateLine", () => {
  test.each([
    [`${ID} running`, { state: "running" }],
    [`${ID} lost`, { state: "lost" }],
    [`${ID} gone`, { state: "gone" }],
    [`${ID} running 1699999990`, { state: "running", startedAt: 1699999990 }],
    [`${ID} exited 0 1700000000 - 1699999990`, exited()],
    [`${ID} exited 143 1700000000 stopped 1699999990`, exited({ exitCode: 143, stopped: true })],
    [`${ID} exited 3 - - -\n`, exited({ exitCode: 3, endedAt: null, startedAt: null })],
    [`${ID} exited - 1700000000 skipped -`, exited({ exitCode: null, startedAt: null, skipped: true })],
    [`${ID} queued slot`, { state: "queued", waitingFor: "slot" }],
    [`${ID} queued after 3f2a1b9c`, { state: "queued", waitingFor: "after 3f2a1b9c" }],
    [`${ID} queued`, undefined],
    [`${ID} exited  - - -`, undefined],
    [`${ID} exited x 1 - -`, undefined],
    [`${ID} exited 0 1 maybe -`, undefined],
    [`${ID} exited 0 1 - soon`, undefined],
    [`${ID} exited 0 1 -`, undefined],
    [`${ID} exited 0 1`, undefined],
    [`${ID} running extra`, undefined],
    [`${ID} running 1 2`, undefined],
    [`${ID} sleeping`, undefined],
    [`${ID}`, undefined],
    ["", undefined],
  ])("%p", (line, state) => {
    expect(parseStateLine(line)).toEqual(state ? [ID, state as never] : undefined);
  });

  test("a report keeps each job's line and skips noise", () => {
    const other = "00000000-0000-4000-8000-000000000002";
    const report = parseStatusReport(`${ID} running\nnoise from a profile\n${other} exited 1 5 - 4\n`);
    expect([...report]).toEqual([
      [ID, { state: "running" }],
      [other, exited({ exitCode: 1, endedAt: 5, startedAt: 4 })],
    ]);
  });
});

describe("a Slurm worker's status report", () => {
  const other = "00000000-0000-4000-8000-000000000002";
  const third = "00000000-0000-4000-8000-000000000003";
  test("each job's state gets what Slurm said of it; what Slurm forgot is left out", () => {
    const report = parseStatusReport(
      [
        `${ID} queued Resources`,
        `${ID} slurm 41 PENDING - Resources`,
        `${other} running`,
        `${other} slurm 42 RUNNING node17 None`,
        `${third} exited 0 9 - 8`,
        `${third} slurm 43 - - -`,
        "",
      ].join("\n"),
    );
    expect(report.get(ID)).toEqual({
      state: "queued",
      waitingFor: "Resources",
      slurm: { jobId: "41", state: "PENDING", reason: "Resources" },
    });
    expect(report.get(other)).toEqual({
      state: "running",
      slurm: { jobId: "42", state: "RUNNING", node: "node17", reason: "None" },
    });
    expect(report.get(third)).toMatchObject({ state: "exited", exitCode: 0, slurm: { jobId: "43" } });
    expect(report.get(third)?.slurm).toEqual({ jobId: "43" });
  });

  test("a reason of several words is kept whole; a job still being submitted has no Slurm line", () => {
    const report = parseStatusReport(
      `${ID} queued ReqNodeNotAvail, Reserved\n${ID} slurm 7 PENDING - ReqNodeNotAvail, Reserved\n` +
        `${other} queued submitting\n${other} slurm - - - -\n`,
    );
    expect(report.get(ID)).toEqual({
      state: "queued",
      waitingFor: "ReqNodeNotAvail, Reserved",
      slurm: { jobId: "7", state: "PENDING", reason: "ReqNodeNotAvail, Reserved" },
    });
    expect(report.get(other)).toEqual({ state: "queued", waitingFor: "submitting" });
  });
});

describe("parseFollowStatus", () => {
  test.each([
    ["p-status 0 1700000000 - 1699999990 12\n", status({ size: 12 })],
    ["p-status 143 1700000000 stopped 1699999990 0", status({ exitCode: 143, stopped: true })],
    ["p-status unknown - - - 5", status({ exitCode: null, endedAt: null, startedAt: null, size: 5 })],
    ["p-status - 1700000000 skipped - 0", status({ exitCode: null, startedAt: null, skipped: true, ran: false })],
    ["p-status - 1700000000 stopped - 0", status({ exitCode: null, startedAt: null, stopped: true, ran: false })],
    ["p-status 0 1700000000 -", undefined],
    ["p-status 0 1700000000 - 12", undefined],
    ["p-status", undefined],
    ["hello", undefined],
  ])("%p", (line, want) => {
    expect(parseFollowStatus(line)).toEqual(want as never);
  });
});

describe("parseStopReport", () => {
  test.each([
    [
      `stopped\n${ID} exited 143 9 stopped 8\n`,
      { stopped: true, state: exited({ exitCode: 143, endedAt: 9, startedAt: 8, stopped: true }) },
    ],
    [`finished\n${ID} exited 0 9 - 8\n`, { stopped: false, state: exited({ endedAt: 9, startedAt: 8 }) }],
    ["stopped\n", { stopped: true, state: undefined }],
    [`${ID} running\n`, undefined],
    ["", undefined],
  ])("%p", (text, report) => {
    expect(parseStopReport(text)).toEqual(report as never);
  });
});

describe("parseSizes and parseLeftovers", () => {
  test("sizes are KiB on the wire, bytes here; leftovers are picked out of the same report", () => {
    const text = `${ID} 8\nleftover 4 .p/workdirs/x.part\nleftover 1024 .p/mirrors/ab cd\nnot a line\n`;
    expect([...parseSizes(text)]).toEqual([[ID, 8192]]);
    expect(parseLeftovers(text)).toEqual([
      { path: ".p/workdirs/x.part", bytes: 4096 },
      { path: ".p/mirrors/ab cd", bytes: 1024 * 1024 },
    ]);
  });
});

describe("parseProbe", () => {
  test.each([
    [
      "rsync yes\nsetsid yes\nflock no\ncores 8\nmem_kib 16000000\n",
      { rsync: true, setsid: true, flock: false, cores: 8, memBytes: 16000000 * 1024 },
    ],
    [
      "rsync yes\nsetsid yes\nflock yes\ncores 2\nmem_kib 1024\ngpus 0,1,2\n",
      { rsync: true, setsid: true, flock: true, cores: 2, memBytes: 1024 * 1024, gpus: ["0", "1", "2"] },
    ],
    ["rsync yes\nsetsid yes\nflock yes\ngpus -\n", { rsync: true, setsid: true, flock: true }],
    ["rsync no\nsetsid yes\nflock yes\ncores -\nmem_kib -\n", { rsync: false, setsid: true, flock: true }],
    ["", { rsync: false, setsid: false, flock: false }],
    [
      "rsync yes\nsetsid yes\nflock yes\nuser ann\nhome /home/ann b\nsqueue yes\nscancel no\nslurm 22.05.8\nslurm_answers no\n",
      {
        rsync: true,
        setsid: true,
        flock: true,
        user: "ann",
        home: "/home/ann b",
        slurm: { version: "22.05.8", squeue: true, scancel: false, answers: false },
      },
    ],
  ])("%p", (text, probe) => {
    expect(parseProbe(text)).toEqual(probe);
  });
});
