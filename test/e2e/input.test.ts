import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  jobDirOf,
  lastJob,
  P,
  p,
  root,
  runBinary,
  scratch,
  spawnP,
  useWorkers,
  type Workers,
  waitFor,
} from "./_harness.ts";

// A followed job reads p's stdin where it is a pipe or a file, as a command run by ssh
// does: compiled p, real sshd, real jobs.
setDefaultTimeout(60_000);

let env: Record<string, string>;
// (one: a worker of one slot, on which a second job waits in the queue)
useWorkers([["p-w1"], ["p-w2", "-n", "one", "--slots", "1"]], (w: Workers) => {
  env = w.env;
});

/** `bash -c script`, with $1 the compiled p and $2 p-exec: a pipeline as a user types it. */
const sh = (script: string) =>
  runBinary("bash", ["-c", script, "bash", P, join(root, "dist", "p-exec")], { env, cwd: scratch("input") });

/**
 * The processes of a worker user's that pass a job its input (input.sh's, which must not
 * outlive what it serves): the script itself, waiting for the job or to open its fifo, or
 * the `cat` it became, writing a job's fifo (not the follow's own cat, which reads its stdin).
 */
const inputWriters = (user: string) =>
  Bun.spawnSync(["pgrep", "-u", user])
    .stdout.toString()
    .split("\n")
    .filter(Boolean)
    .filter((pid) => {
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").includes("p-input")) return true;
        return /\/stdin( \(deleted\))?$/.test(readlinkSync(`/proc/${pid}/fd/1`));
      } catch {
        return false; // (gone meanwhile)
      }
    });

/** Whether the newest job has its input passed on (input.sh said so), on worker user `user`. */
const inputPassed = (user: string) => {
  const job = lastJob(env);
  return job !== undefined && existsSync(join(jobDirOf(user, job.id), "stdin.on"));
};

