import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { jobDirOf, P, p, scratch, spawnP, startWorkers, type Workers, waitFor } from "./_harness.ts";

// A job behaves as the same command would over ssh, or here: signals, umask, terminal,
// locale; a stream survives a lost connection; git's refusals are said, never papered over.
setDefaultTimeout(60_000);

let w: Workers;
let env: Record<string, string>;

beforeAll(async () => {
  w = startWorkers();
  env = { ...w.env, TERM: "xterm-256color", LANG: "C.UTF-8", LC_TIME: "C" };
  expect((await p(["worker", "register", "p-w1"], { env })).code).toBe(0);
});
afterAll(() => w.stop());

/** The same command over plain ssh, as a user would compare. */
const ssh = (cmd: string) =>
  Bun.spawnSync([...w.env.P_SSH_COMMAND!.split(" "), "p-w1", cmd], { stdin: "ignore" }).stdout.toString();

const lastJobId = async () => JSON.parse((await p(["ls", "-a", "--json"], { env })).stdout).at(-1).id as string;

describe("signals and umask, as ssh gives them", () => {
  test("no signal is ignored that ssh would not ignore: SIGINT and SIGQUIT reach the job", async () => {
    const viaSsh = ssh("grep SigIgn /proc/self/status");
    expect(viaSsh).toMatch(/^SigIgn:\s+0+\n$/);
    const r = await p(["-n", "--", "grep SigIgn /proc/self/status"], { env });
    expect(r.stdout).toBe(viaSsh);
  });

  test("Ctrl+C semantics inside the job: timeout -s INT ends its command, Python raises KeyboardInterrupt", async () => {
    const t0 = Date.now();
    const r = await p(["-n", "--", "timeout -s INT 1 sleep 20; echo $?"], { env });
    expect(r.stdout).toBe("124\n");
    expect(Date.now() - t0).toBeLessThan(10_000);
    const py = await p(["-n", "--", "python3 -c 'import os, signal; os.kill(os.getpid(), signal.SIGINT)'"], { env });
    expect(py.stdout).toContain("KeyboardInterrupt");
    expect(py.code).toBe(130);
  });

  test("the job's umask is the one ssh gives", async () => {
    expect((await p(["-n", "--", "umask"], { env })).stdout).toBe(ssh("umask"));
  });
});

describe("terminal type and locale", () => {
  test("TERM, LANG and LC_* come from here, as ssh's SendEnv LANG LC_* would send them", async () => {
    const r = await p(["-n", "--", 'printf "%s|" "$TERM" "$LANG" "$LC_TIME"; tput cols >/dev/null && echo tput-ok'], {
      env,
    });
    expect(r.stdout).toBe("xterm-256color|C.UTF-8|C|tput-ok\n");
  });

  test("--env and --env-file set variables for the job; --env wins over a file, and over what is forwarded", async () => {
    const cwd = scratch("envfile");
    writeFileSync(join(cwd, "job.env"), 'FROM_FILE="a b"\nBOTH=file\n');
    const r = await p(
      [
        "--env",
        "GIVEN=x y'z",
        "--env",
        "MINE",
        "--env-file",
        "job.env",
        "--env",
        "BOTH=flag",
        "--",
        'printf "%s|" "$GIVEN" "$MINE" "$FROM_FILE" "$BOTH" "$LANG"',
      ],
      { env: { ...env, MINE: "local value" }, cwd },
    );
    expect(r.stdout).toBe("x y'z|local value|a b|flag|C.UTF-8|");
    // names the worker's own scripts use are the job's to set, and change nothing else
    const names = ["shell", "command", "job", "tty", "pair"].flatMap((n) => ["--env", `${n}=mine`]);
    const own = await p([...names, "-n", "--", 'printf "%s|" "$shell" "$command" "$job" "$tty" "$pair" "$0"'], {
      env,
    });
    expect(own).toMatchObject({ code: 0, stdout: "mine|mine|mine|mine|mine|/bin/bash|" });
    const unset = await p(["--env", "NOT_SET_HERE", "--", "true"], { env, cwd });
    expect(unset).toMatchObject({ code: 64, stderr: expect.stringContaining("NOT_SET_HERE is not set here") });
  });

  test("forward_env in config.yaml adds names, or turns forwarding off", async () => {
    const config = join(env.XDG_CONFIG_HOME!, "p", "config.yaml");
    const original = readFileSync(config, "utf8");
    try {
      writeFileSync(config, `${original}forward_env:\n  - MY_*\n`);
      const more = await p(["-n", "--", 'printf "%s|" "$LANG" "$MY_SETTING"'], { env: { ...env, MY_SETTING: "on" } });
      expect(more.stdout).toBe("C.UTF-8|on|");
      writeFileSync(config, `${original}forward_env: false\n`);
      const none = await p(["-n", "--", 'printf "%s|" "$LANG" "$LC_TIME"'], { env });
      expect(none.stdout).toBe("||");
    } finally {
      writeFileSync(config, original);
    }
  });
});

