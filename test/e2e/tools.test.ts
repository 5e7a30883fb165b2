import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  jobDirOf,
  p,
  type Run,
  root,
  runBinary,
  scratch,
  startWorkers,
  UUID,
  type Workers,
  waitFor,
} from "./_harness.ts";

// real sshd, real rsync, real jobs: slower than unit tests
setDefaultTimeout(30_000);

let w: Workers;
let env: Record<string, string>;

/** Run another of the three binaries. */
const bin = (name: "p-sync" | "p-exec", args: string[], cwd?: string): Promise<Run> =>
  runBinary(join(root, "dist", name), args, { env, cwd: cwd ?? w.dir });
const json = (r: Run) => JSON.parse(r.stdout);

let project: string;
beforeAll(async () => {
  w = startWorkers();
  env = w.env;
  expect((await p(["worker", "register", "p-w1", "-n", "one"], { env })).code).toBe(0);
  project = scratch("proj");
  mkdirSync(join(project, "src"));
  writeFileSync(join(project, ".gitignore"), "*.o\n!keep.o\n");
  writeFileSync(join(project, "src/main.c"), "int main;");
  writeFileSync(join(project, "src/main.o"), "obj");
  writeFileSync(join(project, "keep.o"), "kept");
});
afterAll(() => w.stop());

describe("p-sync on its own", () => {
  test("to a registered worker, into a destination with a space", async () => {
    const r = await bin("p-sync", [project, "one", "synced/my app"]);
    expect(r.code).toBe(0);
    expect(readFileSync("/home/p-w1/synced/my app/src/main.c", "utf8")).toBe("int main;");
    expect(existsSync("/home/p-w1/synced/my app/src/main.o")).toBe(false);
    expect(existsSync("/home/p-w1/synced/my app/keep.o")).toBe(true);
  });

  test("to any ssh target that is not a registered worker, with --json", async () => {
    const r = await bin("p-sync", ["--json", project, "p-w2", "elsewhere"]);
    expect(json(r)).toEqual({ source: project, target: "p-w2", dest: "elsewhere" });
    expect(existsSync("/home/p-w2/elsewhere/src/main.c")).toBe(true);
  });

  test("--dry-run prints the exact rsync argv, the files and the size, and sends nothing", async () => {
    const r = await bin("p-sync", ["--dry-run", project, "one", "never"]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^rsync -a --protect-args .* -- \/\S+\/ p-w1:never\/ < file-list$/);
    expect(lines.slice(1, -1).sort()).toEqual([".gitignore", "keep.o", "src/main.c"]);
    expect(lines.at(-1)).toBe("3 files, 25 B");
    expect(existsSync("/home/p-w1/never")).toBe(false);
    const j = json(await bin("p-sync", ["--dry-run", "--json", project, "one", "never"]));
    expect(j.argv[0]).toBe("rsync");
    expect(j.total_bytes).toBe(25);
    expect(j.files).toContainEqual({ path: "src/main.c", size: 9 });
  });

  test("--explain names the deciding rule", async () => {
    const r = await bin("p-sync", ["--explain", "src/main.o", project]);
    expect(r.stdout).toBe("src/main.o: not synced, ignored (.gitignore:1: *.o)\n");
    const k = json(await bin("p-sync", ["--explain", "keep.o", "--json"], project));
    expect(k).toEqual({
      path: "keep.o",
      synced: true,
      reason: "re-included (.gitignore:2: !keep.o)",
      rule: { source: ".gitignore", line: 2, pattern: "!keep.o" },
    });
  });

  test("bad input: one line, exit 64, JSON under --json", async () => {
    const r = await bin("p-sync", ["/no/such/dir", "one", "x"]);
    expect(r.code).toBe(64);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(json(await bin("p-sync", ["--json", project, "bad host;id", "x"]))).toEqual({
      error: { code: "invalid_argument", message: expect.stringMatching(/connection string/) },
    });
  });
});