describe("a job's stdin", () => {
  test("a pipe: echo hi | p -- cat prints hi", async () => {
    const r = await sh('echo hi | "$1" -n -- cat');
    expect(r).toMatchObject({ stdout: "hi\n", code: 0 });
  });

  test("a file: 5 MB of random bytes arrive whole (sha256sum there equals it here)", async () => {
    const file = join(scratch("input-file"), "data.bin");
    const data = randomBytes(5 * 1024 * 1024);
    writeFileSync(file, data);
    const r = await sh(`"$1" -n -- sha256sum < '${file}'`);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${createHash("sha256").update(data).digest("hex")}  -\n`);
  });

  test("a pipe of 200,000 lines read line by line, as it comes", async () => {
    const r = await sh(
      `seq 1 200000 | "$1" -n -- 'n=0; while read -r l; do n=$((n + 1)) last=$l; done; echo "$n $last"'`,
    );
    expect(r).toMatchObject({ stdout: "200000 200000\n", code: 0 });
  });

  test("a job that stops reading ends p: yes | p -- head -2", async () => {
    const t0 = performance.now();
    const r = await sh('yes | "$1" -n -- head -2');
    expect(r).toMatchObject({ stdout: "y\ny\n", code: 0 });
    expect(performance.now() - t0).toBeLessThan(10_000);
    await waitFor(() => inputWriters("p-w1").length === 0, 5000);
  });

  test("a job that reads nothing ends p at its own end, with p's stdin still open", async () => {
    const proc = spawnP(["-n", "--", "echo done"], { env, stdin: "pipe" });
    const t0 = performance.now();
    const code = await proc.exited;
    expect(performance.now() - t0).toBeLessThan(10_000);
    expect(code).toBe(0);
    expect(await new Response(proc.stdout).text()).toBe("done\n");
    proc.stdin.end();
    await waitFor(() => inputWriters("p-w1").length === 0, 5000);
  });

  test("no input (/dev/null): the job reads its end at once", async () => {
    const t0 = performance.now();
    const r = await sh('"$1" -n -- "cat; echo end" < /dev/null');
    expect(r).toMatchObject({ stdout: "end\n", code: 0 });
    // (it never waited for input to be passed on)
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  test("-d: a detached job reads nothing (p is gone), and makes no fifo", async () => {
    const r = await sh('echo lost | "$1" -n -d -- "cat; echo end"');
    expect(r.code).toBe(0);
    const id = r.stdout.trim();
    expect((await p(["wait", id.slice(0, 8)], { env })).code).toBe(0);
    expect((await p(["logs", id.slice(0, 8)], { env })).stdout).toBe("end\n");
    expect(existsSync(join(jobDirOf("p-w1", id), "stdin"))).toBe(false);
  });

  test("a job queued behind another reads its input once it starts", async () => {
    expect((await sh('"$1" -n -d one -- sleep 2')).code).toBe(0);
    const r = await sh('echo waited | "$1" -n one -- cat');
    expect(r).toMatchObject({ stdout: "waited\n", code: 0 });
    expect(r.stderr).toContain("queued (slot) on one");
  });

  test("p killed while its job is queued: the job starts later and reads the end of its input", async () => {
    expect((await sh('"$1" -n -d one -- sleep 3')).code).toBe(0);
    const proc = spawnP(["-n", "one", "--", "cat; echo read-all"], { env, stdin: "pipe" });
    proc.stdin.write("half a line");
    proc.stdin.flush();
    // (queued, with its input passed on: input.sh waits for the job)
    await waitFor(() => inputPassed("p-w2")).finally(() => proc.kill("SIGKILL"));
    await proc.exited;
    const { id } = lastJob(env)!;
    await waitFor(() => existsSync(join(jobDirOf("p-w2", id), "exitcode")), 15_000);
    expect(readFileSync(join(jobDirOf("p-w2", id), "exitcode"), "utf8")).toBe("0\n");
    // what the client sent before it was killed may or may not have reached the job; its end did
    expect(readFileSync(join(jobDirOf("p-w2", id), "output.log"), "utf8")).toEndWith("read-all\n");
    await waitFor(() => inputWriters("p-w2").length === 0, 5000);
  });

  test.each([
    ["stopped (p stop)", ["stop"]],
    ["removed (p rm --force)", ["rm", "--force"]],
  ])("a job %s while queued never reads its input, and leaves nothing waiting to write it", async (how, command) => {
    const first = (await sh('"$1" -n -d one -- sleep 3')).stdout.trim();
    // (its stdin a pipe that stays open)
    const proc = spawnP(["-n", "one", "--", "cat"], { env, stdin: "pipe" });
    try {
      await waitFor(() => inputPassed("p-w2"));
      const { id } = lastJob(env)!;
      expect(inputWriters("p-w2")).not.toEqual([]);
      expect((await p([...command, id.slice(0, 8)], { env })).code).toBe(0);
      await waitFor(() => inputWriters("p-w2").length === 0, 10_000);
      proc.stdin.end();
      const [code, said] = [await proc.exited, await new Response(proc.stderr).text()];
      if (how.startsWith("stopped")) {
        // (a job that never ran did not succeed: 1, as p wait says)
        expect(code).toBe(1);
        expect(said).toContain("[Job stopped before it started]");
      } else {
        expect(code).not.toBe(0);
        expect(existsSync(jobDirOf("p-w2", id))).toBe(false);
      }
    } finally {
      // (a failure here must not leave a job holding the worker's one slot)
      proc.stdin.end();
      proc.kill();
    }
    expect((await p(["wait", first.slice(0, 8)], { env })).code).toBe(0);
  });

  test("Ctrl+C detaches: p exits 130, and the job runs on, reading the end of its input", async () => {
    const proc = spawnP(["-n", "--", "cat; echo input-ended; sleep 1; echo ran-on"], { env, stdin: "pipe" });
    proc.stdin.write("typed\n");
    proc.stdin.flush();
    const out = proc.stdout.getReader();
    const first = await out.read().finally(() => proc.kill("SIGINT"));
    expect(new TextDecoder().decode(first.value)).toBe("typed\n");
    expect(await proc.exited).toBe(130);
    const { id } = lastJob(env)!;
    expect((await p(["wait", id.slice(0, 8)], { env })).code).toBe(0);
    expect((await p(["logs", id.slice(0, 8)], { env })).stdout).toBe("typed\ninput-ended\nran-on\n");
    proc.stdin.end();
  });

  test("p-exec run passes its stdin on too", async () => {
    const r = await sh('printf "a\\nb\\n" | "$2" run p-w1 -- wc -l');
    expect(r).toMatchObject({ stdout: "2\n", code: 0 });
  });

  test("a group's jobs read nothing, and end at once", async () => {
    const t0 = performance.now();
    const r = await sh('echo x | "$1" -n --on p-w1,one -- "cat; echo end"');
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n").filter((l) => l.endsWith("end"))).toHaveLength(2);
    expect(performance.now() - t0).toBeLessThan(8000);
  });
});
