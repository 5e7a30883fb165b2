import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  asWorker,
  home,
  jobDirOf,
  p,
  root,
  runBinary,
  scratch,
  spawnP,
  startWorkers,
  type Workers,
  waitFor,
} from "./_harness.ts";

// A Slurm worker, through the compiled p and real sshd, against a real one-node Slurm
// (slurmctld, slurmd and munge from Debian's packages; see test/fixtures/slurm.sh). The
// login node is this machine, reached as p-w1 (and as p-w2, with a root of its own).
setDefaultTimeout(90_000);

const SLURM = join(root, "test", "fixtures", "slurm.sh");
const P_EXEC = join(root, "dist", "p-exec");
let w: Workers;
let env: Record<string, string>;
let cluster: string;
let shared: string;

beforeAll(async () => {
  w = startWorkers();
  env = w.env;
  cluster = join(w.dir, "slurm");
  const up = Bun.spawnSync(["bash", SLURM, "up", cluster], { stderr: "pipe" });
  if (up.exitCode !== 0) throw new Error(`slurm.sh failed: ${up.stderr}`);
  // a cluster's shared file system, with a directory per user
  shared = scratch("scratch");
  mkdirSync(join(shared, "p-w2"));
  Bun.spawnSync(["chown", "p-w2:", join(shared, "p-w2")]);
  Bun.spawnSync(["chmod", "755", shared]);
});
afterAll(async () => {
  Bun.spawnSync(["bash", SLURM, "down", cluster]);
  w.stop();
});

const detach = async (args: string[], opts = { env }) => {
  const r = await p(["-n", "-d", ...args], opts);
  expect(r).toMatchObject({ code: 0, stderr: "" });
  return r.stdout.trim();
};
/** A job as p ls --json shows it (the fields these tests read). */
interface Job {
  id: string;
  status: string;
  exit_code: number | null;
  waiting_for?: string;
  slurm: { job_id: string; state: string | null; reason: string | null; node: string | null };
}
const lsJson = async (...args: string[]) => JSON.parse((await p(["ls", "--json", ...args], { env })).stdout) as Job[];
const job = async (id: string) => (await lsJson("-a")).find((j) => j.id === id)!;
const processes = (pattern: string) =>
  Bun.spawnSync(["pgrep", "-u", "p-w1", "-f", pattern]).stdout.toString().trim().split("\n").filter(Boolean);

describe("registering", () => {
  test("register --slurm checks that Slurm answers there, and says so; worker ls shows the kind", async () => {
    const r = await p(["worker", "register", "p-w1", "--slurm", "--partition", "debug", "-n", "hpc"], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("Registered worker hpc (p-w1) as the default: Slurm, partition debug\n");
    expect(r.stderr).toMatch(/Slurm \d+\.\d+\.\d+ answers on hpc: sbatch, squeue and scancel/);
    const ls = await p(["worker", "ls", "--json"], { env });
    expect(JSON.parse(ls.stdout)).toEqual([
      { name: "hpc", connection: "p-w1", slurm: { partition: "debug" }, kind: "slurm", default: true },
    ]);
    expect((await p(["worker", "ls"], { env })).stdout).toMatch(/^NAME +KIND +CONNECTION[^\n]*\nhpc +slurm +p-w1 /);
  });

  test("Slurm's flags are refused on a worker that runs jobs itself, and --slots on a Slurm worker", async () => {
    expect((await p(["worker", "register", "p-w2", "-n", "box"], { env })).code).toBe(0);
    for (const flags of [["--cpus", "2"], ["--mem", "1G"], ["--sbatch-arg=--constraint=a100"]]) {
      const r = await p(["box", ...flags, "--", "true"], { env });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`${flags[0]!.split("=")[0]} is for Slurm workers, and worker box runs jobs itself`);
    }
    const slots = await p(["worker", "register", "p-w2", "--slurm", "--slots", "2", "-n", "x"], { env });
    expect(slots.code).toBe(64);
    expect(slots.stderr).toContain("--slots and --gpus are for workers that run jobs themselves");
    for (const [arg, why] of [
      ["--sbatch-arg=--chdir=/tmp", "p sets --chdir itself"],
      ["--sbatch-arg=-C a100", "is not one sbatch option"],
      ["--sbatch-arg=--time=5", "use --timeout"],
      ["--mem=lots", "is not a size"],
    ]) {
      const r = await p([arg!, "--", "true"], { env });
      expect(r.code).toBe(64);
      expect(r.stderr).toContain(why!);
    }
    expect((await p(["worker", "rm", "box"], { env })).code).toBe(0);
  });
});

