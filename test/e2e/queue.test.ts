import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { home, jobDirOf, p, scratch, startWorkers, type Workers, waitFor } from "./_harness.ts";

// Many jobs on one worker, through the compiled p and real sshd: the queue on the worker.
setDefaultTimeout(90_000);

let w: Workers;
let env: Record<string, string>;
// a fixture nvidia-smi: two GPUs for p-w2, none for anyone else
const NVIDIA_SMI = "/usr/local/bin/nvidia-smi";

beforeAll(async () => {
  w = startWorkers();
  env = w.env;
  writeFileSync(
    NVIDIA_SMI,
    '#!/bin/sh\n[ "$(id -un)" = p-w2 ] || exit 9\necho "GPU 0: Fake A (UUID: GPU-a)"\necho "GPU 1: Fake B (UUID: GPU-b)"\n',
  );
  chmodSync(NVIDIA_SMI, 0o755);
  expect((await p(["worker", "register", "p-w1", "--slots", "3"], { env })).code).toBe(0);
});
afterAll(async () => {
  rmSync(NVIDIA_SMI, { force: true });
  await p(["prune", "--force"], { env });
  w.stop();
});

const detach = async (args: string[]) => {
  const r = await p(["-n", "-d", ...args], { env });
  expect(r).toMatchObject({ code: 0, stderr: "" });
  return r.stdout.trim();
};
const ended = (user: string, id: string) => existsSync(join(jobDirOf(user, id), "exitcode"));
const lsJson = async () => JSON.parse((await p(["ls", "--json"], { env })).stdout) as Record<string, unknown>[];

describe("slots", () => {
  test("40 jobs from 4 clients at once on 3 slots: never more than 3 run, all finish, each client's in order", async () => {
    const log = join(home("p-w1"), "queue.log");
    rmSync(log, { force: true });
    // a sampler on the worker: how many of these jobs run at once, every 20 ms
    let most = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const r = Bun.spawnSync(["pgrep", "-c", "-u", "p-w1", "-f", "^sleep 2.51$"]);
        const n = Number(r.stdout.toString().trim() || 0);
        most = Math.max(most, n);
        await Bun.sleep(20);
      }
    })();
    const command = `echo "$CLIENT $SEQ $P_SLOT" >>${log}; sleep 2.51`;
    const client = async (c: number) => {
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) ids.push(await detach(["--env", `CLIENT=${c}`, "--env", `SEQ=${i}`, "--", command]));
      return ids;
    };
    const ids = (await Promise.all([0, 1, 2, 3].map(client))).flat();
    const queued = (await lsJson()).filter((j) => j.status === "queued");
    const waited = await p(["wait", ...ids.map((id) => id.slice(0, 8))], { env });
    sampling = false;
    await sampler;
    expect(waited.code).toBe(0);
    expect(queued.length).toBeGreaterThan(0);
    expect(queued[0]).toMatchObject({ waiting_for: "slot" });
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(3);
    const lines = readFileSync(log, "utf8").trim().split("\n");
    expect(lines).toHaveLength(40);
    for (let c = 0; c < 4; c++) {
      const seqs = lines.map((l) => l.split(" ")).filter(([who]) => who === String(c));
      expect(seqs.map(([, seq]) => Number(seq))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      for (const [, , slot] of seqs) expect(["1", "2", "3"]).toContain(slot!);
    }
    const jobs = await lsJson();
    expect(jobs.filter((j) => ids.includes(j.id as string))).toEqual([]);
  });

  test("a queued job stopped leaves the queue as stopped and never runs", async () => {
    expect((await p(["worker", "set", "p-w1", "--slots", "1"], { env })).code).toBe(0);
    const a = await detach(["--", "sleep 30"]);
    const b = await detach(["--", "echo b ran"]);
    const ls = await p(["ls"], { env });
    expect(ls.stdout).toContain("queued (slot)");
    const stop = await p(["stop", b.slice(0, 8)], { env });
    expect(stop).toMatchObject({ code: 0, stdout: `Stopped job ${b.slice(0, 8)}\n` });
    expect((await p(["stop", a.slice(0, 8)], { env })).code).toBe(0);
    const shown = JSON.parse((await p(["ls", "-a", "--json"], { env })).stdout) as Record<string, unknown>[];
    expect(shown.find((j) => j.id === b)).toMatchObject({ status: "stopped", exit_code: null });
    await Bun.sleep(1500);
    expect(readFileSync(join(jobDirOf("p-w1", b), "output.log"), "utf8")).toBe("");
    expect(existsSync(join(jobDirOf("p-w1", b), "pid"))).toBe(false);
    expect((await p(["wait", b.slice(0, 8)], { env })).code).toBe(1);
  });

  test("kill -9 of a running job's tree frees its slot within a second", async () => {
    const a = await detach(["--", "sleep 30 & sleep 31"]);
    const b = await detach(["--", "echo b ran"]);
    const pgid = readFileSync(join(jobDirOf("p-w1", a), "pid"), "utf8").trim();
    const t0 = Date.now();
    process.kill(-Number(pgid), "SIGKILL");
    await waitFor(() => ended("p-w1", b), 5000);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(readFileSync(join(jobDirOf("p-w1", b), "output.log"), "utf8")).toBe("b ran\n");
  });

  test("all the worker user's processes killed: queued and running jobs end unknown, and none runs twice", async () => {
    const a = await detach(["--", "echo a >>~/twice.log; sleep 30"]);
    const b = await detach(["--", "echo b >>~/twice.log"]);
    Bun.spawnSync(["pkill", "-KILL", "-u", "p-w1"]);
    await Bun.sleep(300);
    const shown = JSON.parse((await p(["ls", "-a", "--json"], { env })).stdout) as Record<string, unknown>[];
    expect(shown.find((j) => j.id === a)).toMatchObject({ status: "unknown" });
    expect(shown.find((j) => j.id === b)).toMatchObject({ status: "unknown" });
    // what comes next runs, once
    const c = await detach(["--", "echo c >>~/twice.log"]);
    expect((await p(["wait", c], { env })).code).toBe(0);
    const log = readFileSync(join(home("p-w1"), "twice.log"), "utf8");
    if (log !== "a\nc\n")
      // what the worker holds of each job, to say how one ran that should not have
      for (const id of [a, b, c])
        console.error(id, Bun.spawnSync(["sh", "-c", `cd ${jobDirOf("p-w1", id)} && grep -H . *`]).stdout.toString());
    expect(log).toBe("a\nc\n");
  });
});