describe("-t: a pseudo-terminal on the worker", () => {
  test("sized like the client's (COLUMNS and LINES without a terminal); colours as they are locally", async () => {
    const r = await p(["-t", "-n", "--", "tput cols; tput lines; ls --color=auto -d /"], {
      env: { ...env, COLUMNS: "77", LINES: "22" },
    });
    expect(r.code).toBe(0);
    // the same escapes as ls gives here on a terminal, and the pty's line ends
    const local = Bun.spawnSync(["ls", "--color=always", "-d", "/"]).stdout.toString();
    expect(local).toContain("\x1b[");
    expect(r.stdout).toBe(`77\r\n22\r\n${local.replace("\n", "\r\n")}`);
    // the log keeps the escapes, and p logs prints them as they are
    const logged = await p(["logs", await lastJobId()], { env });
    expect(logged.stdout).toBe(r.stdout);
  });

  test("without -t nothing is a terminal, and nothing is coloured", async () => {
    const r = await p(["-n", "--", "[ -t 1 ] || echo no-tty; ls --color=auto -d /"], { env });
    expect(r.stdout).toBe("no-tty\n/\n");
  });

  test("the job's exit code and stop work as without one", async () => {
    expect((await p(["-t", "-n", "--", "exit 7"], { env })).code).toBe(7);
    const id = (await p(["-t", "-d", "-n", "--", "sleep 60 & sleep 61; echo never"], { env })).stdout.trim();
    await waitFor(() => {
      try {
        return readFileSync(join(jobDirOf("p-w1", id), "pid"), "utf8").length > 0;
      } catch {
        return false;
      }
    });
    await Bun.sleep(300);
    const stop = await p(["stop", "--json", id], { env });
    expect(JSON.parse(stop.stdout)).toMatchObject({ stopped: true, status: "stopped" });
    const left = Bun.spawnSync(["sh", "-c", "pgrep -u p-w1 -f 'sleep 6[01]' || true"]).stdout.toString();
    expect(left).toBe("");
  });

  test("tty: auto in config.yaml makes -t the default only when p's stdout is a terminal", async () => {
    const config = join(env.XDG_CONFIG_HOME!, "p", "config.yaml");
    const original = readFileSync(config, "utf8");
    try {
      writeFileSync(config, `${original}tty: auto\n`);
      // stdout is a pipe here: no terminal for the job
      expect((await p(["-n", "--", "[ -t 1 ] && echo tty || echo pipe"], { env })).stdout).toBe("pipe\n");
      // under script(1), p's stdout is a terminal
      const cmd = `${P} -n -- '[ -t 1 ] && echo tty || echo pipe'`;
      const r = Bun.spawnSync(["script", "-qefc", cmd, "/dev/null"], { env, cwd: scratch("auto") });
      expect(r.stdout.toString()).toMatch(/^tty\r+\n/m);
    } finally {
      writeFileSync(config, original);
    }
  });
});

