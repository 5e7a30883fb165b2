import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { commandLine, shq } from "@p/exec/protocol";
import { main as p } from "../src/main.ts";
import { main as pExec } from "../src/p-exec.ts";
import { main as pSync } from "../src/p-sync.ts";
import { inProcess, privateHome } from "./_inprocess.ts";

// Routing, argument errors, exit codes and JSON error shapes, in this process: a config
// and store of their own, no sshd. A refused command must leave the config as it was.
let home: ReturnType<typeof privateHome>;
beforeAll(async () => {
  home = privateHome();
  // a worker nothing listens for: port 1 on loopback refuses at once
  expect((await inProcess(p, ["worker", "register", "p@127.0.0.1:1", "-n", "dead", "--no-check"])).code).toBe(0);
});
afterAll(() => home.restore());

const run = (argv: string[]) => inProcess(p, argv);
const jsonError = (stdout: string) => JSON.parse(stdout).error as { code: string; message: string };

describe("routing", () => {
  test.each([
    [["--version"], 0, /^\d+\.\d+\.\d+\n$/],
    [["ls"], 0, /^ID +WORKER +CWD +COMMAND +STATUS +DURATION\n$/],
    [["worker", "ls"], 0, /^NAME +KIND +CONNECTION +DEFAULT\ndead +ssh +p@127\.0\.0\.1:1 +\*\n$/],
    [["completion", "bash"], 0, /complete -F _p_complete p/],
  ])("p %p exits %p and prints what it should", async (argv, code, stdout) => {
    const r = await run(argv);
    expect(r.stdout).toMatch(stdout);
    expect(r.code).toBe(code);
  });

  test("--help anywhere prints help and exits 0; no arguments prints usage and exits 64", async () => {
    expect(await run(["--help"])).toMatchObject({ code: 0 });
    expect((await run(["ls", "--help"])).code).toBe(0);
    expect((await run(["worker"])).code).toBe(64);
    expect((await run([])).code).toBe(64);
  });

  test("a word before -- that names no command is a worker, and the rest after -- is the command", async () => {
    const r = await run(["nosuch", "--", "ls"]);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain(`no worker named "nosuch" (known: dead)`);
  });

  test("a subcommand wins only before --: `p ls -- x` is ls with an operand, never a job", async () => {
    const r = await run(["ls", "--", "true"]);
    // (the job or group named true, of which there is none)
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('no job is named "true"');
  });

  test("the JIT policy the executables start with (reluctant) is the normal one again once a run has lasted a second", async () => {
    const unsafe = Bun.unsafe as { setJITPolicy: (scale: number) => void };
    const real = unsafe.setJITPolicy;
    // (the runs before this one, in this process, have set it by then)
    await Bun.sleep(1100);
    const calls: { scale: number; ms: number }[] = [];
    unsafe.setJITPolicy = (scale) => calls.push({ scale, ms: performance.now() - t0 });
    const t0 = performance.now();
    try {
      expect((await run(["--version"])).code).toBe(0);
      await Bun.sleep(1100);
      expect(calls).toHaveLength(1);
      expect(calls[0]!.scale).toBe(1);
      expect(calls[0]!.ms).toBeGreaterThanOrEqual(990);
    } finally {
      unsafe.setJITPolicy = real;
    }
  });

  test("a forgotten -- is named, with the fix", async () => {
    const r = await run(["make", "test"]);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain("unknown command make; to run it on a worker: p -- make test");
  });
});

