import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  assertJobId,
  FOLLOW_MARK,
  followCommand,
  inputCommand,
  JOB_FILES,
  launchCommand,
  OCCASIONAL_JOB_FILES,
  parseFollowStatus,
  SCRIPT_EXIT,
  secretInput,
} from "../src/protocol/index.ts";
import { jobPid, localWorker } from "./_local.ts";

/** The follow script's stderr: the mark that it found the job, then the status line. */
const statusOf = (err: string) => {
  const lines = err.trim().split("\n");
  expect(lines[0]).toBe(FOLLOW_MARK);
  return parseFollowStatus(lines.at(-1)!);
};

// The scripts are run for real by the local sh, with HOME pointing at a scratch dir.
const { home, newId, sh } = localWorker("script");

async function runJob(command: string) {
  const id = newId();
  const launch = await sh(launchCommand({ id, command, cwd: "/client/dir", worker: "w1" }, false));
  // a detached launch says the state the job is in: it runs (nothing holds this worker
  // back), since when where it has begun by then, or a quick one has ended already
  const state = new RegExp(`^${id} (running( \\d+)?|exited \\d+ \\d+ - \\d+)\n$`);
  expect(launch).toEqual({ out: expect.stringMatching(state), err: "", code: 0 });
  const follow = await sh(followCommand(id));
  return { id, j: join(home, ".p/jobs", id), ...follow };
}