describe("a lost connection while following", () => {
  const lines = (n: number) => Array.from({ length: n }, (_, i) => `line ${i + 1}\n`).join("");

  test("is retried with backoff and the stream resumes at the byte where it stopped: none lost or doubled", async () => {
    const proc = spawnP(["--", "for i in $(seq 1 60); do echo line $i; sleep 0.05; done"], {
      env,
      cwd: scratch("cut"),
    });
    const reader = proc.stdout.getReader();
    let out = "";
    while (!out.includes("line 10\n")) out += Buffer.from((await reader.read()).value!).toString();
    // end every sshd process serving this user's sessions: the connection drops at once
    Bun.spawnSync(["pkill", "-KILL", "-f", "^sshd: p-w1"]);
    for (let c = await reader.read(); !c.done; c = await reader.read()) out += Buffer.from(c.value).toString();
    expect(await proc.exited).toBe(0);
    const stderr = await new Response(proc.stderr).text();
    expect(out).toBe(lines(60));
    const id = await lastJobId();
    expect(out).toBe(readFileSync(join(jobDirOf("p-w1", id), "output.log"), "utf8"));
    expect(stderr.match(/reconnecting/g)).toHaveLength(1);
    expect(stderr).toContain(`lost the connection to p-w1; reconnecting (job ${id.slice(0, 8)} keeps running`);
    expect(stderr).toContain("[Job done: exit 0]");
  });

  test("when the worker stays away, p gives up with the job named, and logs -f resumes later", async () => {
    const sshd = Number(readFileSync(join(w.dir, "sshd.pid"), "utf8"));
    const proc = spawnP(["--", "for i in $(seq 1 50); do echo line $i; sleep 0.1; done"], {
      env: { ...env, P_RECONNECT_TIMEOUT: "3" },
      cwd: scratch("away"),
    });
    const reader = proc.stdout.getReader();
    let out = "";
    while (!out.includes("line 5\n")) out += Buffer.from((await reader.read()).value!).toString();
    // the daemon stops answering (new connections wait unanswered), and this one drops
    process.kill(sshd, "SIGSTOP");
    try {
      Bun.spawnSync(["pkill", "-KILL", "-f", "^sshd: p-w1"]);
      const t0 = Date.now();
      for (let c = await reader.read(); !c.done; c = await reader.read()) out += Buffer.from(c.value).toString();
      expect(await proc.exited).toBe(255);
      expect(Date.now() - t0).toBeLessThan(12_000);
    } finally {
      process.kill(sshd, "SIGCONT");
    }
    const stderr = await new Response(proc.stderr).text();
    const id = await lastJobId();
    expect(stderr).toContain(`lost the connection while following job ${id.slice(0, 8)}; it keeps running`);
    expect(stderr).toContain(`Resume with: p logs -f ${id.slice(0, 8)}`);
    const rest = await p(["logs", "-f", id], { env });
    expect(rest.code).toBe(0);
    expect(out + rest.stdout).toBe(lines(50));
  });
});

describe("what git refuses", () => {
  test("a repository owned by another user is refused in one line with git's fix, by p and p-sync alike", async () => {
    const repo = scratch("dubious");
    writeFileSync(join(repo, "a.c"), "int a;");
    mkdirSync(join(repo, "ignored", "keep"), { recursive: true });
    writeFileSync(join(repo, ".gitignore"), "ignored/\n");
    writeFileSync(join(repo, "ignored", "keep", ".gitkeep"), "");
    const git = (...args: string[]) =>
      Bun.spawnSync(["git", "-c", "user.email=t@t", "-c", "user.name=t", "-C", repo, ...args]).exitCode;
    expect(git("init", "-q")).toBe(0);
    expect(git("add", "a.c", ".gitignore") + git("add", "-f", "ignored/keep/.gitkeep")).toBe(0);
    expect(git("commit", "-qm", "x")).toBe(0);
    Bun.spawnSync(["chown", "-R", "p-w2", repo]);
    chmodSync(repo, 0o755);
    const fix = `git config --global --add safe.directory ${repo}`;
    const run = await p(["--", "ls -a"], { env, cwd: repo });
    expect(run.code).toBe(70);
    expect(run.stdout).toBe("");
    expect(run.stderr).toContain(`git refuses to read the repository at ${repo} (detected dubious ownership`);
    expect(run.stderr).toContain(fix);
    for (const args of [
      ["--explain", "ignored/keep/.gitkeep", repo],
      ["--dry-run", repo, "p-w1", "x"],
    ]) {
      const r = Bun.spawnSync([`${P}-sync`, ...args], { env });
      expect(r.exitCode).toBe(70);
      expect(r.stderr.toString()).toContain(fix);
    }
    // once trusted (here for this run only), exactly git's set is sent: the force-added file too
    const trusted = { ...env, GIT_CONFIG_COUNT: "1", GIT_CONFIG_KEY_0: "safe.directory", GIT_CONFIG_VALUE_0: repo };
    const ok = await p(["--", "find . -name .gitkeep"], { env: trusted, cwd: repo });
    expect(ok.stdout).toBe("./ignored/keep/.gitkeep\n");
  });
});

