import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseSizes, parseStatusReport, removeScript, statusScript, stopScript } from "../src/manage.ts";
import { launchScript } from "../src/script.ts";

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
  expect(sh(launchScript({ id, command, cwd: "/", worker: "w" })).code).toBe(0);
  return { id, j: join(home, ".p/jobs", id) };
};
/** Processes of a group that are not zombies (this machine's init may reap slowly). */
const live = (pgid: string) => sh(`ps -e -o pgid=,stat= | awk '$1 == ${pgid} && $2 !~ /^Z/' | wc -l`).out.trim();
const waitFile = (f: string) => {
  for (let i = 0; i < 100 && !existsSync(f); i++) Bun.sleepSync(20);
};

describe("statusScript", () => {
  test("reports running, exited, lost and gone in one pass", () => {
    const running = launch("sleep 30");
    const exited = launch("exit 4");
    const lost = launch("sleep 30");
    const gone = newId();
    waitFile(join(exited.j, "exitcode"));
    waitFile(join(lost.j, "pid"));
    process.kill(Number(readFileSync(join(lost.j, "runner"), "utf8")), "SIGKILL");
    // the pid file can appear a moment before the job has made its own process group
    const pgid = -Number(readFileSync(join(lost.j, "pid"), "utf8"));
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
    const states = parseStatusReport(sh(statusScript([running.id, exited.id, lost.id, gone])).out);
    expect(states.get(running.id)).toEqual({ state: "running" });
    expect(states.get(exited.id)).toEqual({ state: "exited", exitCode: 4, endedAt: expect.any(Number), stopped: false });
    expect(states.get(gone)).toEqual({ state: "gone" });
    expect(states.get(lost.id)).toEqual({ state: "lost" });
    sh(stopScript(running.id, 1));
  });
});

describe("stopScript", () => {
  test("ends the whole process group, TERM first, and marks the job stopped", () => {
    const job = launch("sleep 60 & sleep 61 & echo started; wait");
    waitFile(join(job.j, "pid"));
    Bun.sleepSync(100);
    const pgid = readFileSync(join(job.j, "pid"), "utf8").trim();
    expect(live(pgid)).not.toBe("0");
    expect(sh(stopScript(job.id, 2)).out).toBe("stopped\n");
    expect(live(pgid)).toBe("0");
    expect(parseStatusReport(sh(statusScript([job.id])).out).get(job.id)).toMatchObject({ state: "exited", exitCode: 143, stopped: true });
  });

  test("a job that ignores TERM is killed after the grace period", () => {
    const job = launch("trap '' TERM; echo ready; while :; do sleep 0.1; done");
    waitFile(join(job.j, "pid"));
    Bun.sleepSync(200);
    const t0 = Date.now();
    expect(sh(stopScript(job.id, 1)).out).toBe("stopped\n");
    expect(Date.now() - t0).toBeGreaterThan(900);
    const pgid = readFileSync(join(job.j, "pid"), "utf8").trim();
    expect(live(pgid)).toBe("0");
  });

  test("a finished job is left alone; an unknown one fails", () => {
    const job = launch("true");
    waitFile(join(job.j, "exitcode"));
    expect(sh(stopScript(job.id)).out).toBe("finished\n");
    expect(sh(stopScript(newId())).code).toBe(3);
  });
});

describe("removeScript", () => {
  test("measures, and with remove deletes, both dirs of each job", () => {
    const job = launch("true");
    waitFile(join(job.j, "exitcode"));
    mkdirSync(join(home, ".p/workdirs", job.id), { recursive: true });
    writeFileSync(join(home, ".p/workdirs", job.id, "big"), Buffer.alloc(200 * 1024));
    const dry = parseSizes(sh(removeScript([job.id], false)).out);
    expect(dry.get(job.id)).toBeGreaterThanOrEqual(200 * 1024);
    expect(existsSync(job.j)).toBe(true);
    const done = parseSizes(sh(removeScript([job.id], true)).out);
    expect(done.get(job.id)).toBe(dry.get(job.id)!);
    expect(existsSync(job.j)).toBe(false);
    expect(existsSync(join(home, ".p/workdirs", job.id))).toBe(false);
  });
});
