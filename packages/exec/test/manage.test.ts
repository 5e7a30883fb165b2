import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  launchCommand,
  parseSizes,
  parseStatusReport,
  parseStopReport,
  removeCommand,
  statusCommand,
  stopCommand,
} from "../src/protocol/index.ts";
import { jobPid } from "./_local.ts";

// Run for real by the local sh against a scratch HOME, as a worker would.
const home = mkdtempSync(join(tmpdir(), "p-manage-"));
afterAll(() => rmSync(home, { recursive: true, force: true }));
const env = { HOME: home, SHELL: "/bin/sh", PATH: process.env.PATH! };
const sh = (script: string) => {
  const r = Bun.spawnSync(["sh", "-c", script], { env });
  return { out: r.stdout.toString(), code: r.exitCode };
};
let n = 0;
const newId = () => `00000000-0000-4000-9000-${String(++n).padStart(12, "0")}`;
const launch = (command: string) => {
  const id = newId();
  expect(sh(launchCommand({ id, command, cwd: "/", worker: "w" }, false)).code).toBe(0);
  return { id, j: join(home, ".p/jobs", id) };
};
/** Processes of a group that are not zombies (this machine's init may reap slowly). */
const live = (pgid: string) => sh(`ps -e -o pgid=,stat= | awk '$1 == ${pgid} && $2 !~ /^Z/' | wc -l`).out.trim();
const waitFile = (f: string) => {
  for (let i = 0; i < 100 && !existsSync(f); i++) Bun.sleepSync(20);
};

describe("status.sh", () => {
  test("reports running, exited, lost and gone in one pass", () => {
    const running = launch("sleep 30");
    const exited = launch("exit 4");
    const lost = launch("sleep 30");
    const gone = newId();
    waitFile(join(exited.j, "exitcode"));
    const lostPid = jobPid(lost.j);
    process.kill(Number.parseInt(readFileSync(join(lost.j, "runner"), "utf8"), 10), "SIGKILL");
    // the pid file can appear a moment before the job has made its own process group
    const pgid = -lostPid;
    for (let i = 0; ; i++) {
      try {
        process.kill(pgid, "SIGKILL");
        break;
      } catch (err) {
        if (i > 100) throw err;
        Bun.sleepSync(10);
      }
    }
    Bun.sleepSync(100);
    const states = parseStatusReport(sh(statusCommand([running.id, exited.id, lost.id, gone])).out);
    // (each with when it began to run, as the worker's clock says)
    expect(states.get(running.id)).toEqual({ state: "running", startedAt: expect.any(Number) });
    expect(states.get(exited.id)).toEqual({
      state: "exited",
      exitCode: 4,
      endedAt: expect.any(Number),
      startedAt: expect.any(Number),
      stopped: false,
      timedOut: false,
      skipped: false,
    });
    expect(states.get(gone)).toEqual({ state: "gone" });
    expect(states.get(lost.id)).toEqual({ state: "lost" });
    sh(stopCommand(running.id, 1));
  });
});

describe("a job's pid and exit code", () => {
  test("appear whole, never empty: each is written, then renamed", async () => {
    // an mv that logs what it moves, and takes its time over these two: a reader that
    // looked meanwhile would find an empty file, were they written in place
    const bin = mkdtempSync(join(tmpdir(), "p-mv-"));
    afterAll(() => rmSync(bin, { recursive: true, force: true }));
    const log = join(bin, "moved");
    const real = sh("command -v mv").out.trim();
    writeFileSync(
      join(bin, "mv"),
      `#!/bin/sh\ncase "$*" in *.pid.tmp* | *.exitcode.tmp*) echo "$*" >>${log}; sleep 0.3 ;; esac\nexec ${real} "$@"\n`,
      { mode: 0o755 },
    );
    const id = newId();
    const j = join(home, ".p/jobs", id);
    const started = Bun.spawn(["sh", "-c", launchCommand({ id, command: "sleep 0.3", cwd: "/", worker: "w" }, false)], {
      env: { ...env, PATH: `${bin}:${env.PATH}` },
    });
    const seen = new Map<string, string[]>([
      ["pid", []],
      ["exitcode", []],
    ]);
    for (let i = 0; i < 600 && !seen.get("exitcode")!.length; i++) {
      for (const [name, texts] of seen)
        try {
          texts.push(readFileSync(join(j, name), "utf8"));
        } catch {}
      Bun.sleepSync(5);
    }
    expect(await started.exited).toBe(0);
    for (const texts of seen.values()) {
      expect(texts.length).toBeGreaterThan(0);
      for (const text of texts) expect(text).toMatch(/^-?\d+\n$/);
    }
    expect(readFileSync(log, "utf8").split("\n")).toEqual([
      `-f ${j}/.pid.tmp ${j}/pid`,
      `-f ${j}/.exitcode.tmp ${j}/exitcode`,
      "",
    ]);
  });
});

