// Faults, abuse and concurrency: what must hold when things go wrong. Prints a summary of
// what it tried. Real sshd, real rsync, real signals.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawn } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import {
  jobDirOf,
  layout,
  oddWorker,
  onWorkerPath,
  P,
  p,
  peakRss,
  root,
  scratch,
  spawnP,
  startWorkers,
  UUID,
  type Workers,
  waitFor,
  workDirOf,
  wrappedTool,
} from "./_harness.ts";

setDefaultTimeout(60_000);

let w: Workers;
let env: Record<string, string>;
const tally = { hostile: 0, faults: 0, concurrent: 0, jobsChecked: 0, lost: 0 };
const PWNED = "/tmp/p-pwned";

const records = () => {
  const dir = join(env.XDG_DATA_HOME!, "p", "jobs");
  return existsSync(dir) ? readdirSync(dir) : [];
};
const jobs = async () =>
  JSON.parse((await p(["ls", "-a", "--json"], { env })).stdout) as {
    id: string;
    status: string;
    exit_code: number | null;
    worker: string;
  }[];
const workerOf = (name: string) => (name === "w2" ? "p-w2" : "p-w1");

/** A tree big enough that its sync takes a while on loopback. */
function bigTree(name: string): string {
  const dir = scratch(name);
  Bun.spawnSync(["sh", "-c", `head -c 200000000 /dev/urandom > "${dir}/big.bin"`]);
  for (let i = 0; i < 50; i++) writeFileSync(join(dir, `f${i}.txt`), `file ${i}\n`);
  return dir;
}