describe("jobs", () => {
  test("a job's output streams and its exit code is p's; ls shows Slurm's job id and the node", async () => {
    const dir = scratch("proj");
    writeFileSync(join(dir, "data.txt"), "synced\n");
    const proc = spawnP(["--", 'echo "$(cat data.txt) $P_JOB_ID"; sleep 2; echo late; exit 3'], {
      env,
      cwd: dir,
    });
    const reader = proc.stdout.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toMatch(/^synced [0-9a-f-]{36}\n/);
    const id = first.split(" ")[1]!.trim();
    // streamed: the first line arrives while the job still sleeps
    expect(existsSync(join(jobDirOf("p-w1", id), "exitcode"))).toBe(false);
    let rest = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    expect(first + rest).toMatch(/^synced [0-9a-f-]{36}\nlate\n$/);
    expect(await proc.exited).toBe(3);
    expect(await new Response(proc.stderr).text()).toContain("[Job done: exit 3]");
    const j = await job(id);
    expect(j).toMatchObject({ status: "done", exit_code: 3, worker: "hpc" });
    expect(j.slurm.job_id).toMatch(/^\d+$/);
    // the job's end is in its own dir: no accounting is needed
    expect(readFileSync(join(jobDirOf("p-w1", id), "exitcode"), "utf8")).toBe("3\n");
    expect(asWorker("p-w1", `scontrol show job ${j.slurm.job_id}`)).toContain("JobState=FAILED");
  });

  test("a job that does not fit waits queued (Resources) behind another, then runs", async () => {
    const a = await detach(["--cpus", "2", "--", "sleep 60"]);
    const b = await detach(["--cpus", "2", "--", "echo b ran"]);
    await waitFor(() => existsSync(join(jobDirOf("p-w1", a), "started_at")), 20_000);
    // (Slurm gives its reason at its next scheduling pass: "submitted" until then)
    let jb = await job(b);
    for (let i = 0; i < 100 && jb.waiting_for === "submitted"; i++) {
      await Bun.sleep(200);
      jb = await job(b);
    }
    const ja = await job(a);
    expect(ja).toMatchObject({ status: "running", cpus: 2, slurm: { state: "RUNNING", node: expect.any(String) } });
    expect(jb).toMatchObject({ status: "queued", waiting_for: "Resources", slurm: { state: "PENDING" } });
    const table = (await p(["ls"], { env })).stdout;
    expect(table).toMatch(new RegExp(`${b.slice(0, 8)} +hpc +${jb.slurm.job_id} .*queued \\(Resources\\)`));
    const { node } = (await job(a)).slurm;
    expect(table).toMatch(new RegExp(`${a.slice(0, 8)} +hpc +${ja.slurm.job_id} .*running \\(${node}\\)`));
    // its place freed, the queued one runs
    expect((await p(["stop", a.slice(0, 8)], { env })).code).toBe(0);
    const waited = await p(["wait", b.slice(0, 8)], { env });
    expect(waited.code).toBe(0);
    expect((await p(["logs", b.slice(0, 8)], { env })).stdout).toBe("b ran\n");
  });

  test("p stop cancels the job with scancel: every process of it ends", async () => {
    // (Slurm's TERM may reach the sleeps first, and a plain wait would end the job, 0, before
    // the TERM reached its shell: the job waits until its own TERM comes)
    const id = await detach(["--", "trap 'echo TERM; exit 9' TERM; sleep 301 & sleep 302 & while :; do wait; done"]);
    await waitFor(() => processes("^sleep 30[12]$").length === 2, 15_000);
    const r = await p(["stop", id.slice(0, 8)], { env });
    expect(r).toMatchObject({ code: 0, stdout: `Stopped job ${id.slice(0, 8)}\n` });
    await waitFor(() => processes("^sleep 30[12]$").length === 0, 5000);
    expect(await job(id)).toMatchObject({ status: "stopped", exit_code: 9 });
    expect((await p(["logs", id.slice(0, 8)], { env })).stdout).toBe("TERM\n");
  });

  test("a queued job stopped never runs", async () => {
    const a = await detach(["--cpus", "2", "--", "sleep 2"]);
    const b = await detach(["--cpus", "2", "--", "echo ran >ran.txt"]);
    expect((await p(["stop", b.slice(0, 8)], { env })).code).toBe(0);
    expect(await job(b)).toMatchObject({ status: "stopped", exit_code: null });
    expect((await p(["wait", a.slice(0, 8)], { env })).code).toBe(0);
    expect(existsSync(join(home("p-w1"), ".p/workdirs", b, "ran.txt"))).toBe(false);
  });

  test("--timeout ends the job as timeout, exit 124", async () => {
    const r = await p(["-n", "--timeout", "2s", "--", "echo start; sleep 60"], { env });
    expect(r).toMatchObject({ code: 124, stdout: "start\n" });
    expect(r.stderr).toContain("[Job timed out: exit 124]");
    expect(processes("^sleep 60$")).toEqual([]);
  });

  test("a job cancelled with scancel by hand shows stopped", async () => {
    const id = await detach(["--", "sleep 120"]);
    await waitFor(() => existsSync(join(jobDirOf("p-w1", id), "started_at")), 15_000);
    const { slurm } = await job(id);
    asWorker("p-w1", `scancel ${slurm.job_id}`);
    const waited = await p(["wait", id.slice(0, 8), "--json"], { env });
    expect(JSON.parse(waited.stdout)[0]).toMatchObject({ status: "stopped" });
    expect(waited.code).not.toBe(0);
  });

  test("slurmctld restarted while a job runs: the job is still followed to its end", async () => {
    const proc = spawnP(["-n", "--", "echo one; sleep 4; echo two"], { env });
    const reader = proc.stdout.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("one\n");
    const restart = Bun.spawnSync(["bash", SLURM, "restart", cluster], { stderr: "pipe" });
    expect(restart.stderr.toString()).toBe("");
    let rest = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    expect(rest).toBe("two\n");
    expect(await proc.exited).toBe(0);
  });

  test("--after is a Slurm dependency: a failure skips the jobs after it", async () => {
    const a = await detach(["--", "sleep 1; exit 4"]);
    const b = await detach(["--after", a.slice(0, 8), "--", "echo b"]);
    const c = await detach(["--after", b.slice(0, 8), "--", "echo c"]);
    const d = await detach(["--after-any", a.slice(0, 8), "--", "echo d"]);
    const waited = await p(["wait", a, b, c, d, "--json"], { env });
    const byId = new Map(JSON.parse(waited.stdout).map((j: { id: string }) => [j.id, j]));
    expect(byId.get(a)).toMatchObject({ status: "done", exit_code: 4 });
    expect(byId.get(b)).toMatchObject({ status: "skipped", exit_code: null });
    expect(byId.get(c)).toMatchObject({ status: "skipped", exit_code: null });
    expect(byId.get(d)).toMatchObject({ status: "done", exit_code: 0 });
    expect(waited.code).toBe(4);
  });

  test("--env and --secret reach the job; the secret is in no argv, no file left, nothing Slurm keeps", async () => {
    const secret = "s3cr3t-slurm-value";
    const id = await detach(["--env", "PLAIN=yes", "--secret", "TOKEN", "--", 'echo "$PLAIN $TOKEN"; sleep 1'], {
      env: { ...env, TOKEN: secret },
    });
    expect((await p(["wait", id], { env })).code).toBe(0);
    expect((await p(["logs", id], { env })).stdout).toBe(`yes ${secret}\n`);
    const dir = jobDirOf("p-w1", id);
    // (but the job's own output, which printed it)
    const files = readdirSync(dir).filter((f) => f !== "output.log");
    expect(files).toContain("cmd");
    for (const f of files) expect(readFileSync(join(dir, f), "utf8")).not.toContain(secret);
    const { slurm } = await job(id);
    expect(asWorker("p-w1", `scontrol show job ${slurm.job_id}`)).not.toContain(secret);
    expect(JSON.stringify(await job(id))).not.toContain(secret);
  });

  test("p rm cancels a queued job before removing it; nothing of it is left", async () => {
    const a = await detach(["--cpus", "2", "--", "sleep 2"]);
    const b = await detach(["--cpus", "2", "--", "echo never"]);
    expect((await p(["rm", "-f", b.slice(0, 8)], { env })).code).toBe(0);
    expect(existsSync(jobDirOf("p-w1", b))).toBe(false);
    expect((await p(["wait", a.slice(0, 8)], { env })).code).toBe(0);
    // Slurm never ran it
    expect(asWorker("p-w1", "squeue -h -t all -o '%j %T'")).toContain(`p-${b.slice(0, 8)} CANCELLED`);
  });
});