describe("launch + follow", () => {
  test.each([
    ["echo hello", "hello\n", "0"],
    ["exit 3", "", "3"],
    ["false | true; echo piped; exit 7", "piped\n", "7"],
    ["echo out; echo err >&2", "out\nerr\n", "0"],
    ["printf '%s|' \"a b\" 'c'\\''d' '$HOME'", "a b|c'd|$HOME|", "0"],
    ["kill -TERM $$", "", "143"],
  ])("%p prints %p and records exit %p", async (command, output, code) => {
    const r = await runJob(command);
    expect(r.out).toBe(output);
    expect(statusOf(r.err)).toEqual({
      exitCode: Number(code),
      endedAt: expect.any(Number),
      startedAt: expect.any(Number),
      stopped: false,
      timedOut: false,
      skipped: false,
      ran: true,
      size: Buffer.byteLength(output),
    });
    expect(readFileSync(join(r.j, "exitcode"), "utf8")).toBe(`${code}\n`);
    expect(readFileSync(join(r.j, "cmd"), "utf8")).toBe(command);
  });

  test("records the job's files, and only those, atomically named", async () => {
    const r = await runJob("pwd");
    expect(r.out).toBe(`${join(home, ".p/workdirs", r.id)}\n`);
    const files = require("node:fs").readdirSync(r.j).sort();
    // the layout's files, but the marks of an end by stop or time limit, and a queue's details
    expect(files).toEqual(
      Object.values(JOB_FILES)
        .filter((f) => !OCCASIONAL_JOB_FILES.includes(f))
        .sort(),
    );
    expect(readFileSync(join(r.j, "cwd"), "utf8")).toBe("/client/dir");
    expect(readFileSync(join(r.j, "worker"), "utf8")).toBe("w1");
    expect(Number(readFileSync(join(r.j, "started_at"), "utf8"))).toBeGreaterThan(1.7e9);
    expect(statSync(r.j).mode & 0o777).toBe(0o700);
  });

  test("the job runs in its own process group and session, with P_JOB_ID set", async () => {
    const r = await runJob(`ps -o pid=,pgid=,sid= -p $$; echo "$P_JOB_ID"`);
    const [pid, pgid, sid] = r.out.trim().split("\n")[0]!.trim().split(/\s+/);
    expect(pgid).toBe(pid);
    expect(sid).toBe(pid);
    expect(readFileSync(join(r.j, "pid"), "utf8").trim()).toBe(pid!);
    expect(r.out.trim().split("\n")[1]).toBe(r.id);
  });

  test("a named directory is used as it is, and must exist", async () => {
    const id = newId();
    require("node:fs").mkdirSync(join(home, "my dir"), { recursive: true });
    expect((await sh(launchCommand({ id, command: "pwd", cwd: "/", worker: "w", dir: "my dir" }, false))).code).toBe(0);
    expect((await sh(followCommand(id))).out).toBe(`${join(home, "my dir")}\n`);
    const abs = await sh(
      launchCommand({ id: newId(), command: "pwd", cwd: "/", worker: "w", dir: join(home, "my dir") }, false),
    );
    expect(abs.code).toBe(0);
    const missing = await sh(
      launchCommand({ id: newId(), command: "pwd", cwd: "/", worker: "w", dir: "nope's $(echo INJECTED)" }, false),
    );
    expect(missing).toMatchObject({ code: 2, err: "no directory nope's $(echo INJECTED) on the worker\n" });
  });

  test("the job keeps the user's umask for its own files", async () => {
    const r = await runJob("umask");
    expect(r.out.trim()).toBe((await sh("umask")).out.trim());
  });

  test("follow from an offset resumes without doubling", async () => {
    const r = await runJob("printf 'abcdef'");
    expect((await sh(followCommand(r.id, 3))).out).toBe("def");
  });

  test("follow of a job still running streams until it ends", async () => {
    const id = newId();
    await sh(launchCommand({ id, command: "echo one; sleep 0.5; echo two", cwd: "/", worker: "w" }, false));
    const t0 = Date.now();
    const r = await sh(followCommand(id));
    expect(r.out).toBe("one\ntwo\n");
    expect(statusOf(r.err)?.exitCode).toBe(0);
    expect(Date.now() - t0).toBeGreaterThan(300);
  });

  test("a followed launch waits on its runner's lock from the start: the whole output and the end, with no polling", async () => {
    // every sleep the scripts start is logged, with whether the launch started it (the
    // runner's own naps, while it waits for its turn, are its business); the job's sleep
    // is /bin/sleep
    const bin = join(home, "logged-bin");
    mkdirSync(bin, { recursive: true });
    const by = `$(grep -qa p-launch /proc/$PPID/cmdline && echo launch || echo other)`;
    writeFileSync(join(bin, "sleep"), `#!/bin/sh\necho "${by} $*" >>${bin}/sleeps\nexec /bin/sleep "$@"\n`, {
      mode: 0o755,
    });
    for (let i = 0; i < 3; i++) {
      const t0 = Date.now();
      const spec = { id: newId(), command: "echo one; /bin/sleep 0.4; echo two", cwd: "/", worker: "w" };
      const r = await sh(`PATH=${bin}:$PATH; ${launchCommand(spec, true)}`);
      expect(r.out).toBe("one\ntwo\n");
      expect(statusOf(r.err)?.exitCode).toBe(0);
      expect(Date.now() - t0).toBeGreaterThan(350);
    }
    const sleeps = existsSync(join(bin, "sleeps")) ? readFileSync(join(bin, "sleeps"), "utf8") : "";
    expect(sleeps.split("\n").filter((l) => l.startsWith("launch"))).toEqual([]);
  });

  test("a job whose runner died without an exit code reads as unknown", async () => {
    const id = newId();
    await sh(launchCommand({ id, command: "sleep 30", cwd: "/", worker: "w" }, false));
    const j = join(home, ".p/jobs", id);
    const pid = jobPid(j);
    process.kill(Number.parseInt(readFileSync(join(j, "runner"), "utf8"), 10), "SIGKILL");
    process.kill(-pid, "SIGKILL");
    expect(statusOf((await sh(followCommand(id))).err)).toEqual({
      exitCode: null,
      endedAt: null,
      startedAt: expect.any(Number),
      stopped: false,
      timedOut: false,
      skipped: false,
      ran: true,
      size: 0,
    });
  });

  test("follow of a job that is not there fails", async () => {
    expect((await sh(followCommand(newId()))).code).toBe(3);
  });

  test("follow returns at once when the client goes away, and the job keeps running", async () => {
    const id = newId();
    await sh(launchCommand({ id, command: "sleep 1; echo late", cwd: "/", worker: "w" }, false));
    const t0 = Date.now();
    const r = await sh(followCommand(id), true);
    expect(Date.now() - t0).toBeLessThan(800);
    expect(r.out).toBe("");
    expect((await sh(followCommand(id))).out).toBe("late\n");
  });
});