describe("p-exec on its own", () => {
  test("run follows the job and exits with its code; --dir runs in a named directory", async () => {
    const r = await bin("p-exec", ["run", "one", "--dir", "synced/my app", "--", "pwd; cat src/main.c; exit 6"]);
    expect(r.code).toBe(6);
    expect(r.stdout).toBe("/home/p-w1/synced/my app\nint main;");
    expect(r.stderr).toContain("[Job done: exit 6]");
  });

  test("run -d, status, logs -f, stop, status: the same detached, logged, process-group launch as p", async () => {
    const started = json(await bin("p-exec", ["run", "p-w2", "-d", "--json", "--", "echo begun; sleep 30"]));
    expect(started).toEqual({ id: expect.stringMatching(UUID), target: "p-w2" });
    const id = started.id as string;
    await waitFor(() => existsSync(join(jobDirOf("p-w2", id), "pid")));
    expect(json(await bin("p-exec", ["status", "--json", "p-w2", id]))).toEqual([
      { id, state: "running", startedAt: expect.any(Number) },
    ]);
    const stop = await bin("p-exec", ["stop", "--json", "p-w2", id]);
    expect(json(stop)).toMatchObject({ id, stopped: true, state: "exited", exitCode: 143 });
    expect((await bin("p-exec", ["logs", "p-w2", id])).stdout).toBe("begun\n");
    const f = await bin("p-exec", ["logs", "-f", "p-w2", id]);
    expect(f).toMatchObject({ stdout: "begun\n", code: 143 });
    expect((await bin("p-exec", ["status", "p-w2", id])).stdout).toBe(`${id} stopped 143\n`);
  });

  test("--dry-run prints the remote script and runs nothing", async () => {
    const r = await bin("p-exec", ["run", "--dry-run", "--json", "one", "--", "printf", "%s", "it's"]);
    expect(r.code).toBe(0);
    const { id, script } = json(r);
    expect(script).toContain("setsid");
    // the command as it goes to the worker: the script, then its data as quoted arguments
    expect(script).toMatch(new RegExp(`^sh -c '.*' p-launch \\.p follow ${id} 'printf %s '.*' \\S+ one '' -`, "s"));
    expect(existsSync(jobDirOf("p-w1", id))).toBe(false);
    // run by a shell, the printed command does what p-exec run would have done
    const text = await bin("p-exec", ["run", "--dry-run", "-d", "one", "--", "echo", "ran it"]);
    const ran = Bun.spawnSync(["su", "-s", "/bin/sh", "p-w1", "-c", text.stdout], { cwd: "/" });
    expect(ran.exitCode).toBe(0);
    const launched = /p-launch \.p detach (\S+) /.exec(text.stdout)![1]!;
    await waitFor(() => existsSync(join(jobDirOf("p-w1", launched), "exitcode")));
    expect(readFileSync(join(jobDirOf("p-w1", launched), "output.log"), "utf8")).toBe("ran it\n");
  });

  test("bad input is refused: a non-UUID id, a missing directory", async () => {
    const bad = await bin("p-exec", ["status", "one", "../../etc"]);
    expect(bad.code).toBe(64);
    expect(bad.stderr).toMatch(/is not a UUID/);
    const nodir = await bin("p-exec", ["run", "one", "--dir", "no/such", "--", "true"]);
    expect(nodir.code).toBe(70);
    expect(nodir.stderr).toMatch(/no directory no\/such on the worker/);
  });
});

describe("--json everywhere", () => {
  test("every result is one JSON value on stdout", async () => {
    const cwd = scratch("json");
    const started = json(await p(["-d", "--json", "--", "sleep 30"], { env, cwd }));
    const id = String(started.id);
    expect(id).toMatch(UUID);
    expect(started).toMatchObject({ worker: "one", status: "running", command: "sleep 30", cwd });
    expect(json(await p(["stop", "--json", id], { env }))).toMatchObject({
      id,
      status: "stopped",
      stopped: true,
      exit_code: 143,
    });
    expect(json(await p(["worker", "register", "p-w2", "--json"], { env }))).toEqual({
      name: "p-w2",
      connection: "p-w2",
      default: false,
    });
    expect(json(await p(["worker", "default", "p-w2", "--json"], { env }))).toEqual({ default_worker: "p-w2" });
    expect(json(await p(["worker", "default", "one", "--json"], { env }))).toEqual({ default_worker: "one" });
    expect(json(await p(["worker", "ls", "--json"], { env }))).toHaveLength(2);
    expect(json(await p(["worker", "rm", "p-w2", "--json"], { env }))).toEqual({
      removed: "p-w2",
      default_worker: "one",
    });
    await p(["--", "echo x > out.txt"], { env, cwd });
    const last = json(await p(["ls", "-a", "--json"], { env })).at(-1);
    expect(json(await p(["pull", "--json", last.id, "out.txt", cwd], { env }))).toEqual({
      id: last.id,
      path: "out.txt",
      dest: cwd,
    });
    expect(json(await p(["rm", "--json", last.id], { env }))).toEqual([
      { id: last.id, worker: "one", bytes: expect.any(Number) },
    ]);
    expect(json(await p(["prune", "--dry-run", "--json"], { env }))).toMatchObject({
      dry_run: true,
      workers: expect.any(Array),
    });
  });

  test.each([
    [["stop", "--json", "ffffffff"], "job_not_found", 64],
    [["stop", "--json", "not-hex!"], "invalid_argument", 64],
    [["nope", "-d", "--json", "--", "true"], "worker_not_found", 64],
    [["ls", "--json", "--bogus"], "invalid_argument", 64],
    [["worker", "register", "--json", "h:99999"], "invalid_argument", 64],
    [["worker", "register", "--json", "p-w1@127.0.0.1:1", "-n", "dead"], "worker_unreachable", 255],
  ])("errors under --json: %p is %p", async (args, code, exit) => {
    const r = await p(args, { env });
    expect(r.code).toBe(exit);
    expect(json(r)).toEqual({ error: { code, message: expect.any(String) } });
    expect(r.stderr).toBe("");
  });

  test("an ambiguous id under --json", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 20 && !ids.some((a) => ids.some((b) => a !== b && a[0] === b[0])); i++)
      ids.push((await p(["-n", "-d", "--", "true"], { env })).stdout.trim());
    const a = ids.find((x) => ids.some((y) => y !== x && y[0] === x[0]))!;
    expect(json(await p(["stop", "--json", a[0]!], { env }))).toEqual({
      error: { code: "ambiguous_job_id", message: expect.stringContaining("ambiguous") },
    });
  });
});

