import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  type LaunchSpec,
  launchCommand,
  parseFollowStatus,
  parseStatusReport,
  removeCommand,
  statusCommand,
  stopCommand,
} from "../src/protocol/index.ts";
import { jobPid, localWorker } from "./_local.ts";

// The queue, run for real by the local sh: many jobs on one worker.
const { home, newId, sh } = localWorker("queue", "a000");
const jobFile = (id: string, name: string) => join(home, ".p/jobs", id, name);

// each test starts with the worker's queue empty: what one left running is waited for
const launched: string[] = [];
afterEach(async () => {
  for (const id of launched.splice(0)) await ended(id).catch(() => {});
});

async function launch(command: string, more: Partial<LaunchSpec> = {}) {
  const id = newId();
  launched.push(id);
  const r = await sh(launchCommand({ id, command, cwd: "/", worker: "w", ...more }, false));
  expect(r).toMatchObject({ err: "", code: 0 });
  // a detached launch returns as its runner starts; the tests read its pid
  const t0 = Date.now();
  while (!existsSync(jobFile(id, "runner")) && Date.now() - t0 < 3000) await Bun.sleep(10);
  return id;
}

/** A running job's pid, once its runner has written it (a moment after the job is granted its slot). */
const pidOf = (id: string) => jobPid(join(home, ".p/jobs", id));

async function states(ids: string[]) {
  const report = parseStatusReport((await sh(statusCommand(ids))).out);
  return ids.map((id) => {
    const s = report.get(id);
    return s?.state === "queued" ? `queued ${s.waitingFor}` : s?.state === "exited" ? `exited ${s.exitCode}` : s?.state;
  });
}

async function ended(id: string, timeoutMs = 15_000) {
  const t0 = Date.now();
  while (!existsSync(jobFile(id, "exitcode"))) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`job ${id} did not end`);
    await Bun.sleep(20);
  }
  return readFileSync(jobFile(id, "exitcode"), "utf8").trim();
}

/** A process that exists and is not a zombie. */
const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
};

const output = (id: string) => readFileSync(jobFile(id, "output.log"), "utf8");

describe("capacity", () => {
  test("slots are never exceeded, and jobs start first come, first served, each with its slot", async () => {
    const log = join(home, "slots.log");
    // each job logs its start and end; the runner's clock is the same for all
    const command = `echo "start $P_JOB_ID $P_SLOT" >>${log}; sleep 1; echo "end $P_JOB_ID" >>${log}`;
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push(await launch(command, { capacity: { slots: 3 } }));
    expect((await states(ids)).slice(3)).toEqual(Array(4).fill("queued slot"));
    for (const id of ids) expect(await ended(id)).toBe("0");
    let running = 0;
    let most = 0;
    const starts: string[] = [];
    const slots = new Set<string>();
    for (const line of readFileSync(log, "utf8").trim().split("\n")) {
      const [what, id, slot] = line.split(" ");
      if (what === "start") {
        starts.push(id!);
        running++;
        // a slot is never held by two jobs at once
        expect(slots.has(slot!)).toBe(false);
        slots.add(slot!);
        expect(["1", "2", "3"]).toContain(slot!);
      } else {
        running--;
        slots.delete(readFileSync(jobFile(id!, "granted"), "utf8").split(" ")[0]!);
      }
      most = Math.max(most, running);
    }
    expect(most).toBe(3);
    expect(starts).toEqual(ids);
  });

  test("GPUs: a job waits for as many as it needs and gets them as CUDA_VISIBLE_DEVICES; others pass it", async () => {
    const capacity = { gpus: ["0", "1", "2"] };
    const a = await launch('echo "$CUDA_VISIBLE_DEVICES"; sleep 0.6', { capacity, gpus: 2 });
    const b = await launch('echo "$CUDA_VISIBLE_DEVICES"', { capacity, gpus: 2 });
    const c = await launch('echo "$CUDA_VISIBLE_DEVICES"; env | grep -c ^CUDA_VISIBLE_DEVICES=; true', { capacity });
    expect(await states([a, b])).toEqual(["running", "queued gpu"]);
    expect(await ended(c)).toBe("0");
    expect(output(c)).toBe("\n0\n");
    expect((await states([b]))[0]).toBe("queued gpu");
    expect(await ended(b)).toBe("0");
    expect(output(a)).toBe("0,1\n");
    expect(output(b)).toBe("0,1\n");
    expect(() =>
      launchCommand({ id: newId(), command: "true", cwd: "/", worker: "w", capacity, gpus: 4 }, false),
    ).toThrow(/needs 4 GPUs and worker w has 3/);
  });

  test("an exclusive job waits for the worker to empty, and nothing starts beside it", async () => {
    const a = await launch("sleep 0.5");
    const x = await launch(`date +%s%N >${join(home, "x.start")}; sleep 0.3; date +%s%N >${join(home, "x.end")}`, {
      exclusive: true,
    });
    const b = await launch(`date +%s%N >${join(home, "b.start")}`);
    expect(await states([a, x, b])).toEqual(["running", "queued exclusive", "queued exclusive"]);
    await ended(b);
    const at = (name: string) => Number(readFileSync(join(home, name), "utf8"));
    expect(at("b.start")).toBeGreaterThan(at("x.end"));
    expect(Number(readFileSync(jobFile(a, "ended_at"), "utf8"))).toBeLessThanOrEqual(Math.ceil(at("x.start") / 1e9));
  });
});