describe("argument errors: one line, exit 64, nothing changed", () => {
  test.each([
    [["ls", "--bogus"], "unknown option '--bogus'; see p ls --help"],
    [["--", " "], "no command given; usage: p [worker | --on a,b|all] [--each K=v1,v2] [-n] [-d] [-t] [--timeout DUR]"],
    [["--gpus", "0", "--", "true"], '--gpus "0" is not a number of GPUs'],
    [["--secret", "P_TEST_UNSET_X", "--", "true"], "--secret P_TEST_UNSET_X: P_TEST_UNSET_X is not set here"],
    [["--secret", "A-B", "--", "true"], '--secret "A-B" is not a variable name'],
    [["--after", "abcd", "--", "true"], 'no job matches "abcd"'],
    [["--after", "a", "--after-any", "b", "--", "true"], "give --after or --after-any, not both"],
    [["worker", "set", "dead", "--slots", "0"], '--slots "0" is not a number of slots'],
    [["worker", "set", "dead", "--gpus", "a b"], '--gpus "a b" is not a list of GPUs'],
    [["worker", "set", "dead"], "usage: p worker set <name> [--slots N|none] [--gpus LIST|none] (Slurm:"],
    [["worker", "set", "nosuch", "--slots", "2"], 'no worker named "nosuch"'],
    [["dead", "extra", "--", "true"], "expected at most one worker before --, got dead extra"],
    [["dead", "--on", "dead", "--", "true"], "give the workers either before -- or with --on, not both"],
    [["--on", "dead,nosuch", "--", "true"], 'no worker named "nosuch"'],
    [["--on", "dead", "--any", "--", "true"], "give --on or --any, not both"],
    [["--on", "dead", "--name", "x", "--", "true"], "--name names one job; tag a group's jobs with --tag"],
    [["--each", "SEED", "--", "true"], '--each "SEED" is not KEY=v1,v2,...'],
    [["--each", "A=1", "--each", "A=2", "--", "true"], "--each A is given twice"],
    [["ls", "--commit", "xyz"], '--commit "xyz" is not a commit'],
    [["ls", "abcd"], 'no job matches "abcd"'],
    [["logs"], "usage: p logs [-f] <job-id>"],
    [["logs", "../etc"], "is not valid"],
    [["logs", "abcd"], 'no job matches "abcd"'],
    [["rm"], "usage: p rm [--force] <job-id>..."],
    [["pull", "abcd"], "usage: p pull"],
    [["worker", "register", "a b"], 'connection string "a b" is not valid'],
    [["worker", "register", "h", "-n", "../x", "--no-check"], 'worker name "../x" is not valid'],
    [["worker", "register", "h", "-n", "dead", "--no-check"], "a worker named dead already exists"],
    [["worker", "register", "h", "-n", "ls", "--no-check"], 'worker name "ls" is not valid: it is a command of p'],
    [["worker", "register", "wait", "--no-check"], 'worker name "wait" is not valid: it is a command of p'],
    [["worker", "default", "nosuch"], 'no worker named "nosuch"'],
  ])("p %p", async (argv, message) => {
    const r = await run(argv);
    expect(r.stderr).toContain(message);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stdout).toBe("");
    expect(r.code).toBe(64);
    expect((await run(["worker", "ls", "--json"])).stdout).toBe(
      `${JSON.stringify([{ name: "dead", connection: "p@127.0.0.1:1", kind: "ssh", default: true }], null, 2)}\n`,
    );
  });

  test("no stack trace unless --verbose", async () => {
    expect((await run(["logs", "abcd"])).stderr).not.toContain("    at ");
    expect((await run(["logs", "abcd", "--verbose"])).stderr).toContain("    at ");
  });
});

describe("--json errors: one JSON object on stdout, with a stable code", () => {
  test.each([
    [["ls", "--json", "--bogus"], "invalid_argument", 64],
    [["--json", "--", "true"], "invalid_argument", 64],
    [["logs", "--json", "abcd"], "invalid_argument", 64],
    [["stop", "--json", "abcd"], "job_not_found", 64],
    [["worker", "register", "--json", "h", "-n", "dead", "--no-check"], "worker_exists", 64],
    [["worker", "default", "--json", "nosuch"], "worker_not_found", 64],
    [["-d", "--json", "--", "true"], "worker_unreachable", 255],
  ])("p %p gives %p and exits %p", async (argv, code, exit) => {
    const r = await run(argv);
    expect(jsonError(r.stdout).code).toBe(code);
    expect(r.code).toBe(exit);
  });

  test("an unreachable worker is named with ssh's reason; a job that never started has no record", async () => {
    const r = await run(["-n", "--", "true"]);
    expect(r.code).toBe(255);
    expect(r.stderr).toContain("worker dead is unreachable (connect to host 127.0.0.1 port 1: Connection refused)");
    expect(JSON.parse((await run(["ls", "-a", "--json"])).stdout)).toEqual([]);
  });

  test("a broken config is named, with its line, and nothing runs", async () => {
    const other = privateHome();
    try {
      mkdirSync(join(other.dir, "config", "p"), { recursive: true });
      writeFileSync(join(other.dir, "config", "p", "config.yaml"), "workers:\n  - name: a\n  connection: [\n");
      const commands = [
        ["worker", "ls", "--json"],
        ["-d", "--json", "--", "true"],
        ["worker", "default", "--json", "a"],
      ];
      for (const argv of commands) {
        const r = await run(argv);
        expect(r.stderr).toBe("");
        expect(jsonError(r.stdout)).toMatchObject({
          code: "config_invalid",
          message: expect.stringMatching(/config\.yaml:\d+: /),
        });
        expect(r.code).toBe(64);
      }
    } finally {
      other.restore();
      process.env.XDG_CONFIG_HOME = join(home.dir, "config");
      process.env.XDG_DATA_HOME = join(home.dir, "data");
      process.env.NO_COLOR = "1";
    }
  });
});

