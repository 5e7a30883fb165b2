import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  asWorker,
  jobDirOf,
  lastJob,
  layout,
  onWorkerPath,
  p,
  scratch,
  spawnP,
  useWorkers,
  type Workers,
  waitFor,
  workDirOf,
} from "./_harness.ts";

// real sshd, real rsync, real jobs: slower than unit tests
setDefaultTimeout(30_000);

let w: Workers;
let env: Record<string, string>;

useWorkers([["p-w1"], ["p-w2"]], (started) => {
  w = started;
  env = w.env;
});

const detach = async (cmd: string, worker: string[] = []) => {
  const r = await p([...worker, "-d", "--", cmd], { env });
  expect(r.code).toBe(0);
  return r.stdout.trim();
};
const lsJson = async (...flags: string[]) =>
  JSON.parse((await p(["ls", "--json", ...flags], { env })).stdout) as Record<string, unknown>[];
/** A job's record as it is on disk, without asking any worker (as p ls would). */
const recordPath = (id: string) => join(env.XDG_DATA_HOME!, "p", "jobs", `${id}.json`);
const record = (id: string) => JSON.parse(readFileSync(recordPath(id), "utf8")) as Record<string, unknown>;
const ended = (user: string, id: string) => existsSync(join(jobDirOf(user, id), "exitcode"));
/** A followed job that has started (its first line shown), and its id; the caller kills the follower. */
async function startedFollower() {
  const follower = spawnP(["-n", "--", "echo started; sleep 60"], { env });
  const first = await follower.stdout.getReader().read();
  expect(new TextDecoder().decode(first.value)).toBe("started\n");
  return { follower, id: lastJob(env)!.id };
}
/** Live (non-zombie) processes of a job's process group, as seen on the worker. */
const liveInGroup = (user: string, id: string) => {
  const pgid = readFileSync(join(jobDirOf(user, id), "pid"), "utf8").trim();
  return asWorker(user, `ps -e -o pgid=,stat=,comm= | awk '$1 == ${pgid} && $2 !~ /^Z/'`).trim();
};