describe("dependencies", () => {
  test("--after waits for success; a failure skips the job and those after it; --after-any runs anyway", async () => {
    const first = await launch("sleep 1; exit 3");
    const ok = await launch("echo ran", { after: { ids: [first] } });
    const chained = await launch("echo ran", { after: { ids: [ok] } });
    const any = await launch("echo ran anyway", { after: { ids: [first], any: true } });
    expect(await states([first, ok, any])).toEqual([
      "running",
      `queued after ${first.slice(0, 8)}`,
      `queued after ${first.slice(0, 8)}`,
    ]);
    expect(await ended(ok)).toBe("-");
    expect(await ended(chained)).toBe("-");
    expect(await ended(any)).toBe("0");
    expect(output(ok)).toBe("");
    expect(output(any)).toBe("ran anyway\n");
    const report = parseStatusReport((await sh(statusCommand([ok]))).out);
    expect(report.get(ok)).toMatchObject({ state: "exited", exitCode: null, skipped: true });
  });

  test("after a success the job runs", async () => {
    const first = await launch("true");
    const next = await launch("echo next", { after: { ids: [first] } });
    expect(await ended(next)).toBe("0");
    expect(output(next)).toBe("next\n");
  });
});

describe("leaving the queue", () => {
  test("a queued job stopped ends as stopped at once and never runs; the one behind it moves up", async () => {
    const capacity = { slots: 1 };
    const a = await launch("sleep 0.6", { capacity });
    const b = await launch("echo b ran", { capacity });
    const c = await launch("echo c ran", { capacity });
    const t0 = Date.now();
    const stop = await sh(stopCommand(b));
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(stop.out.split("\n")[0]).toBe("stopped");
    expect(await states([a, b, c])).toEqual(["running", "exited null", "queued slot"]);
    expect(await ended(c)).toBe("0");
    expect(output(b)).toBe("");
    expect(output(c)).toBe("c ran\n");
    const follow = await sh(`${launchCommand({ id: newId(), command: "true", cwd: "/", worker: "w" }, true)}`);
    expect(parseFollowStatus(follow.err.trim().split("\n").at(-1)!)).toMatchObject({ exitCode: 0, ran: true });
  });

  test("a job killed with its runner frees its slot for the next", async () => {
    const capacity = { slots: 1 };
    const a = await launch("sleep 30", { capacity });
    launched.pop();
    const b = await launch("echo b ran", { capacity });
    expect(await states([a, b])).toEqual(["running", "queued slot"]);
    const pid = pidOf(a);
    process.kill(Number.parseInt(readFileSync(jobFile(a, "runner"), "utf8"), 10), "SIGKILL");
    process.kill(-pid, "SIGKILL");
    const t0 = Date.now();
    expect(await ended(b)).toBe("0");
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(await states([a])).toEqual(["lost"]);
  });

  test("a queued job whose dir is removed leaves no runner behind", async () => {
    const capacity = { slots: 1 };
    const a = await launch("sleep 3", { capacity });
    const b = await launch("echo b ran", { capacity });
    launched.pop();
    const runner = Number.parseInt(readFileSync(jobFile(b, "runner"), "utf8"), 10);
    expect((await sh(removeCommand([b]))).code).toBe(0);
    const t0 = Date.now();
    while (isAlive(runner) && Date.now() - t0 < 5000) await Bun.sleep(50);
    expect(isAlive(runner)).toBe(false);
    expect(await ended(a)).toBe("0");
    // nor does its place in the queue hold anyone back
    const c = await launch("echo c ran", { capacity });
    expect(await ended(c, 4000)).toBe("0");
  });

  test("a runner's pid taken by another process later is not the runner: the job is lost, its place freed", async () => {
    const capacity = { slots: 1 };
    const a = await launch("sleep 30", { capacity });
    launched.pop();
    const b = await launch("echo b ran", { capacity });
    const [pid, start] = readFileSync(jobFile(a, "runner"), "utf8").split("\n");
    expect(start).toMatch(/^\d+$/);
    // (the runner first: else it may record the killed job's end before it goes)
    const job = pidOf(a);
    process.kill(Number(pid), "SIGKILL");
    process.kill(-job, "SIGKILL");
    // as if the pid had been reused: a live process of this user, started at another time
    const other = Bun.spawn(["sleep", "30"]);
    writeFileSync(jobFile(a, "runner"), `${other.pid}\n${start}\n`);
    try {
      expect(await ended(b)).toBe("0");
      expect(await states([a])).toEqual(["lost"]);
    } finally {
      other.kill();
    }
  });
});