describe("dependencies and wait", () => {
  test("--after runs on success and skips on failure; --after-any runs anyway; p wait says the first failure", async () => {
    expect((await p(["worker", "set", "p-w1", "--slots", "none"], { env })).code).toBe(0);
    const a = await detach(["--", "sleep 4; exit 3"]);
    const b = await detach(["--after", a.slice(0, 8), "--", "echo b ran"]);
    const c = await detach(["--after-any", a.slice(0, 8), "--", "echo c ran"]);
    const ok = await detach(["--", "true"]);
    const d = await detach(["--after", ok.slice(0, 8), "--", "echo d ran"]);
    const queued = await lsJson();
    expect(queued.find((j) => j.id === b)).toMatchObject({ status: "queued", waiting_for: `after ${a.slice(0, 8)}` });
    const all = await p(["wait", "--json", ok, a, b, c, d], { env });
    expect(all.code).toBe(3);
    const jobs = JSON.parse(all.stdout) as Record<string, unknown>[];
    expect(jobs.map((j) => [j.status, j.exit_code])).toEqual([
      ["done", 0],
      ["done", 3],
      ["skipped", null],
      ["done", 0],
      ["done", 0],
    ]);
    expect((await p(["wait", c, d], { env })).code).toBe(0);
    expect((await p(["logs", c.slice(0, 8)], { env })).stdout).toBe("c ran\n");
    expect((await p(["logs", b.slice(0, 8)], { env })).stdout).toBe("");
    expect((await p(["wait", b], { env })).code).toBe(1);
    // (following it says why it never ran)
    const followed = await p(["logs", "-f", b.slice(0, 8)], { env });
    expect(followed).toMatchObject({ code: 1, stdout: "" });
    expect(followed.stderr).toContain("[Job skipped: a job it runs after did not succeed]");
  });

  test("p wait --timeout gives up with 124, and --fail-fast returns at the first failure", async () => {
    const slow = await detach(["--", "sleep 20"]);
    const t0 = Date.now();
    const timedOut = await p(["wait", "--timeout", "1s", slow], { env });
    expect(timedOut.code).toBe(124);
    expect(timedOut.stderr).toContain(`gave up waiting: ${slow.slice(0, 8)} had not ended`);
    const fails = await detach(["--", "exit 5"]);
    const fast = await p(["wait", "--fail-fast", slow, fails], { env });
    expect(fast.code).toBe(5);
    expect(Date.now() - t0).toBeLessThan(10_000);
    await p(["stop", slow], { env });
  });
});

describe("GPUs", () => {
  test("register finds the worker's GPUs; jobs wait for them and get CUDA_VISIBLE_DEVICES", async () => {
    const reg = await p(["worker", "register", "p-w2", "-n", "gpubox"], { env });
    expect(reg.stdout).toContain("no slot limit, GPUs 0,1");
    const both = await p(["gpubox", "-n", "--gpus", "2", "--", 'echo "$CUDA_VISIBLE_DEVICES"'], { env });
    expect(both).toMatchObject({ code: 0, stdout: "0,1\n" });
    const one = await detach(["gpubox", "--gpus", "1", "--", 'echo "$CUDA_VISIBLE_DEVICES"; sleep 2']);
    const two = await detach(["gpubox", "--gpus", "1", "--", 'echo "$CUDA_VISIBLE_DEVICES"; sleep 2']);
    const three = await detach(["gpubox", "--gpus", "1", "--", 'echo "$CUDA_VISIBLE_DEVICES"']);
    expect((await lsJson()).find((j) => j.id === three)).toMatchObject({ status: "queued", waiting_for: "gpu" });
    expect((await p(["wait", one, two, three], { env })).code).toBe(0);
    const out = async (id: string) => (await p(["logs", id.slice(0, 8)], { env })).stdout;
    expect([await out(one), await out(two)].sort()).toEqual(["0\n", "1\n"]);
    expect(["0\n", "1\n"]).toContain(await out(three));
    const tooMany = await p(["gpubox", "-n", "--gpus", "3", "--", "true"], { env });
    expect(tooMany.code).toBe(64);
    expect(tooMany.stderr).toContain("needs 3 GPUs and worker gpubox has 2");
  });
});