describe("the job's surroundings, as a login session gives them", () => {
  const ignored = async (script: string) => (await sh(script)).out.match(/SigIgn:\s*(\S+)/)?.[1];

  test("no signal is ignored that the launching shell did not ignore: not SIGINT, not SIGQUIT", async () => {
    const here = await ignored("grep SigIgn /proc/self/status");
    expect(here).toBe("0000000000000000");
    const r = await runJob("grep SigIgn /proc/self/status");
    expect(r.out).toBe(`SigIgn:\t${here}\n`);
  });

  test("a job killed by a signal leaves no word of its shell's in its output", async () => {
    const r = await runJob("kill -INT $$");
    expect(r.out).toBe("");
    expect(statusOf(r.err)?.exitCode).toBe(130);
  });

  test("variables given are set before the login shell starts, as they are", async () => {
    const id = newId();
    const env = { LANG: "C.UTF-8", LC_ALL: "C.UTF-8", TERM: "xterm-256color", ODD: "a b'c $HOME\nx" };
    const command = 'printf "%s|" "$LANG" "$LC_ALL" "$TERM" "$ODD"';
    expect((await sh(launchCommand({ id, command, cwd: "/", worker: "w", env }, false))).code).toBe(0);
    expect((await sh(followCommand(id))).out).toBe(`C.UTF-8|C.UTF-8|xterm-256color|a b'c $HOME\nx|`);
    expect(() => launchCommand({ id, command, cwd: "/", worker: "w", env: { "A=B": "x" } }, false)).toThrow(
      /not a variable name/,
    );
  });

  test("secrets reach the job's environment by stdin, and no argv or job file holds them", async () => {
    const id = newId();
    const secret = "s3cr3t a b'c\nd $HOME";
    const spec = { id, command: 'printf "%s" "$TOKEN"', cwd: "/", worker: "w", secrets: { TOKEN: secret } };
    const command = launchCommand(spec, true);
    expect(command).not.toContain("s3cr3t");
    const r = await sh(command, false, secretInput(spec));
    expect(r.out).toBe(secret);
    // (the log holds what the job printed: here, the secret itself)
    for (const file of readdirSync(join(home, ".p/jobs", id)).filter((f) => f !== "output.log"))
      expect(readFileSync(join(home, ".p/jobs", id, file), "utf8")).not.toContain("s3cr3t");
  });

  test("a launch sent ahead waits for its word: 'go' starts the job, the end of stdin leaves nothing", async () => {
    const started = newId();
    const spec = { id: started, command: 'printf "%s" "$TOKEN"', cwd: "/", worker: "w", secrets: { TOKEN: "t0k" } };
    const r = await sh(launchCommand(spec, true, undefined, true), false, `${secretInput(spec)}go\n`);
    expect(r.out).toBe("t0k");
    expect(statusOf(r.err)?.exitCode).toBe(0);
    for (const [input, close] of [
      ["", true],
      ["stop\n", false],
    ] as const) {
      const withdrawn = newId();
      const w = await sh(
        launchCommand({ id: withdrawn, command: "touch ~/ran", cwd: "/", worker: "w" }, false, undefined, true),
        close,
        input,
      );
      expect(w).toEqual({ out: "", err: "", code: SCRIPT_EXIT.withdrawn });
      expect(existsSync(join(home, ".p/jobs", withdrawn))).toBe(false);
      expect(existsSync(join(home, ".p/workdirs", withdrawn))).toBe(false);
      expect(existsSync(join(home, "ran"))).toBe(false);
    }
  });

  test("a followed launch with input: the job reads what input.sh passes on, to its end", async () => {
    const id = newId();
    const launching = sh(launchCommand({ id, command: "wc -l; cat", cwd: "/", worker: "w", input: true }, true));
    await Bun.sleep(100);
    // (the fifo appears with the job, and the job waits for its input's word)
    expect(statSync(join(home, ".p/jobs", id, "stdin")).isFIFO()).toBe(true);
    const passed = await sh(inputCommand(id), true, "one\ntwo\n");
    expect(passed).toEqual({ out: "", err: "", code: 0 });
    const r = await launching;
    expect(r.out).toBe("2\n");
    expect(statusOf(r.err)?.exitCode).toBe(0);
  });

  test("a launch with input whose input never comes: after 10 s the job reads an empty one", async () => {
    const id = newId();
    const t0 = performance.now();
    const r = await sh(launchCommand({ id, command: "wc -c", cwd: "/", worker: "w", input: true }, true));
    expect(r.out).toBe("0\n");
    expect(statusOf(r.err)?.exitCode).toBe(0);
    expect(performance.now() - t0).toBeGreaterThan(9000);
    // (its fifo is an empty file now: input.sh, come late, finds none to write)
    expect(statSync(join(home, ".p/jobs", id, "stdin")).isFile()).toBe(true);
    expect(await sh(inputCommand(id), true, "late\n")).toEqual({ out: "", err: "", code: 0 });
  }, 20_000);

  test("input.sh sent before its launch waits for the job; for a job without input it ends at once", async () => {
    const id = newId();
    const passing = sh(inputCommand(id), true, "early\n");
    await Bun.sleep(50);
    const r = await sh(launchCommand({ id, command: "cat", cwd: "/", worker: "w", input: true }, true));
    expect(r.out).toBe("early\n");
    expect(await passing).toEqual({ out: "", err: "", code: 0 });
    const plain = newId();
    await sh(launchCommand({ id: plain, command: "true", cwd: "/", worker: "w" }, true));
    const t0 = performance.now();
    expect(await sh(inputCommand(plain), true, "unread\n")).toEqual({ out: "", err: "", code: 0 });
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  test.each([
    ["followed", "yes", true, {}],
    ["detached", "-", false, {}],
    ["on Slurm", "-", true, { slurm: {} }],
  ] as const)("a launch %s with input says INPUT=%s (yes: the job's fifo is made)", (_, word, follow, more) => {
    const cmd = launchCommand({ id: newId(), command: "true", cwd: "/", worker: "w", input: true, ...more }, follow);
    // (INPUT is the last argument here: no variables follow it)
    expect(cmd.split(" ").at(-1)).toBe(word);
  });

  test("with a tty, the job runs on a pseudo-terminal of the given size, and keeps its exit code", async () => {
    const id = newId();
    const command = "[ -t 1 ] && echo tty; tput cols; tput lines; exit 3";
    const spec = { id, command, cwd: "/", worker: "w", tty: { cols: 77, rows: 22 }, env: { TERM: "xterm" } };
    expect((await sh(launchCommand(spec, false))).code).toBe(0);
    const r = await sh(followCommand(id));
    expect(r.out).toBe("tty\r\n77\r\n22\r\n");
    expect(statusOf(r.err)?.exitCode).toBe(3);
  });

  test("without one, nothing is a terminal", async () => {
    const r = await runJob("[ -t 0 ] || [ -t 1 ] || echo none");
    expect(r.out).toBe("none\n");
  });
});

describe("a time limit", () => {
  test("ends the job's whole group with TERM once it passes, and the job ends with 124, marked", async () => {
    const id = newId();
    const t0 = Date.now();
    const spec = { id, command: "sleep 39 & sleep 38; echo never", cwd: "/", worker: "w", timeoutS: 1 };
    expect((await sh(launchCommand(spec, false))).code).toBe(0);
    const r = await sh(followCommand(id));
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.out).toBe("");
    expect(statusOf(r.err)).toMatchObject({ exitCode: 124, stopped: false, timedOut: true });
    expect((await sh("pgrep -f '^sleep 3[89]$' || true")).out).toBe("");
    // nor the timer's own wait for a KILL it no longer needs
    await Bun.sleep(200);
    expect((await sh("pgrep -f '^sleep 10$' || true")).out).toBe("");
  });

  test("a job that ends within its limit keeps its own code, and no timer is left behind", async () => {
    const id = newId();
    const spec = { id, command: "echo in time; exit 3", cwd: "/", worker: "w", timeoutS: 37 };
    expect((await sh(launchCommand(spec, false))).code).toBe(0);
    const r = await sh(followCommand(id));
    expect(r.out).toBe("in time\n");
    expect(statusOf(r.err)).toMatchObject({ exitCode: 3, timedOut: false });
    await Bun.sleep(200);
    expect((await sh("pgrep -f '^sleep 37$' || true")).out).toBe("");
  });
});

describe("assertJobId", () => {
  test.each(["../../etc", "", "ABC", "00000000-0000-4000-8000-00000000000/", "x; rm -rf ~", "-rf"])(
    "%p is refused",
    (id) => {
      expect(() => assertJobId(id)).toThrow(/not a UUID/);
      expect(() => launchCommand({ id, command: "true", cwd: "/", worker: "w" }, false)).toThrow(/not a UUID/);
    },
  );
});