describe("p-exec and p-sync share the rules", () => {
  test.each([
    ["p-exec", ["run"], "no command given; usage: p-exec run", pExec],
    ["p-exec", ["run", "dead"], "no command given; usage: p-exec run", pExec],
    ["p-exec", ["run", "--", "true"], "usage: p-exec run", pExec],
    ["p-exec", ["status", "dead", "not-a-uuid"], 'job id "not-a-uuid" is not a UUID', pExec],
    ["p-exec", ["logs", "dead"], "usage: p-exec logs <worker|ssh-target> <job-id>...", pExec],
    ["p-exec", ["stop", "'; rm -rf ~'", "00000000-0000-4000-8000-000000000001"], "is not valid", pExec],
    ["p-sync", ["."], "usage: p-sync [--dry-run] <dir> <worker|ssh-target> <dest>", pSync],
    ["p-sync", ["/nonexistent", "dead", "x"], "/nonexistent is not a directory", pSync],
  ])("%s %p", async (_, argv, message, main) => {
    const r = await inProcess(main, argv as string[]);
    expect(r.stderr).toContain(message as string);
    expect(r.code).toBe(64);
  });

  test("p-exec run --dry-run prints the one command that would run on the worker, and runs nothing", async () => {
    const saved = process.env.LANG;
    process.env.LANG = "C.UTF-8";
    try {
      const r = await inProcess(pExec, ["run", "--dry-run", "--json", "dead", "--", "echo", "it's"]);
      expect(r.code).toBe(0);
      const { id, script, target } = JSON.parse(r.stdout);
      expect(target).toBe("dead");
      expect(script).toStartWith("sh -c '");
      // the data, as quoted arguments: the worker's root, mode, id, command, cwd, worker, dir, tty, variables
      const command = shq(commandLine(["echo", "it's"]));
      expect(script).toContain(`' p-launch .p follow ${id} ${command} ${shq(process.cwd())} dead '' - `);
      expect(script).toContain(" LANG=C.UTF-8");
    } finally {
      if (saved === undefined) delete process.env.LANG;
      else process.env.LANG = saved;
    }
  });

  test("an unreachable target exits 255 from p-exec too", async () => {
    const r = await inProcess(pExec, ["status", "dead", "00000000-0000-4000-8000-000000000001"]);
    expect(r.code).toBe(255);
    expect(r.stderr).toContain("worker dead is unreachable");
  });
});

describe("a worker's capacity", () => {
  test("set changes slots and GPUs, none takes them away, and ls shows them", async () => {
    const set = await run(["worker", "set", "dead", "--slots", "3", "--gpus", "0,1"]);
    expect(set).toMatchObject({ code: 0, stdout: "Worker dead: 3 slots, GPUs 0,1\n" });
    const listed = JSON.parse((await run(["worker", "ls", "--json"])).stdout)[0];
    expect(listed).toMatchObject({ name: "dead", slots: 3, gpus: ["0", "1"], slots_in_use: 0 });
    expect((await run(["worker", "ls"])).stdout).toMatch(/\n?dead +ssh +\S+ +\* +0\/3 +0,1\n$/);
    expect((await run(["worker", "set", "dead", "--slots", "none", "--gpus", "none"])).stdout).toBe(
      "Worker dead: no slot limit\n",
    );
    expect(JSON.parse((await run(["worker", "ls", "--json"])).stdout)[0]).toEqual({
      name: "dead",
      kind: "ssh",
      connection: "p@127.0.0.1:1",
      default: true,
    });
  });
});

describe("a Slurm worker's settings", () => {
  test("register --slurm --no-check keeps partition and account; set changes them; capacity is Slurm's", async () => {
    const reg = await run([
      "worker",
      "register",
      "p@127.0.0.1:1",
      "-n",
      "hpc",
      "--slurm",
      "--partition",
      "gpu",
      "--no-check",
    ]);
    expect(reg).toMatchObject({ code: 0, stdout: "Registered worker hpc (p@127.0.0.1:1): Slurm, partition gpu\n" });
    const set = await run(["worker", "set", "hpc", "--account", "lab", "--partition", "none"]);
    expect(set).toMatchObject({ code: 0, stdout: "Worker hpc: Slurm, account lab\n" });
    const listed = JSON.parse((await run(["worker", "ls", "--json"])).stdout);
    expect(listed.find((w: { name: string }) => w.name === "hpc")).toMatchObject({
      kind: "slurm",
      slurm: { account: "lab" },
    });
    for (const [argv, message] of [
      [["worker", "set", "hpc", "--slots", "2"], "--slots and --gpus are for workers that run jobs themselves"],
      [["worker", "set", "dead", "--partition", "gpu"], "--partition and --account are for Slurm workers"],
      [["worker", "set", "hpc", "--partition", "a b"], '--partition "a b" is not a Slurm name'],
      [["worker", "register", "x@h", "--partition", "gpu", "--no-check"], "--partition and --account go with --slurm"],
      [["worker", "register", "x@h", "--slurm", "--root", "/x/$(id)", "--no-check"], "is not a directory p can keep"],
    ] as const) {
      const r = await run([...argv]);
      expect(r.code).toBe(64);
      expect(r.stderr).toContain(message);
    }
    expect((await run(["worker", "rm", "hpc"])).code).toBe(0);
  });
});