describe("a node that dies", () => {
  test("a job whose node died shows unknown; nothing runs it again", async () => {
    const id = await detach(["--", "echo started >>runs.txt; sleep 120"]);
    await waitFor(() => processes("^sleep 120$").length === 1, 20_000);
    const died = Bun.spawnSync(["bash", SLURM, "node-dies", cluster], { stderr: "pipe" });
    expect(died.stderr.toString()).toBe("");
    try {
      expect(processes("^sleep 120$")).toEqual([]);
      let j = await job(id);
      for (let i = 0; i < 50 && j.status === "running"; i++) {
        await Bun.sleep(200);
        j = await job(id);
      }
      expect(j).toMatchObject({ status: "unknown", exit_code: null, slurm: { state: "NODE_FAIL" } });
    } finally {
      const back = Bun.spawnSync(["bash", SLURM, "node-back", cluster], { stderr: "pipe" });
      expect(back.stderr.toString()).toBe("");
    }
    // (not requeued: the node back, the job stays as it ended)
    await Bun.sleep(1500);
    expect(readFileSync(join(home("p-w1"), ".p", "workdirs", id, "runs.txt"), "utf8")).toBe("started\n");
    expect(asWorker("p-w1", `squeue -h -t all -o '%j %T' -n p-${id.slice(0, 8)}`)).toBe(
      `p-${id.slice(0, 8)} NODE_FAIL\n`,
    );
  });
});

