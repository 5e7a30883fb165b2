import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { P, p, scratch, spawnP, useWorkers, type Workers, waitFor } from "./_harness.ts";

// real sshd and real jobs, through the keeper the compiled p starts
setDefaultTimeout(30_000);

let w: Workers;
useWorkers([["p-w1"]], (started) => {
  w = started;
});

/** p's environment with connections kept `seconds`, its keeper's socket in a runtime dir of the test's own. */
function keeping(seconds: string) {
  const runtime = scratch("runtime");
  chmodSync(runtime, 0o700);
  return { ...w.env, P_KEEP_CONNECTIONS: seconds, XDG_RUNTIME_DIR: runtime };
}
const sh = (cmd: string) => Bun.spawnSync(["sh", "-c", cmd]).stdout.toString().trim();
/** The pid of the keeper serving `env`, if one runs. */
// (the pattern's brackets keep the shell that runs pgrep from matching it)
const keeperOf = (env: Record<string, string>) => sh(`pgrep -f '[_]_keep-connections ${env.XDG_RUNTIME_DIR}/' || true`);
const socketOf = (env: Record<string, string>) => {
  const dir = join(env.XDG_RUNTIME_DIR!, "p-0");
  const name = existsSync(dir) ? readdirSync(dir).find((n) => n.endsWith(".sock")) : undefined;
  return name && join(dir, name);
};
/** The TCP connections a process holds to the worker's sshd (local ports). */
const portsOf = (pid: string) =>
  sh(`ss -tnpH state established '( dport = :${w.port} )' | grep 'pid=${pid},' | awk '{print $3}' | sed 's/.*://'`)
    .split("\n")
    .filter(Boolean);
/** The client port of the SSH connection a job ran under (from the job's SSH_CONNECTION). */
const portOfRun = async (env: Record<string, string>) => {
  const r = await p(["-n", "--", "echo $SSH_CONNECTION"], { env });
  expect(r.code).toBe(0);
  return r.stdout.trim().split(" ")[1];
};
const cleanUp: (() => void)[] = [];
afterAll(() => {
  for (const f of cleanUp) f();
});