describe("p ls", () => {
  test("shows running jobs in the spec's columns; -a adds finished ones, newest last", async () => {
    const cwd = scratch("ls");
    const done = (await p(["--", "exit 3"], { env, cwd })).code;
    expect(done).toBe(3);
    const running = await detach("sleep 30");
    const r = await p(["ls"], { env });
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^ID\s+WORKER\s+CWD\s+COMMAND\s+STATUS\s+DURATION$/);
    expect(r.stdout).toMatch(new RegExp(`${running.slice(0, 8)}\\s+p-w1\\s+\\S+\\s+sleep 30\\s+running\\s+0:00:0\\d`));
    expect(r.stdout).not.toContain("exit 3");
    const all = (await p(["ls", "-a"], { env })).stdout.trim().split("\n");
    expect(all.at(-1)).toContain(running.slice(0, 8));
    expect(all.join("\n")).toMatch(/exit 3\s+done \[3\]/);
    // columns line up whatever the content
    const statusCol = all[0]!.indexOf("STATUS");
    for (const line of all.slice(1))
      expect(line.slice(statusCol)).toMatch(/^(running|done|failed|stopped|timeout|unknown)/);
    await p(["stop", running], { env });
  });

  test("--json prints one array of job objects and nothing else", async () => {
    const before = Math.floor(Date.now() / 1000);
    const id = await detach("sleep 1; exit 7");
    await waitFor(() => ended("p-w1", id));
    const after = Math.ceil(Date.now() / 1000);
    const jobs = await lsJson("-a");
    const job = jobs.find((j) => j.id === id)!;
    expect(job).toEqual({
      id,
      short_id: id.slice(0, 8),
      worker: "p-w1",
      cwd: expect.any(String),
      command: "sleep 1; exit 7",
      status: "done",
      exit_code: 7,
      started_at: expect.any(Number),
      run_started_at: expect.any(Number),
      ended_at: expect.any(Number),
      duration_s: expect.any(Number),
    });
    // (it ran a second: from when the worker began it, to its end)
    expect(job.duration_s).toBe((job.ended_at as number) - (job.run_started_at as number));
    expect(job.duration_s as number).toBeGreaterThanOrEqual(1);
    expect(job.duration_s as number).toBeLessThanOrEqual(2);
    // (the worker counts its end from its start on the boot clock: still the wall clock's time)
    expect(job.run_started_at as number).toBeGreaterThanOrEqual(before);
    expect(job.ended_at as number).toBeLessThanOrEqual(after);
    const jq = Bun.spawnSync(
      [
        "sh",
        "-c",
        `"$0" ls -a --json | node -e 'JSON.parse(require("fs").readFileSync(0,"utf8")).length' `,
        join(import.meta.dir, "../../dist/p"),
      ],
      { env },
    );
    expect(jq.exitCode).toBe(0);
  });

  test("with no running jobs, ls opens no SSH connection at all", async () => {
    const broken = { ...env, P_SSH_COMMAND: "false" };
    for (const j of await lsJson()) await p(["stop", j.id as string], { env });
    const r = await p(["ls", "-a"], { env: broken });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
  });

  test("an unreachable worker is said so quickly; its jobs keep their last status, unverified", async () => {
    const id = await detach("sleep 30", ["p-w2"]);
    const broken = { ...env, P_SSH_COMMAND: `ssh -F ${join(w.dir, "ssh_config")} -o Port=1` };
    const t0 = Date.now();
    const r = await p(["ls"], { env: broken });
    expect(Date.now() - t0).toBeLessThan(6000);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/worker p-w2 is unreachable/);
    expect(r.stdout).toMatch(new RegExp(`${id.slice(0, 8)}.*running\\?`));
    const json = JSON.parse((await p(["ls", "--json"], { env: broken })).stdout);
    expect(json.find((j: { id: string }) => j.id === id)).toMatchObject({ status: "running", unverified: true });
    await p(["stop", id], { env });
  });

  test("a job killed with kill -9 on the worker shows as unknown", async () => {
    const id = await detach("sleep 60");
    await waitFor(() => existsSync(join(jobDirOf("p-w1", id), "pid")));
    asWorker("p-w1", `kill -9 $(cat ~/${layout.JOBS_DIR}/${id}/runner) -$(cat ~/${layout.JOBS_DIR}/${id}/pid)`);
    await waitFor(() => liveInGroup("p-w1", id) === "");
    const job = (await lsJson("-a")).find((j) => j.id === id);
    expect(job).toMatchObject({ status: "unknown", exit_code: null });
  });

  test("a job whose remote directory vanished shows as unknown", async () => {
    const id = await detach("sleep 60");
    await waitFor(() => existsSync(join(jobDirOf("p-w1", id), "pid")));
    // the runner first, or it may record the job's end in the dir while it is being removed
    const dir = `~/${layout.JOBS_DIR}/${id}`;
    asWorker("p-w1", `kill -9 $(head -1 ${dir}/runner) -$(cat ${dir}/pid); rm -rf ${dir}`);
    expect((await lsJson("-a")).find((j) => j.id === id)).toMatchObject({ status: "unknown" });
  });
});

describe("failed jobs", () => {
  test("a sync that fails records failed, with the reason, and runs nothing", async () => {
    await p(["p-w2", "-n", "--", "true"], { env }); // makes ~/${layout.WORKDIRS_DIR} exist
    Bun.spawnSync(["chmod", "500", onWorkerPath("p-w2", layout.WORKDIRS_DIR)]);
    try {
      const cwd = scratch("fail");
      writeFileSync(join(cwd, "f"), "x");
      const r = await p(["p-w2", "--", "touch ran-anyway"], { env, cwd });
      expect(r.code).toBe(70);
      expect(r.stderr).toMatch(/sync to worker p-w2 failed: .*Permission denied/);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      const job = (await lsJson("-a")).at(-1)!;
      expect(job).toMatchObject({ status: "failed", command: "touch ran-anyway", exit_code: null });
      expect(existsSync(jobDirOf("p-w2", job.id as string))).toBe(false);
    } finally {
      Bun.spawnSync(["chmod", "700", onWorkerPath("p-w2", layout.WORKDIRS_DIR)]);
    }
  });
});