describe("secrets", () => {
  test("--secret reaches the job, and no argv on either side, record or worker file ever shows it", async () => {
    const value = `tok-${crypto.randomUUID()}`;
    let seen = "";
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const ps = Bun.spawnSync(["ps", "-eo", "args"]).stdout.toString();
        if (ps.includes(value)) seen = ps.split("\n").find((l) => l.includes(value)) ?? "?";
        await Bun.sleep(10);
      }
    })();
    const r = await p(["-n", "--secret", "TOKEN", "--", 'printf %s "$TOKEN" | wc -c; sleep 1'], {
      env: { ...env, TOKEN: value },
    });
    sampling = false;
    await sampler;
    expect(r).toMatchObject({ code: 0, stdout: `${value.length}\n` });
    expect(seen).toBe("");
    const grep = (dir: string) => Bun.spawnSync(["grep", "-rl", value, dir]).stdout.toString();
    expect(grep(join(home("p-w1"), ".p"))).toBe("");
    expect(grep(env.XDG_DATA_HOME!)).toBe("");
    const listed = (await p(["ls", "-a", "--json"], { env })).stdout;
    expect(listed).not.toContain(value);
    expect((JSON.parse(listed) as Record<string, unknown>[]).at(-1)).toMatchObject({ secrets: ["TOKEN"] });
  });
});

describe("names, tags, provenance and rerun", () => {
  test("a named, tagged job in a git tree: found by name, listed by tag, its commit recorded; rerun reads it all again", async () => {
    const cwd = scratch("named");
    const git = (...a: string[]) => Bun.spawnSync(["git", "-C", cwd, ...a], { stderr: "pipe" });
    git("init", "-q", "-b", "trunk");
    writeFileSync(join(cwd, "data.txt"), "one\n");
    git("add", ".");
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first");
    const commit = git("rev-parse", "HEAD").stdout.toString().trim();
    const command = 'cat data.txt; echo "$X $TOKEN"';
    const run = (extra: string[], more: Record<string, string> = {}) =>
      p(["--name", "build", "--tag", "ci", "--env", "X", "--secret", "TOKEN", ...extra, "--", command], {
        env: { ...env, X: "x1", TOKEN: "t1", ...more },
        cwd,
      });
    expect(await run([])).toMatchObject({ code: 0, stdout: "one\nx1 t1\n" });
    expect((await p(["logs", "build"], { env })).stdout).toBe("one\nx1 t1\n");
    const tagged = JSON.parse((await p(["ls", "-a", "--tag", "ci", "--json"], { env })).stdout);
    expect(tagged).toHaveLength(1);
    expect(tagged[0]).toMatchObject({ name: "build", tags: ["ci"], git: { commit, branch: "trunk", dirty: false } });
    // the files change; rerun syncs them as they are now, reads X and TOKEN here again
    writeFileSync(join(cwd, "data.txt"), "two\n");
    const again = await p(["rerun", "build"], { env: { ...env, X: "x2", TOKEN: "t2" }, cwd: scratch("elsewhere") });
    expect(again).toMatchObject({ code: 0, stdout: "two\nx2 t2\n" });
    expect(again.stderr).toContain(`Re-running job ${tagged[0].short_id}`);
    const both = JSON.parse((await p(["ls", "-a", "--tag", "ci", "--json"], { env })).stdout);
    expect(both).toHaveLength(2);
    expect(both[1]).toMatchObject({ rerun_of: tagged[0].id, git: { commit, dirty: true }, tags: ["ci"] });
    expect(both[1].name).toBeUndefined();
    const long = await p(["ls", "-a", "-l", "--tag", "ci"], { env });
    expect(long.stdout).toContain(`${commit.slice(0, 8)}*`);
    expect(long.stdout).toMatch(/build/);
    expect((await p(["wait", "--tag", "ci"], { env })).code).toBe(0);
    // a second job of the same name: the name no longer says which
    expect((await run([])).code).toBe(0);
    const ambiguous = await p(["logs", "build"], { env });
    expect(ambiguous.code).toBe(64);
    expect(ambiguous.stderr).toContain('job name "build" is ambiguous');
  });
});