describe("a root of the worker's own, and p-exec", () => {
  test("register --root puts p's files on the cluster's shared file system, with the worker's $USER", async () => {
    const given = `${shared}/$USER/p`;
    const r = await p(["worker", "register", "p-w2", "--slurm", "--root", given, "-n", "scratch"], { env });
    expect(r.code).toBe(0);
    const dir = scratch("rooted");
    writeFileSync(join(dir, "in.txt"), "rooted\n");
    const run = await p(["scratch", "--", "cat in.txt; pwd"], { env, cwd: dir });
    expect(run.code).toBe(0);
    const [content, pwd] = run.stdout.trim().split("\n");
    expect(content).toBe("rooted");
    expect(pwd).toStartWith(`${shared}/p-w2/p/workdirs/`);
    const id = pwd!.split("/").pop()!;
    expect(existsSync(join(shared, "p-w2", "p", "jobs", id, "exitcode"))).toBe(true);
    expect(existsSync(join(home("p-w2"), ".p"))).toBe(false);
    // pull and rm find it there too
    const out = scratch("out");
    expect((await p(["pull", id.slice(0, 8), "in.txt", out], { env })).code).toBe(0);
    expect(readFileSync(join(out, "in.txt"), "utf8")).toBe("rooted\n");
    expect((await p(["rm", id.slice(0, 8)], { env })).code).toBe(0);
    expect(existsSync(join(shared, "p-w2", "p", "jobs", id))).toBe(false);
  });

  test("p-exec run --slurm submits to Slurm too; --dry-run prints the batch script", async () => {
    const r = await runBinary(P_EXEC, ["run", "p-w1", "--slurm", "--", "echo via p-exec; exit 5"], { env });
    expect(r).toMatchObject({ code: 5, stdout: "via p-exec\n" });
    const dry = await runBinary(P_EXEC, ["run", "p-w1", "--slurm", "--cpus", "2", "--dry-run", "--", "true"], { env });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^# sbatch .*--export=NONE .*--cpus-per-task=2 .*\n#!\/bin\/sh\n/);
    // the very script a job's batch file holds
    const jobs = join(home("p-w1"), ".p", "jobs");
    const some = readdirSync(jobs).find((d) => existsSync(join(jobs, d, "batch")))!;
    expect(dry.stdout.slice(dry.stdout.indexOf("\n") + 1)).toBe(readFileSync(join(jobs, some, "batch"), "utf8"));
  });
});