describe("help and completion", () => {
  const commands = [
    [],
    ["ls"],
    ["logs"],
    ["stop"],
    ["pull"],
    ["rm"],
    ["prune"],
    ["worker"],
    ["worker", "register"],
    ["worker", "ls"],
    ["worker", "default"],
    ["worker", "rm"],
    ["ui"],
    ["completion"],
  ];
  test.each(commands)("p %s --help", async (...cmd: string[]) => {
    const r = await p([...cmd, "--help"], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Example: /);
    expect(r.stdout).toMatchSnapshot();
  });
  const tools: string[][] = [
    ["p-sync"],
    ["p-exec", "run"],
    ["p-exec", "logs"],
    ["p-exec", "stop"],
    ["p-exec", "status"],
  ];
  test.each(tools)("%s --help", async (...parts: string[]) => {
    const [name, ...cmd] = parts as ["p-sync" | "p-exec", ...string[]];
    const r = await bin(name, [...cmd, "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Example: /);
    expect(r.stdout).toMatchSnapshot();
  });

  test("bash completion offers commands, worker names and job ids", async () => {
    const id = (await p(["-n", "-d", "--", "true"], { env })).stdout.trim();
    const complete = (words: string[]) => {
      const script = `eval "$(p completion bash)"; COMP_WORDS=(${words.map((x) => `'${x}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _p_complete; printf '%s\\n' "\${COMPREPLY[@]}"`;
      const r = Bun.spawnSync(["bash", "-c", script], { env: { ...env, PATH: `${join(root, "dist")}:${env.PATH}` } });
      return r.stdout.toString().trim().split("\n");
    };
    expect(complete(["p", ""])).toEqual(expect.arrayContaining(["ls", "logs", "worker", "one", "--"]));
    expect(complete(["p", "worker", "def"])).toEqual(["default"]);
    expect(complete(["p", "worker", "default", ""])).toEqual(["one"]);
    expect(complete(["p", "logs", id.slice(0, 6)])).toEqual([id.slice(0, 8)]);
    // a group's id too, for ls as for the rest
    const group = JSON.parse((await p(["--each", "K=1,2", "-n", "-d", "--json", "--", "true"], { env })).stdout).group;
    expect(complete(["p", "ls", group.slice(0, 6)])).toEqual([group.slice(0, 8)]);
    expect(complete(["p", "wait", group.slice(0, 6)])).toEqual([group.slice(0, 8)]);
  });

  test.each(["zsh", "fish"])("a %s script is printed", async (shell) => {
    const r = await p(["completion", shell], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(shell === "fish" ? "complete -c p" : "bashcompinit");
  });

  test("colour only on a terminal: none into a pipe even with CI set, none with NO_COLOR", async () => {
    const { NO_COLOR: _, ...colourful } = env;
    const r = await p(["--", "exit 1"], { env: { ...colourful, CI: "true" } });
    expect(r.stderr).toContain("[Job done: exit 1]");
    expect(r.stderr).not.toContain("\x1b[");
    const forced = await p(["--", "exit 1"], { env: { ...colourful, FORCE_COLOR: "1" } });
    expect(forced.stderr).toContain("\x1b[");
    const off = await p(["--no-color", "--", "exit 1"], { env: { ...colourful, FORCE_COLOR: "1" } });
    expect(off.stderr).not.toContain("\x1b[");
  });
});