describe("connections kept between runs", () => {
  let env: Record<string, string>;
  let keeper: string;
  let kept: string;
  beforeAll(async () => {
    env = keeping("60");
    cleanUp.push(() => sh(`pkill -CONT -f '^sshd: p-w1'; pkill -f '[_]_keep-connections ${env.XDG_RUNTIME_DIR}/'`));
    // the first run starts the keeper; the second has it connect, for the runs after it
    await portOfRun(env);
    await waitFor(() => keeperOf(env) !== "" && socketOf(env) !== undefined);
    keeper = keeperOf(env);
    await portOfRun(env);
    await waitFor(() => portsOf(keeper).length === 1);
    kept = portsOf(keeper)[0]!;
  });

  test("a run borrows the kept connection: the job's SSH connection is the keeper's, run after run", async () => {
    expect(await portOfRun(env)).toBe(kept);
    expect(await portOfRun(env)).toBe(kept);
    // (without it, each run has a connection of its own)
    const direct = { ...env, P_KEEP_CONNECTIONS: "0" };
    const [a, b] = [await portOfRun(direct), await portOfRun(direct)];
    expect(a).not.toBe(b);
    expect([a, b]).not.toContain(kept);
  });

  test("through it, a job is as without it: its output whole, its exit code, its signal, a sync", async () => {
    const big = await p(["-n", "--", "echo $SSH_CONNECTION; seq 1 300000"], { env });
    const lines = big.stdout.trim().split("\n");
    expect(lines[0]!.split(" ")[1]).toBe(kept);
    expect(lines.length).toBe(300001);
    expect(lines.at(-1)).toBe("300000");
    expect(big.code).toBe(0);
    const exit3 = await p(["-n", "--", "echo $SSH_CONNECTION; exit 3"], { env });
    expect(exit3.code).toBe(3);
    expect(exit3.stdout.split(" ")[1]).toBe(kept);
    const term = await p(["-n", "--", "echo $SSH_CONNECTION; kill -TERM $$"], { env });
    expect(term.code).toBe(143);
    expect(term.stdout.split(" ")[1]).toBe(kept);
    const dir = scratch("kept-sync");
    writeFileSync(join(dir, "hello.txt"), "hello from here\n");
    const synced = await p(["--", "cat hello.txt; echo $SSH_CONNECTION"], { env, cwd: dir });
    expect(synced.code).toBe(0);
    expect(synced.stdout).toStartWith("hello from here\n");
    expect(synced.stdout.trim().split("\n")[1]!.split(" ")[1]).toBe(kept);
    // p's stdin, passed on to the job's, and its end
    const input = Bun.spawnSync(["bash", "-c", "seq 1 200000 | \"$0\" -n -- 'wc -l; echo $SSH_CONNECTION'", P], {
      env,
      cwd: dir,
    });
    expect(input.exitCode).toBe(0);
    const [count, connection] = input.stdout.toString().trim().split("\n");
    expect(count).toBe("200000");
    expect(connection!.split(" ")[1]).toBe(kept);
  });

  test("a run killed while it follows its job lets the job run on, and its follow on the worker ends", async () => {
    const marker = `kept-${Date.now()}`;
    const proc = spawnP(["-n", "--", `sleep 3; touch ~/${marker}`], { env });
    await waitFor(() => sh("pgrep -u p-w1 -x tail || true") !== "");
    proc.kill("SIGKILL");
    await proc.exited;
    // the keeper closed what the run had open: the worker's follow (tail) ends with it
    await waitFor(() => sh("pgrep -u p-w1 -x tail || true") === "", 5000);
    await waitFor(() => existsSync(`/home/p-w1/${marker}`), 10_000);
    // and the connection is lent again
    expect(await portOfRun(env)).toBe(kept);
  });

  test("a kept connection that does not answer is passed over: the run connects on its own", async () => {
    // (the worker's sshd for that connection stopped: it holds the TCP connection, answering nothing)
    sh("pkill -STOP -f '^sshd: p-w1'");
    try {
      const t0 = Date.now();
      const port = await portOfRun(env);
      expect(port).not.toBe(kept);
      expect(Date.now() - t0).toBeLessThan(10_000);
    } finally {
      sh("pkill -CONT -f '^sshd: p-w1'");
    }
    // it is let go of; a later run has the keeper connect again, and borrows that
    await waitFor(() => !portsOf(keeper).includes(kept), 5000);
    await portOfRun(env);
    await waitFor(() => portsOf(keeper).length === 1);
    kept = portsOf(keeper)[0]!;
    expect(await portOfRun(env)).toBe(kept);
  });

  test("a kept connection that breaks under a followed run: the run follows its job again, to its end", async () => {
    expect(await portOfRun(env)).toBe(kept);
    const proc = spawnP(["-n", "--", "sleep 2; echo after-the-break"], { env });
    await waitFor(() => sh("pgrep -u p-w1 -x tail || true") !== "");
    sh("pkill -KILL -f '^sshd: p-w1'");
    const [out, err, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    expect(code).toBe(0);
    expect(out).toContain("after-the-break");
    expect(err).toContain("[Job done: exit 0]");
  });

  test("a kept connection the worker ended is let go of: the next run connects on its own", async () => {
    sh("pkill -KILL -f '^sshd: p-w1'");
    await waitFor(() => portsOf(keeper).length === 0, 5000);
    const r = await p(["-n", "--", "echo ok"], { env });
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe("ok");
  });
});

describe("how long connections are kept", () => {
  test("the keeper goes once none has been used for P_KEEP_CONNECTIONS, its socket with it", async () => {
    const env = keeping("2");
    cleanUp.push(() => sh(`pkill -f '[_]_keep-connections ${env.XDG_RUNTIME_DIR}/'`));
    await portOfRun(env);
    await waitFor(() => keeperOf(env) !== "");
    const keeper = keeperOf(env);
    await portOfRun(env);
    await waitFor(() => portsOf(keeper).length === 1);
    const port = portsOf(keeper)[0]!;
    await waitFor(() => keeperOf(env) === "", 8000);
    expect(socketOf(env)).toBeUndefined();
    // its connection went with it, at both ends
    await waitFor(() => sh(`ss -tnH state established '( sport = :${port} or dport = :${port} )'`) === "", 3000);
  });

  test("P_KEEP_CONNECTIONS=0 keeps none: no keeper starts", async () => {
    const env = keeping("0");
    await portOfRun(env);
    await portOfRun(env);
    expect(keeperOf(env)).toBe("");
  });

  test("a P_KEEP_CONNECTIONS that is no duration is one line, exit 64, and no job", async () => {
    const env = keeping("soon");
    const r = await p(["-n", "--", "touch ~/never"], { env });
    expect(r.code).toBe(64);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain('P_KEEP_CONNECTIONS is "soon"');
    expect(existsSync("/home/p-w1/never")).toBe(false);
  });
});