describe("p logs", () => {
  test("prints the whole log; -f follows to the end and exits with the job's code", async () => {
    const id = await detach("echo one; sleep 1; echo two; exit 4");
    const f = await p(["logs", "-f", id.slice(0, 6)], { env });
    expect(f).toMatchObject({ stdout: "one\ntwo\n", code: 4 });
    expect(f.stderr).toContain("[Job done: exit 4]");
    const whole = await p(["logs", id], { env });
    expect(whole).toMatchObject({ stdout: "one\ntwo\n", code: 0 });
  });

  test("with retrying off, a dropped connection names the job; logs -f resumes with no line lost or doubled", async () => {
    const cwd = scratch("drop");
    const proc = spawnP(["--", "for i in $(seq 1 40); do echo line $i; sleep 0.05; done"], {
      env: { ...env, P_RECONNECT_TIMEOUT: "0" },
      cwd,
    });
    const reader = proc.stdout.getReader();
    let first = "";
    while (!first.includes("line 5\n")) first += Buffer.from((await reader.read()).value!).toString();
    // kill the sshd processes serving this user's sessions: the connection drops
    Bun.spawnSync(["pkill", "-KILL", "-f", "^sshd: p-w1"]);
    for (let c = await reader.read(); !c.done; c = await reader.read()) first += Buffer.from(c.value).toString();
    expect(await proc.exited).toBe(255);
    const stderr = await new Response(proc.stderr).text();
    const id = JSON.parse((await p(["ls", "-a", "--json"], { env })).stdout).at(-1).id as string;
    expect(stderr).toContain(`p logs -f ${id.slice(0, 8)}`);
    const rest = await p(["logs", "-f", id], { env });
    expect(rest.code).toBe(0);
    const expected = Array.from({ length: 40 }, (_, i) => `line ${i + 1}\n`).join("");
    expect(first + rest.stdout).toBe(expected);
  });
});

describe("p stop", () => {
  test("ends the whole process tree, records stopped, and a second stop is a no-op", async () => {
    const id = await detach("sleep 300 & sleep 301 & (sleep 302; echo never) & wait");
    await waitFor(() => existsSync(join(jobDirOf("p-w1", id), "pid")));
    await Bun.sleep(300);
    expect(liveInGroup("p-w1", id).split("\n").length).toBeGreaterThanOrEqual(4);
    const r = await p(["stop", id.slice(0, 8)], { env });
    expect(r).toMatchObject({ code: 0, stdout: `Stopped job ${id.slice(0, 8)}\n` });
    expect(liveInGroup("p-w1", id)).toBe("");
    expect(asWorker("p-w1", "pgrep -u p-w1 -f 'sleep 30[012]' || true").trim()).toBe("");
    expect((await lsJson("-a")).find((j) => j.id === id)).toMatchObject({ status: "stopped", exit_code: 143 });
    const again = await p(["stop", id], { env });
    expect(again).toMatchObject({
      code: 0,
      stdout: `Job ${id.slice(0, 8)} is not running (stopped); nothing to stop\n`,
    });
  });

  test("a followed job stopped from elsewhere: its follower says it was stopped, with its exit code", async () => {
    const { follower, id } = await startedFollower();
    try {
      expect((await p(["stop", id.slice(0, 8)], { env })).code).toBe(0);
      expect(await follower.exited).toBe(143);
      expect(await new Response(follower.stderr).text()).toBe("[Job stopped: exit 143]\n");
    } finally {
      follower.kill();
    }
  });

  test("a job that ended before the stop reached it keeps its own exit code, and its record says so", async () => {
    const id = await detach("exit 5");
    await waitFor(() => ended("p-w1", id));
    // nothing has told the record yet: it still says running
    expect(record(id).status).toBe("running");
    const r = await p(["stop", "--json", id], { env });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ id, stopped: false, status: "done", exit_code: 5 });
    expect(record(id)).toMatchObject({ status: "done", exit_code: 5 });
    expect(existsSync(join(jobDirOf("p-w1", id), "stopped"))).toBe(false);
  });
});

describe("job ids", () => {
  test("unknown and ambiguous prefixes are refused, naming the matches", async () => {
    const ids = (await lsJson("-a")).map((j) => j.id as string);
    const unknown = await p(["logs", "zzzz"], { env });
    expect(unknown.code).toBe(64);
    expect(unknown.stderr).toMatch(/no job is named "zzzz"/);
    const invalid = await p(["logs", "../etc"], { env });
    expect(invalid.code).toBe(64);
    expect(invalid.stderr).toMatch(/not valid/);
    const none = await p(["stop", "ffffffff-ffff"], { env });
    expect(none.code).toBe(64);
    expect(none.stderr).toMatch(/no job matches "ffffffff-ffff"/);
    // find two ids that share a first character, and use it
    const byFirst = new Map<string, string[]>();
    for (const id of ids) byFirst.set(id[0]!, [...(byFirst.get(id[0]!) ?? []), id]);
    const shared = [...byFirst.values()].find((v) => v.length > 1);
    if (shared) {
      const amb = await p(["logs", shared[0]![0]!], { env });
      expect(amb.code).toBe(64);
      expect(amb.stderr).toMatch(/ambiguous/);
      for (const id of shared) expect(amb.stderr).toContain(id.slice(0, 12));
    }
  });
});