describe("repositories: a worktree answers as it does here, submodules keep working", () => {
  const git = (cwd: string, ...args: string[]) => {
    const r = Bun.spawnSync(["git", "-c", "user.email=t@t", "-c", "user.name=t", ...args], { cwd, stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.toString();
  };
  const ASK = "git rev-parse HEAD; git branch --show-current; git describe --tags; git status --short";

  test("in a git worktree the job has a repository: its HEAD, index and branch, the shared objects and refs", async () => {
    const base = scratch("worktree");
    const repo = join(base, "repo");
    mkdirSync(repo);
    git(repo, "init", "-q", "-b", "main");
    writeFileSync(join(repo, "a.c"), "a");
    git(repo, "add", ".");
    git(repo, "commit", "-qm", "one");
    git(repo, "tag", "v1");
    const feat = join(base, "feat");
    git(repo, "worktree", "add", "-q", "-b", "feature", feat);
    writeFileSync(join(feat, "b.c"), "b");
    git(feat, "add", "b.c");
    git(feat, "commit", "-qm", "two");
    writeFileSync(join(feat, "c.c"), "c");
    git(feat, "add", "c.c"); // staged, not committed: the index is the worktree's
    const here = Bun.spawnSync(["sh", "-c", ASK], { cwd: feat }).stdout.toString();
    expect(here).toMatch(/^[0-9a-f]{40}\nfeature\nv1-1-g[0-9a-f]+\nA {2}c\.c\n$/);
    const before = readFileSync(join(feat, ".git"), "utf8");
    for (const _ of [1, 2]) {
      // a first run and a re-run (from the mirror) alike
      const r = await p(["--", ASK], { env, cwd: feat });
      expect(r.stdout).toBe(here);
      expect(r.code).toBe(0);
    }
    // p-sync sends what a job gets: the worktree's repository as .git/
    const synced = Bun.spawnSync([`${P}-sync`, feat, "p-w1", "wt-copy"], { env });
    expect(synced.exitCode).toBe(0);
    const there = await p(["-n", "--", `cd ~/wt-copy && { ${ASK}; }`], { env });
    expect(there.stdout).toBe(here);
    // nothing on the client changed, and the main checkout is as it was
    expect(readFileSync(join(feat, ".git"), "utf8")).toBe(before);
    expect(git(repo, "branch", "--show-current")).toBe("main\n");
    expect(git(repo, "status", "--short")).toBe("");
  });

  test("submodules, whose .git files point inside the tree, work in the job as here", async () => {
    const base = scratch("submodule");
    const lib = join(base, "lib");
    const app = join(base, "app");
    mkdirSync(lib);
    mkdirSync(app);
    git(lib, "init", "-q", "-b", "main");
    writeFileSync(join(lib, "lib.c"), "lib");
    git(lib, "add", ".");
    git(lib, "commit", "-qm", "lib");
    git(app, "init", "-q", "-b", "main");
    git(app, "-c", "protocol.file.allow=always", "submodule", "add", "-q", lib, "vendor/lib");
    git(app, "commit", "-qm", "app");
    const cmd = "git submodule status; git -C vendor/lib rev-parse HEAD; cat vendor/lib/lib.c";
    const here = Bun.spawnSync(["sh", "-c", cmd], { cwd: app }).stdout.toString();
    expect(here).toContain("vendor/lib");
    const r = await p(["--", cmd], { env, cwd: app });
    expect(r.stdout).toBe(here);
  });
});

describe("worker names", () => {
  test("a worker cannot be named like a command of p, at register or in config.yaml", async () => {
    const r = await p(["worker", "register", "p-w1", "-n", "ls"], { env });
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('worker name "ls" is not valid: it is a command of p');
    expect((await p(["ls", "-a", "--json"], { env })).code).toBe(0);
    const config = join(env.XDG_CONFIG_HOME!, "p", "config.yaml");
    const original = readFileSync(config, "utf8");
    try {
      writeFileSync(config, `${original.replace("workers:", "workers:\n  - name: ls\n    connection: p-w1")}`);
      for (const argv of [
        ["worker", "ls"],
        ["--", "true"],
      ]) {
        const bad = await p(argv, { env });
        expect(bad.code).toBe(64);
        expect(bad.stderr).toContain('worker name "ls" is not valid: it is a command of p');
      }
    } finally {
      writeFileSync(config, original);
    }
  });
});