/** Start p in its own process group, as a shell starts a foreground job, so signals reach rsync too. */
function spawnGroup(args: string[], cwd: string) {
  const child = spawn(P, args, { cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise<number>((resolve) =>
    child.on("exit", (code, sig) => resolve(code ?? 128 + (sig === "SIGKILL" ? 9 : 15))),
  );
  return { child, exited, out: () => stdout, err: () => stderr };
}

const ls1 = (sub: string) => {
  const dir = onWorkerPath("p-w1", `${layout.P_DIR}/${sub}`);
  // (a launch's staging dir, .<id>.new, is no job's until it is renamed)
  return new Set(existsSync(dir) ? readdirSync(dir).filter((f) => !f.startsWith(".")) : []);
};
/** What p-w1 holds: work dirs, job dirs and mirrors. */
const onW1 = () => ({ workdirs: ls1("workdirs"), jobs: ls1("jobs"), mirrors: ls1("mirrors") });
const added = (before: Set<string>, after: Set<string>) => [...after].filter((x) => !before.has(x));

/** Wait until rsync is writing into a new mirror on p-w1 (its temporary file is there). */
async function syncUnderway(before: ReturnType<typeof onW1>): Promise<void> {
  await waitFor(
    () =>
      added(before.mirrors, ls1("mirrors")).some(
        (m) => !m.includes(".") && readdirSync(onWorkerPath("p-w1", `${layout.MIRRORS_DIR}/${m}`)).length > 0,
      ),
    20000,
  );
}

/** Nothing of a job appeared on p-w1 since `before`: no work dir, no job dir. */
const nothingStarted = (before: ReturnType<typeof onW1>) => {
  const now = onW1();
  return { workdirs: added(before.workdirs, now.workdirs), jobs: added(before.jobs, now.jobs) };
};

beforeAll(async () => {
  rmSync(PWNED, { force: true });
  w = startWorkers();
  env = w.env;
  expect((await p(["worker", "register", "p-w1", "-n", "w1"], { env })).code).toBe(0);
  expect((await p(["worker", "register", "p-w2", "-n", "w2"], { env })).code).toBe(0);
});
afterAll(async () => {
  await p(["prune", "--force"], { env });
  w.stop();
  console.log(
    `\nfaults suite: ${tally.hostile} hostile inputs, ${tally.faults} faults injected, ${tally.concurrent} concurrent jobs, ` +
      `${tally.jobsChecked} jobs checked afterwards, ${tally.lost} lost`,
  );
});

describe("hostile input reaches no shell", () => {
  const hostile = [
    "'",
    '"',
    `$(touch ${PWNED})`,
    `\`touch ${PWNED}\``,
    `; touch ${PWNED}`,
    `a\nb; touch ${PWNED}`,
    "../../etc",
    "-rf",
    "$HOME",
    `|| touch ${PWNED}`,
    "*",
    "--",
    " ",
  ];

  test("through every command, each refused in one line or taken literally", async () => {
    const cwd = scratch("hostile");
    writeFileSync(join(cwd, "f"), "x");
    const id = (await p(["-d", "--", "echo ok > out"], { env, cwd })).stdout.trim();
    expect(id).toMatch(UUID);
    const before = readFileSync(join(env.XDG_CONFIG_HOME!, "p", "config.yaml"), "utf8");
    for (const h of hostile) {
      const cases = [
        ["worker", "register", h],
        ["worker", "register", "p-w1", "-n", h],
        ["worker", "default", h],
        ["worker", "rm", h],
        [h, "--", "true"],
        ["logs", h],
        ["stop", h],
        ["rm", h],
        ["pull", h, "out"],
        ["pull", id, "--", h],
        ["completion", h],
      ];
      for (const args of cases) {
        tally.hostile++;
        const r = await p(args, { env, cwd });
        // `p -- -- true` is no hostile input but a job (`-- true`) that exits with its own code
        if (args[0] === "--") continue;
        expect([0, 64, 70, 255]).toContain(r.code);
        if (r.code !== 0) expect(r.stderr.trim().split("\n").length).toBeLessThanOrEqual(2);
        expect(r.stderr).not.toMatch(/at .*\(\/\$bunfs|TypeError|ReferenceError/);
      }
      // argv words arrive as data
      tally.hostile++;
      const echo = await p(["-n", "--", "printf", "[%s]", h], { env });
      expect(echo.stdout).toBe(`[${h}]`);
      // as a sync destination and a p-exec directory: literal names, never commands
      tally.hostile += 2;
      const dest = await Bun.spawn([join(root, "dist", "p-sync"), cwd, "w1", `hostile/${h.replace(/\//g, "_")}`], {
        env,
        stdout: "pipe",
        stderr: "pipe",
      }).exited;
      expect([0, 64, 70]).toContain(dest);
      const dir = await Bun.spawn([join(root, "dist", "p-exec"), "run", "w1", "--dir", h, "--", "true"], {
        env,
        stdout: "pipe",
        stderr: "pipe",
      }).exited;
      expect([0, 64, 70]).toContain(dir);
    }
    expect(readFileSync(join(env.XDG_CONFIG_HOME!, "p", "config.yaml"), "utf8")).toBe(before);
    expect(existsSync(PWNED)).toBe(false);
    expect(existsSync(onWorkerPath("p-w1", `${layout.JOBS_DIR}/../../etc`))).toBe(false);
  });

  test("a hostile client directory name is synced and recorded literally", async () => {
    tally.hostile++;
    const cwd = join(scratch("dirname"), `$(touch ${PWNED.replace(/\//g, "_")}); '"x`);
    mkdirSync(cwd);
    writeFileSync(join(cwd, "f"), "x");
    const r = await p(["--", `cat f; cat "$HOME/${layout.JOBS_DIR}/$P_JOB_ID/cwd"`], { env, cwd });
    expect(r.stdout).toBe(`x${cwd}`);
    expect(existsSync(PWNED)).toBe(false);
  });

  test("a hand-edited config with a hostile worker name, an unreadable one, and foreign job records, are refused or skipped", async () => {
    tally.hostile += 4;
    const cfg = join(env.XDG_CONFIG_HOME!, "p", "config.yaml");
    const good = readFileSync(cfg, "utf8");
    writeFileSync(cfg, `${good}  - name: "x; touch ${PWNED}"\n    connection: p-w1\n`);
    const bad = await p(["worker", "ls"], { env });
    expect(bad.code).toBe(64);
    expect(bad.stderr).toContain(cfg);
    writeFileSync(cfg, "workers:\n  - name: a\n    connection: [oops\n");
    const broken = await p(["--", "true"], { env });
    expect(broken.code).toBe(64);
    expect(broken.stderr).toMatch(new RegExp(`${cfg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:\\d+: `));
    // unreadable (a directory where the file should be; as root, modes do not stop a read)
    rmSync(cfg);
    mkdirSync(cfg);
    const unreadable = await p(["worker", "ls"], { env });
    expect(unreadable.code).toBe(64);
    expect(unreadable.stderr).toMatch(new RegExp(`cannot read ${cfg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
    rmSync(cfg, { recursive: true });
    writeFileSync(cfg, good, { mode: 0o600 });
    const dir = join(env.XDG_DATA_HOME!, "p", "jobs");
    writeFileSync(join(dir, "not-json.json"), "{{{");
    writeFileSync(join(dir, "../../../evil.json"), "{}");
    writeFileSync(
      join(dir, "00000000-0000-4000-8000-000000000000.json"),
      JSON.stringify({ id: "../../../etc", worker: "w1" }),
    );
    const ls = await p(["ls", "-a"], { env });
    expect(ls.code).toBe(0);
    expect(ls.stderr).toMatch(/skipped .*not-json\.json/);
    expect(ls.stderr).toMatch(/skipped .*00000000-0000-4000-8000-000000000000\.json/);
    rmSync(join(dir, "not-json.json"));
    rmSync(join(dir, "00000000-0000-4000-8000-000000000000.json"));
  });

  test("config and records are private: 0600 files in 0700 directories", async () => {
    const cfgDir = join(env.XDG_CONFIG_HOME!, "p");
    const jobsDir = join(env.XDG_DATA_HOME!, "p", "jobs");
    expect(statSync(cfgDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(cfgDir, "config.yaml")).mode & 0o777).toBe(0o600);
    expect(statSync(jobsDir).mode & 0o777).toBe(0o700);
    for (const f of records()) expect(statSync(join(jobsDir, f)).mode & 0o777).toBe(0o600);
  });
});

describe("missing tools and hostile workers", () => {
  test("no rsync here: said so, nothing started", async () => {
    const bin = scratch("bin");
    for (const tool of ["ssh", "git", "sh"]) symlinkSync(Bun.which(tool)!, join(bin, tool));
    const r = await p(["--", "true"], { env: { ...env, PATH: bin }, cwd: scratch("norsync") });
    expect(r.code).toBe(70);
    expect(r.stderr).toMatch(/rsync is not installed on this machine/);
  });

  test("no rsync on the worker, a full disk, a home it cannot write: each said in one line, recorded failed", async () => {
    const fake = join(w.dir, "no-rsync");
    writeFileSync(fake, "#!/bin/sh\necho 'sh: 1: rsync: not found' >&2\nexit 127\n", { mode: 0o755 });
    const uid = Bun.spawnSync(["id", "-u", "p-w2"]).stdout.toString().trim();
    const norsync = await oddWorker(w, "norsync", "p-w1", `mount --bind ${fake} "$(command -v rsync)"`);
    const full = await oddWorker(
      w,
      "full",
      "p-w2",
      `install -d -o p-w2 -g p-w2 -m 700 /home/p-w2/${layout.P_DIR} && mount -t tmpfs -o size=1m,uid=${uid},gid=${uid},mode=700 tmpfs /home/p-w2/${layout.P_DIR}`,
    );
    try {
      const cwd = scratch("tools");
      writeFileSync(join(cwd, "big"), Buffer.alloc(3 * 1024 * 1024, 7));
      tally.faults += 2;
      const r1 = await p(["--", "touch ran"], { env: norsync.env, cwd });
      expect(r1.code).toBe(70);
      expect(r1.stderr).toMatch(/rsync is not installed on the worker/);
      const r2 = await p(["--", "touch ran"], { env: full.env, cwd });
      expect(r2.code).toBe(70);
      expect(r2.stderr).toMatch(/No space left on device|disk full/);
      expect(r2.stderr.trim().split("\n")).toHaveLength(1);
      for (const e of [norsync.env, full.env]) {
        const listed = JSON.parse((await p(["ls", "-a", "--json"], { env: e })).stdout);
        expect(listed.map((j: { status: string }) => j.status)).toEqual(["failed"]);
      }
    } finally {
      norsync.down();
      full.down();
    }
    tally.faults++;
    rmSync(onWorkerPath("p-w2", layout.P_DIR), { recursive: true, force: true }); // a worker p has never used
    chmodSync("/home/p-w2", 0o555);
    try {
      const ro = await p(["w2", "-n", "--", "true"], { env: { ...env } });
      expect(ro.code).toBe(70);
      expect(ro.stderr).toMatch(/could not start on worker w2: .*(Permission denied|Read-only)/);
    } finally {
      chmodSync("/home/p-w2", 0o755);
    }
  });
});

describe("faults", () => {
  test("the worker's sshd killed mid-sync: a truthful status, and the half-synced tree never runs", async () => {
    tally.faults++;
    const cwd = bigTree("midsync");
    const before = onW1();
    const run = spawnP(["--", `touch ${PWNED}-midsync`], { env, cwd });
    await syncUnderway(before);
    Bun.spawnSync(["pkill", "-KILL", "-f", "^sshd: p-w1"]);
    const code = await run.exited;
    const stderr = await new Response(run.stderr).text();
    expect([70, 255]).toContain(code);
    expect(stderr).toMatch(/sync to worker w1 failed/);
    await Bun.sleep(500);
    expect(nothingStarted(before)).toEqual({ workdirs: [], jobs: [] });
    expect(existsSync(`${PWNED}-midsync`)).toBe(false);
    const last = (await jobs()).at(-1)!;
    expect(last).toMatchObject({ status: "failed", command: `touch ${PWNED}-midsync` });
  });

  /** Start a job from a big tree, signal p's process group once rsync is writing, and see what came of it. */
  async function signalMidSync(name: string, sig: NodeJS.Signals) {
    tally.faults++;
    const before = onW1();
    const records0 = records().length;
    const run = spawnGroup(["--", `touch ${PWNED}-${name}`], bigTree(name));
    await syncUnderway(before);
    process.kill(-run.child.pid!, sig);
    const code = await run.exited;
    await Bun.sleep(1500); // long enough for anything the worker might still start
    return {
      code,
      stderr: run.err(),
      started: nothingStarted(before),
      ran: existsSync(`${PWNED}-${name}`),
      newRecords: records().length - records0,
    };
  }

  test("the client killed with SIGKILL mid-sync: no job is started, ever", async () => {
    const r = await signalMidSync("killsync", "SIGKILL");
    expect(r).toMatchObject({ started: { workdirs: [], jobs: [] }, ran: false, newRecords: 0 });
  });

  test("Ctrl+C during the sync cancels cleanly: no record, no job, no work dir", async () => {
    const r = await signalMidSync("intsync", "SIGINT");
    expect(r).toMatchObject({ code: 130, started: { workdirs: [], jobs: [] }, ran: false, newRecords: 0 });
    expect(r.stderr).toMatch(/Cancelled; nothing was started/);
  });

  test("the worker's sshd killed mid-launch: the job runs at most once, and p says what happened", async () => {
    tally.faults++;
    // a worker whose `setsid` dawdles: the launch starts the runner with it after the job's
    // files appear, so the kill lands between the two
    const slow = wrappedTool(w, "slowlaunch", "setsid", (real) => `sleep 1.5\nexec ${real} "$@"`);
    const odd = await oddWorker(w, "slowlaunch", "p-w1", slow);
    try {
      const before = onW1();
      const run = spawnP(["--", "echo ran >> ~/launched; echo hi"], { env: odd.env, cwd: scratch("midlaunch") });
      await waitFor(
        () => added(before.jobs, ls1("jobs")).some((id) => existsSync(join(jobDirOf("p-w1", id), "cmd"))),
        20000,
      );
      Bun.spawnSync(["pkill", "-KILL", "-f", "^sshd: p-w1"]);
      const code = await run.exited;
      const stderr = await new Response(run.stderr).text();
      expect(code).not.toBe(0);
      const [id] = added(before.jobs, ls1("jobs"));
      expect(existsSync(join(jobDirOf("p-w1", id!), "runner"))).toBe(false); // caught mid-launch indeed
      // p cannot know whether the job got going, and says so
      expect(stderr).toContain(`lost the connection before job ${id!.slice(0, 8)} could be confirmed running`);
      expect(stderr).toMatch(/p ls shows what the worker says/);
      // the launch may still finish on the worker (the dawdling `setsid` starts the runner yet)
      await waitFor(() => existsSync(join(jobDirOf("p-w1", id!), "exitcode")), 8000).catch(() => {});
      // the worker's word decides: done if the runner got to start it, unknown if not
      const listed = JSON.parse((await p(["ls", "-a", "--json"], { env: odd.env })).stdout);
      const status = existsSync(join(jobDirOf("p-w1", id!), "exitcode")) ? "done" : "unknown";
      expect(listed.map((j: { id: string; status: string }) => [j.id, j.status])).toEqual([[id, status]]);
      expect(["", "ran\n"]).toContain(
        existsSync("/home/p-w1/launched") ? readFileSync("/home/p-w1/launched", "utf8") : "",
      );
    } finally {
      odd.down();
      rmSync("/home/p-w1/launched", { force: true });
    }
  });

  test("Ctrl+C twice while streaming detaches once and leaves every file whole", async () => {
    tally.faults++;
    const run = spawnGroup(["--", "echo go; sleep 2; echo end"], scratch("int2"));
    await waitFor(() => run.out().includes("go"));
    process.kill(-run.child.pid!, "SIGINT");
    process.kill(-run.child.pid!, "SIGINT");
    expect(await run.exited).toBe(130);
    expect(run.err().match(/Detached/g)?.length).toBe(1);
    for (const f of records()) JSON.parse(readFileSync(join(env.XDG_DATA_HOME!, "p", "jobs", f), "utf8"));
    const id = (await jobs()).at(-1)!.id;
    expect((await p(["logs", "-f", id], { env })).stdout).toBe("end\n");
  });

  test("the worker user's processes killed with kill -9: jobs read unknown, and p still works", async () => {
    tally.faults++;
    const ids = await Promise.all(
      [0, 1].map(async () => (await p(["w2", "-d", "--", "sleep 60"], { env })).stdout.trim()),
    );
    await waitFor(() => ids.every((id) => existsSync(join(jobDirOf("p-w2", id), "pid"))));
    Bun.spawnSync(["pkill", "-KILL", "-u", "p-w2"]);
    await Bun.sleep(300);
    const after = await jobs();
    for (const id of ids) expect(after.find((j) => j.id === id)?.status).toBe("unknown");
    expect((await p(["w2", "--", "echo alive"], { env })).stdout).toBe("alive\n");
  });

  test("a client that sleeps (SIGSTOP) past a keepalive interval mid-stream resumes with every byte", async () => {
    tally.faults++;
    const run = spawnGroup(["--", "for i in $(seq 1 30); do echo $i; sleep 0.1; done"], scratch("sleep"));
    await waitFor(() => run.out().includes("3\n"));
    process.kill(run.child.pid!, "SIGSTOP");
    // longer than p's keepalive interval (15 s): a laptop lid closed on a stream; the job ends meanwhile
    await Bun.sleep(20_000);
    process.kill(run.child.pid!, "SIGCONT");
    expect(await run.exited).toBe(0);
    expect(run.out()).toBe(Array.from({ length: 30 }, (_, i) => `${i + 1}\n`).join(""));
  });
});

describe("big output", () => {
  test("1 GiB streams whole, with the client's memory flat", async () => {
    const proc = spawnP(["-n", "--", "head -c 1073741824 /dev/zero"], { env });
    const peak = peakRss(proc.pid);
    let total = 0;
    for await (const chunk of proc.stdout) total += chunk.length;
    const peakKb = peak();
    expect(await proc.exited).toBe(0);
    expect(total).toBe(1073741824);
    expect(peakKb).toBeLessThan(300 * 1024);
  });

  test("a reader that lags behind a job that has ended still gets every byte", async () => {
    const proc = spawnP(["-n", "--", "head -c 200000000 /dev/urandom | od -An -v -tx1 | head -c 300000000"], { env });
    const reader = proc.stdout.getReader();
    let total = 0;
    const first = await reader.read();
    total += first.value!.length;
    await Bun.sleep(4000); // the job finishes while we are not reading
    for (let c = await reader.read(); !c.done; c = await reader.read()) total += c.value.length;
    expect(await proc.exited).toBe(0);
    expect(total).toBe(300000000);
  });
});

describe("concurrency", () => {
  test("20 jobs at once to two workers, with ls, stop and prune meanwhile: nothing lost, nothing mixed", async () => {
    const n = 20;
    tally.concurrent += n;
    // detached jobs outlive the chatter below, so prune (finished jobs only) must leave them
    // be; jobs 0 and 1 run longest and are stopped in the middle of it
    const launch = async (i: number) => {
      const cwd = scratch(`conc${i}`);
      writeFileSync(join(cwd, "marker"), `job-${i}`);
      const worker = i % 2 ? "w2" : "w1";
      const detached = i % 4 < 2;
      // detached jobs must outlast the launches and the chatter on a loaded 2-core machine
      // (they are stopped at the end)
      const sleep = i < 2 ? 30 : detached ? 60 : 1 + (i % 2);
      const r = await p([worker, ...(detached ? ["-d"] : []), "--", `cat marker; echo " $P_JOB_ID"; sleep ${sleep}`], {
        env,
        cwd,
      });
      return { i, worker, detached, r };
    };
    const long = await Promise.all([launch(0), launch(1)]);
    const rest = Promise.all(Array.from({ length: n - 2 }, (_, k) => launch(k + 2)));
    const chatter = (async () => {
      for (let k = 0; k < 6; k++) {
        const ls = await p(["ls", "-a", "--json"], { env });
        expect(ls.code).toBe(0);
        JSON.parse(ls.stdout);
        expect((await p(["prune"], { env })).code).toBe(0);
        if (k === 1)
          for (const x of long) {
            const stop = await p(["stop", "--json", x.r.stdout.trim()], { env });
            expect(JSON.parse(stop.stdout)).toMatchObject({ status: "stopped", exit_code: 143, stopped: true });
          }
        await Bun.sleep(200);
      }
    })();
    const results = [...long, ...(await rest)];
    await chatter;
    const running = new Set((await jobs()).filter((j) => j.status === "running").map((j) => j.id));
    for (const x of results) {
      tally.jobsChecked++;
      expect(x.r.code ? `job ${x.i}: exit ${x.r.code}: ${x.r.stderr}` : "").toBe("");
      if (!x.detached) {
        expect(x.r.stdout).toMatch(new RegExp(`^job-${x.i} [0-9a-f-]{36}\\n$`));
        continue;
      }
      const id = x.r.stdout.trim();
      expect(id).toMatch(UUID);
      if (x.i < 2) continue; // stopped, and since pruned
      expect(running.has(id)).toBe(true);
      expect(readFileSync(join(jobDirOf(workerOf(x.worker), id), "output.log"), "utf8")).toBe(`job-${x.i} ${id}\n`);
      expect(readFileSync(join(workDirOf(workerOf(x.worker), id), "marker"), "utf8")).toBe(`job-${x.i}`);
    }
    expect(readdirSync(join(env.XDG_DATA_HOME!, "p", "jobs")).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    for (const id of running) await p(["stop", id], { env });
    tally.lost += results.filter((x) => x.r.code !== 0).length;
  });
});