describe("p pull", () => {
  test("copies a file or a directory out of the job's work dir, and refuses paths outside it", async () => {
    const r = await p(
      ["--", "mkdir -p 'out/dir with space' && echo data > 'out/dir with space/f.txt' && echo bin > app.bin"],
      { env, cwd: scratch("pull") },
    );
    expect(r.code).toBe(0);
    const id = (await lsJson("-a")).at(-1)!.id as string;
    const dest = scratch("dest");
    expect((await p(["pull", id, "app.bin"], { env, cwd: dest })).code).toBe(0);
    expect(readFileSync(join(dest, "app.bin"), "utf8")).toBe("bin\n");
    expect((await p(["pull", id, "out", join(dest, "got")], { env })).code).toBe(0);
    expect(readFileSync(join(dest, "got", "out", "dir with space", "f.txt"), "utf8")).toBe("data\n");
    for (const bad of ["../../.ssh/authorized_keys", "/etc/passwd"]) {
      const refused = await p(["pull", id, bad], { env, cwd: dest });
      expect(refused.code).toBe(64);
      expect(refused.stderr).toMatch(/outside the job's work dir/);
    }
    const missing = await p(["pull", id, "nope"], { env, cwd: dest });
    expect(missing.code).toBe(64);
    expect(missing.stderr).toMatch(/nope is not in job/);
  });
});

describe("--timeout", () => {
  test("ends the job's whole tree when the time is up: status timeout, exit 124, as GNU timeout", async () => {
    const t0 = Date.now();
    const r = await p(["--timeout", "1s", "--", "echo started; sleep 30 & sleep 31; echo never"], { env });
    expect(Date.now() - t0).toBeLessThan(8000);
    expect(r).toMatchObject({ code: 124, stdout: "started\n" });
    expect(r.stderr).toContain("[Job timed out: exit 124]");
    const id = ((await lsJson("-a")).at(-1) as { id: string }).id;
    expect((await lsJson("-a")).at(-1)).toMatchObject({ id, status: "timeout", exit_code: 124 });
    expect(asWorker("p-w1", "pgrep -u p-w1 -f 'sleep 3[01]' || true").trim()).toBe("");
    // a detached one too, seen by p ls; a job within its limit is untouched
    const d = await detach("sleep 20", ["--timeout", "1"]);
    await waitFor(() => ended("p-w1", d), 8000);
    expect((await lsJson("-a")).find((j) => j.id === d)).toMatchObject({ status: "timeout", exit_code: 124 });
    expect((await p(["--timeout", "1m", "--", "exit 3"], { env })).code).toBe(3);
    const bad = await p(["--timeout", "soon", "--", "true"], { env });
    expect(bad).toMatchObject({ code: 64, stderr: expect.stringContaining('duration "soon" is not valid') });
  });
});

describe("p rm and p prune", () => {
  test("rm refuses a running job; --force stops it, and both dirs go from the worker", async () => {
    const id = await detach("sleep 60");
    const refused = await p(["rm", id], { env });
    expect(refused.code).toBe(64);
    expect(refused.stderr).toMatch(/is running/);
    expect(existsSync(jobDirOf("p-w1", id))).toBe(true);
    const r = await p(["rm", "--force", id], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`Removed job ${id.slice(0, 8)} from p-w1 \\(freed .+\\)`));
    expect(existsSync(jobDirOf("p-w1", id))).toBe(false);
    expect(existsSync(workDirOf("p-w1", id))).toBe(false);
    expect((await lsJson("-a")).some((j) => j.id === id)).toBe(false);
  });

  test("rm removes a job whose work dir holds read-only directories (Go's module cache, say)", async () => {
    const cwd = scratch("readonly");
    writeFileSync(join(cwd, "a.txt"), "a");
    const r = await p(["--", "mkdir -p gomod/x && echo f >gomod/x/f.go && chmod -R a-w gomod && cat a.txt"], {
      env,
      cwd,
    });
    expect(r).toMatchObject({ code: 0, stdout: "a" });
    const id = lastJob(env)!.id;
    const rm = await p(["rm", id], { env });
    expect(rm.code).toBe(0);
    expect(rm.stdout).toMatch(new RegExp(`Removed job ${id.slice(0, 8)} from p-w1`));
    expect(existsSync(workDirOf("p-w1", id))).toBe(false);
    expect(existsSync(jobDirOf("p-w1", id))).toBe(false);
  });

  test("a job removed with rm --force while another p follows it: that p says so", async () => {
    const { follower, id } = await startedFollower();
    try {
      expect((await p(["rm", "--force", id.slice(0, 8)], { env })).code).toBe(0);
      // (as the follower reads the job's end before or after it is removed)
      const [code, said] = [await follower.exited, await new Response(follower.stderr).text()];
      if (code === 64) expect(said).toContain(`job ${id.slice(0, 8)} was removed from p-w1 while p followed it`);
      else expect([code, said]).toEqual([143, "[Job stopped: exit 143]\n"]);
    } finally {
      follower.kill();
    }
  });

  test("rm --force of jobs that end just as it runs removes every one, record and dirs", async () => {
    // the job ends somewhere between rm's look at its state and the removal
    const ids = await Promise.all([0, 1, 2, 3].map(() => detach("sleep 1")));
    const results = await Promise.all(
      ids.map(async (id, i) => {
        await Bun.sleep(700 + i * 150);
        return p(["rm", "--force", id], { env });
      }),
    );
    for (const [i, id] of ids.entries()) {
      expect(results[i]).toMatchObject({ code: 0, stdout: expect.stringContaining(`Removed job ${id.slice(0, 8)}`) });
      expect(existsSync(jobDirOf("p-w1", id))).toBe(false);
      expect(existsSync(workDirOf("p-w1", id))).toBe(false);
      expect(existsSync(recordPath(id))).toBe(false);
    }
  });

  test("prune removes finished jobs only (--force adds unknown), --dry-run just lists, both with sizes", async () => {
    const cwd = scratch("prune");
    writeFileSync(join(cwd, "blob"), Buffer.alloc(300 * 1024, 1));
    await p(["--", "true"], { env, cwd });
    const running = await detach("sleep 60");
    const lost = await detach("sleep 60");
    await waitFor(() => existsSync(join(jobDirOf("p-w1", lost), "pid")));
    asWorker("p-w1", `kill -9 $(cat ~/${layout.JOBS_DIR}/${lost}/runner) -$(cat ~/${layout.JOBS_DIR}/${lost}/pid)`);
    await waitFor(() => liveInGroup("p-w1", lost) === "");
    const before = await lsJson("-a");
    const finished = before
      .filter((j) => ["done", "failed", "stopped", "timeout"].includes(j.status as string))
      .map((j) => j.id);
    expect(finished.length).toBeGreaterThan(0);

    const dry = await p(["prune", "--dry-run"], { env });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/Would remove \d+ job\(s\) from p-w1, holding \d+(\.\d)? (KB|MB)/);
    expect((await lsJson("-a")).length).toBe(before.length);

    const json = JSON.parse((await p(["prune", "--json"], { env })).stdout);
    expect(json.dry_run).toBe(false);
    const removed = json.workers.flatMap((x: { jobs: string[] }) => x.jobs);
    expect(removed.sort()).toEqual([...finished].sort());
    expect(json.workers.find((x: { worker: string }) => x.worker === "p-w1").bytes).toBeGreaterThan(300 * 1024);
    for (const id of finished) expect(existsSync(workDirOf("p-w1", id as string))).toBe(false);
    const left = (await lsJson("-a")).map((j) => j.id);
    expect(left).toContain(running);
    expect(left).toContain(lost);

    await p(["stop", running], { env });
    const forced = await p(["prune", "--force"], { env });
    expect(forced.code).toBe(0);
    expect((await lsJson("-a")).length).toBe(0);
    expect(existsSync(jobDirOf("p-w1", lost))).toBe(false);
  });

  test("prune also sweeps what no job owns: half-made work dirs and long-unused mirrors", async () => {
    const mirrors = () =>
      new Set(
        (existsSync(onWorkerPath("p-w1", layout.MIRRORS_DIR))
          ? readdirSync(onWorkerPath("p-w1", layout.MIRRORS_DIR))
          : []
        ).filter((m) => /^[0-9a-f]{24}$/.test(m)),
      );
    const mirrorOf = async (name: string) => {
      const before = mirrors();
      const cwd = scratch(name);
      writeFileSync(join(cwd, "blob"), Buffer.alloc(200 * 1024, 2));
      await p(["--", "true"], { env, cwd });
      await waitFor(() =>
        existsSync(
          onWorkerPath(
            "p-w1",
            `${layout.MIRRORS_DIR}/${[...mirrors()].find((m) => !before.has(m))}${layout.SUFFIX.spare}`,
          ),
        ),
      );
      return [...mirrors()].find((m) => !before.has(m))!;
    };
    const old = await mirrorOf("oldmirror");
    const recent = await mirrorOf("newmirror");
    // a copy under way when its worker went down is swept with its mirror
    asWorker(
      "p-w1",
      `mkdir ~/${layout.MIRRORS_DIR}/${old}.part && touch -d '30 days ago' ~/${layout.MIRRORS_DIR}/${old}.lock`,
    );
    const stale = "00000000-0000-4000-8000-0000000000aa.part";
    const fresh = "00000000-0000-4000-8000-0000000000bb.part";
    asWorker(
      "p-w1",
      `mkdir ~/${layout.WORKDIRS_DIR}/${stale} ~/${layout.WORKDIRS_DIR}/${fresh} && touch -d '2 hours ago' ~/${layout.WORKDIRS_DIR}/${stale}`,
    );
    // and job dirs a killed launch left half made, or a killed removal half removed
    const [made, removed, making] = ["aa.new", "bb.gone", "cc.new"].map(
      (s) => `${layout.JOBS_DIR}/.00000000-0000-4000-8000-0000000000${s}`,
    );
    asWorker("p-w1", `mkdir ~/${made} ~/${removed} ~/${making} && touch -d '2 hours ago' ~/${made} ~/${removed}`);
    const paths = [`${layout.WORKDIRS_DIR}/${stale}`, `${layout.MIRRORS_DIR}/${old}`, made!, removed!];

    const dry = JSON.parse((await p(["prune", "--dry-run", "--json"], { env })).stdout);
    const listed = dry.workers.flatMap((x: { leftovers: { path: string }[] }) => x.leftovers.map((l) => l.path));
    expect(listed.sort()).toEqual([...paths].sort());
    expect(existsSync(onWorkerPath("p-w1", `${layout.MIRRORS_DIR}/${old}`))).toBe(true);

    const done = JSON.parse((await p(["prune", "--json"], { env })).stdout);
    const swept = done.workers.flatMap((x: { leftovers: { path: string; bytes: number }[] }) => x.leftovers);
    expect(swept.map((l: { path: string }) => l.path).sort()).toEqual([...paths].sort());
    expect(swept.find((l: { path: string }) => l.path.includes(old)).bytes).toBeGreaterThanOrEqual(2 * 200 * 1024); // mirror and spare
    for (const gone of [
      `mirrors/${old}`,
      `mirrors/${old}.spare`,
      `mirrors/${old}.part`,
      `mirrors/${old}.lock`,
      `workdirs/${stale}`,
    ])
      expect(existsSync(onWorkerPath("p-w1", `${layout.P_DIR}/${gone}`))).toBe(false);
    for (const gone of [made!, removed!]) expect(existsSync(onWorkerPath("p-w1", gone))).toBe(false);
    for (const kept of [`mirrors/${recent}`, `mirrors/${recent}.spare`, `workdirs/${fresh}`])
      expect(existsSync(onWorkerPath("p-w1", `${layout.P_DIR}/${kept}`))).toBe(true);
    expect(existsSync(onWorkerPath("p-w1", making!))).toBe(true);
  });
});

describe("p worker ls --check", () => {
  test("probes every worker at once: reachable, rsync, round-trip time", async () => {
    const r = await p(["worker", "ls", "--check"], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/p-w1\s+ssh\s+p-w1\s+\*\s+ok\s+yes\s+\d+ms/);
    const json = JSON.parse((await p(["worker", "ls", "-c", "--json"], { env })).stdout);
    expect(json[1]).toMatchObject({
      name: "p-w2",
      check: { reachable: true, rsync: true, rtt_ms: expect.any(Number) },
    });
    expect((await p(["worker", "register", "p-w1@127.0.0.1:1", "-n", "dead", "--no-check"], { env })).code).toBe(0);
    const dead = await p(["worker", "ls", "-c"], { env });
    expect(dead.code).toBe(255);
    expect(dead.stdout).toMatch(/dead\s+ssh\s+p-w1@127\.0\.0\.1:1\s+unreachable/);
    await p(["worker", "rm", "dead"], { env });
  });
});