describe("stop.sh", () => {
  test("ends the whole process group, TERM first, and marks the job stopped", () => {
    const job = launch("sleep 60 & sleep 61 & echo started; wait");
    const pgid = String(jobPid(job.j));
    Bun.sleepSync(100);
    expect(live(pgid)).not.toBe("0");
    const report = parseStopReport(sh(stopCommand(job.id, 2)).out);
    expect(live(pgid)).toBe("0");
    // the report carries the state the stop left, so no second round trip is needed
    expect(report).toEqual({
      stopped: true,
      state: {
        state: "exited",
        exitCode: 143,
        endedAt: expect.any(Number),
        startedAt: expect.any(Number),
        stopped: true,
        timedOut: false,
        skipped: false,
      },
    });
    expect(parseStatusReport(sh(statusCommand([job.id])).out).get(job.id)).toEqual(report!.state!);
  });

  test("a job that ignores TERM is killed after the grace period", () => {
    const job = launch("trap '' TERM; echo ready; while :; do sleep 0.1; done");
    const pgid = String(jobPid(job.j));
    Bun.sleepSync(200);
    const t0 = Date.now();
    expect(parseStopReport(sh(stopCommand(job.id, 1)).out)).toMatchObject({ stopped: true, state: { exitCode: 137 } });
    expect(Date.now() - t0).toBeGreaterThan(900);
    expect(live(pgid)).toBe("0");
  });

  test("a finished job is left alone; an unknown one fails", () => {
    const job = launch("true");
    waitFile(join(job.j, "exitcode"));
    expect(parseStopReport(sh(stopCommand(job.id)).out)).toEqual({
      stopped: false,
      state: {
        state: "exited",
        exitCode: 0,
        endedAt: expect.any(Number),
        startedAt: expect.any(Number),
        stopped: false,
        timedOut: false,
        skipped: false,
      },
    });
    expect(sh(stopCommand(newId())).code).toBe(3);
  });

  test("a job that ends by itself while being stopped keeps its own exit code, and is not marked stopped", () => {
    const job = ending(7);
    const report = parseStopReport(sh(stopCommand(job.id, 1)).out);
    expect(report).toEqual({
      stopped: false,
      state: {
        state: "exited",
        exitCode: 7,
        endedAt: 1700000000,
        startedAt: 1699999990,
        stopped: false,
        timedOut: false,
        skipped: false,
      },
    });
    expect(existsSync(join(job.j, "stopped"))).toBe(false);
  });
});

/**
 * A job caught between its end and its record of it: its process is gone, and its runner
 * (alive) writes the exit code a moment later, as a runner does once `wait` returns.
 */
function ending(code: number) {
  const id = newId();
  const j = join(home, ".p/jobs", id);
  mkdirSync(j, { recursive: true });
  const gone = Bun.spawnSync(["sh", "-c", "echo $$"]).stdout.toString().trim();
  writeFileSync(join(j, "pid"), `${gone}\n`);
  writeFileSync(join(j, "output.log"), "");
  writeFileSync(join(j, "started_at"), "1699999990\n");
  const runner = Bun.spawn(["sh", "-c", `sleep 0.4; echo 1700000000 >"$0/ended_at"; echo ${code} >"$0/exitcode"`, j]);
  writeFileSync(join(j, "runner"), String(runner.pid));
  return { id, j };
}

describe("remove.sh", () => {
  test("measures, and with remove deletes, both dirs of each job", () => {
    const job = launch("true");
    waitFile(join(job.j, "exitcode"));
    mkdirSync(join(home, ".p/workdirs", job.id), { recursive: true });
    writeFileSync(join(home, ".p/workdirs", job.id, "big"), Buffer.alloc(200 * 1024));
    const dry = parseSizes(sh(removeCommand([job.id], { dryRun: true })).out);
    expect(dry.get(job.id)).toBeGreaterThanOrEqual(200 * 1024);
    expect(existsSync(job.j)).toBe(true);
    const done = parseSizes(sh(removeCommand([job.id])).out);
    expect(done.get(job.id)).toBe(dry.get(job.id)!);
    expect(existsSync(job.j)).toBe(false);
    expect(existsSync(join(home, ".p/workdirs", job.id))).toBe(false);
  });

  test("with stop, a running job is stopped first, and one that ends meanwhile is removed all the same", () => {
    const running = launch("sleep 60");
    const pgid = String(jobPid(running.j));
    const dying = ending(0);
    const sizes = parseSizes(sh(removeCommand([running.id, dying.id], { stop: true })).out);
    expect([...sizes.keys()].sort()).toEqual([running.id, dying.id].sort());
    expect(live(pgid)).toBe("0");
    for (const j of [running.j, dying.j]) expect(existsSync(j)).toBe(false);
  });

  test("without stop, nothing is signalled: the dirs go and the job runs on", () => {
    const running = launch("sleep 60");
    const pgid = String(jobPid(running.j));
    sh(removeCommand([running.id]));
    expect(existsSync(running.j)).toBe(false);
    expect(live(pgid)).not.toBe("0");
    process.kill(-Number(pgid), "SIGKILL");
  });
});
