import { describe, expect, test } from "bun:test";
import type { Probe } from "@p/exec/protocol";
import type { JobRecord, Worker } from "@p/store";
import { runsTally } from "../src/commands/ls.ts";
import { type Candidate, parseOn, placeByCapacity, planGroup, prefixedSink, sweep } from "../src/lib/group.ts";

// A group's plan, pure: which workers, which values, which job goes where.
const w = (name: string, slots?: number): Worker => ({ name, connection: name, ...(slots && { slots }) });
const config = { workers: [w("a"), w("b"), w("c")], default_worker: "a" };

describe("--on", () => {
  test.each<[string, string[]]>([
    ["a,b", ["a", "b"]],
    ["c, a", ["c", "a"]],
    ["a,a,b", ["a", "b"]],
    ["all", ["a", "b", "c"]],
  ])("%p is %p", (value, names) => {
    expect(parseOn(value, config).map((x) => x.name)).toEqual(names);
  });
  test.each([
    [",", /--on needs workers/],
    ["a,nope", /no worker named "nope"/],
  ])("%p is refused", (value, why) => {
    expect(() => parseOn(value, config)).toThrow(why);
  });
});

describe("--each", () => {
  test("the cartesian product, the first key slowest", () => {
    expect(sweep(["LR=0.1,0.2", "SEED=1,2,3"])).toEqual([
      { LR: "0.1", SEED: "1" },
      { LR: "0.1", SEED: "2" },
      { LR: "0.1", SEED: "3" },
      { LR: "0.2", SEED: "1" },
      { LR: "0.2", SEED: "2" },
      { LR: "0.2", SEED: "3" },
    ]);
    expect(sweep(["X=a=b"])).toEqual([{ X: "a=b" }]);
  });
  test.each([["SEED"], ["=1,2"], ["1X=1"], ["SEED="], ["A-B=1"]])("%p is refused", (spec) => {
    expect(() => sweep([spec])).toThrow(/is not KEY=v1,v2/);
  });
  test("a key given twice is refused", () => {
    expect(() => sweep(["A=1", "A=2"])).toThrow(/given twice/);
  });
  test("combinations go round the workers in turn", () => {
    const plan = planGroup([w("a"), w("b")], sweep(["S=1,2,3"]));
    expect(plan.map((m) => [m.worker.name, m.each!.S])).toEqual([
      ["a", "1"],
      ["b", "2"],
      ["a", "3"],
    ]);
    expect(planGroup([w("a"), w("b")]).map((m) => m.worker.name)).toEqual(["a", "b"]);
  });
});

describe("--any", () => {
  const probe = (load1: number, cores: number, active = 0): Probe => ({
    rsync: true,
    setsid: true,
    flock: true,
    load1,
    cores,
    active,
  });
  const c = (worker: Worker, p?: Probe): Candidate => ({ worker, ...(p && { probe: p }) });

  test.each<[string, Candidate[], number, string[]]>([
    ["the most free slots first", [c(w("a", 4), probe(0, 4, 3)), c(w("b", 4), probe(3, 4, 1))], 1, ["b"]],
    ["then the least load per core", [c(w("a"), probe(4, 8)), c(w("b"), probe(1, 1))], 1, ["a"]],
    ["an unreachable one never", [c(w("a")), c(w("b", 1), probe(9, 1, 5))], 2, ["b", "b"]],
    [
      "a sweep goes where most slots are free, then to the worker with fewest of its jobs",
      [c(w("a", 2), probe(0, 2, 0)), c(w("b", 1), probe(0, 2, 0))],
      5,
      ["a", "b", "a", "b", "a"],
    ],
    ["no limit: spread in turn", [c(w("a"), probe(0, 2)), c(w("b"), probe(0.5, 2))], 3, ["a", "b", "a"]],
  ])("%s", (_, candidates, count, names) => {
    expect(placeByCapacity(candidates, count).map((x) => x.name)).toEqual(names);
  });
  test("none reachable is an error", () => {
    expect(() => placeByCapacity([c(w("a"))], 1)).toThrow(/no candidate worker could be reached/);
  });
});

describe("prefixed output", () => {
  test("whole lines, each behind its prefix, however the bytes arrive; an unfinished one ended by flush", () => {
    const written: string[] = [];
    const to = {
      write: (b: Uint8Array) => written.push(Buffer.from(b).toString()) > 0,
      once: () => to,
    };
    const s = prefixedSink("[a] ", to);
    for (const piece of ["one\ntw", "o\n", "", "thr", "ee"]) s.write(Buffer.from(piece));
    expect(written).toEqual(["[a] one\n", "[a] two\n"]);
    s.flush();
    expect(written).toEqual(["[a] one\n", "[a] two\n", "[a] three\n"]);
  });
});

describe("runs of a commit", () => {
  const run = (worker: string, status: JobRecord["status"], exit_code: number | null): JobRecord => ({
    id: `${worker}0000000-0000-4000-8000-000000000000`,
    worker,
    connection: worker,
    command: "make test",
    argv: [],
    cwd: "/c",
    status,
    exit_code,
    started_at: 1,
    ended_at: 2,
    synced: true,
  });
  test.each<[JobRecord[], string]>([
    [[run("a", "done", 0), run("b", "done", 2), run("c", "done", 0)], "3 runs: 2 succeeded, 1 failed (b: exit 2)"],
    [[run("a", "done", 0)], "1 run: 1 succeeded"],
    [[run("a", "running", null), run("b", "failed", null)], "2 runs: 0 succeeded, 1 failed (b: failed), 1 not ended"],
    [
      ["a", "b", "c", "d", "e", "f", "g"].map((w, i) => run(w, "done", i + 1)),
      "7 runs: 0 succeeded, 7 failed (a: exit 1, b: exit 2, c: exit 3, d: exit 4, e: exit 5, and 2 more)",
    ],
  ])("%#: %p", (jobs, line) => {
    expect(runsTally(jobs)).toBe(line);
  });
});
