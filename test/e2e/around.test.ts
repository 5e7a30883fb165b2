import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { appendFileSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { P, p, scratch, useWorkers, type Workers } from "./_harness.ts";

// What people expect around a job, through the compiled p and real sshd: its results
// brought back (--pull) and a word when it ends (--notify).
setDefaultTimeout(60_000);

let w: Workers;
let env: Record<string, string>;
useWorkers([["p-w1"], ["p-w2"]], (started) => {
  w = started;
  env = w.env;
});

describe("--pull", () => {
  test("a followed job's results come back whatever its exit code, and p says what it pulled", async () => {
    const dir = scratch("pull");
    const r = await p(
      ["--pull", "out.txt", "--pull", "res", "--", "echo hi >out.txt; mkdir -p res/deep; echo x >res/deep/y; exit 3"],
      { env, cwd: dir },
    );
    expect(r.code).toBe(3);
    expect(readFileSync(join(dir, "out.txt"), "utf8")).toBe("hi\n");
    expect(readFileSync(join(dir, "res", "deep", "y"), "utf8")).toBe("x\n");
    expect(r.stderr).toMatch(/Pulled out\.txt from job [0-9a-f]{8} into /);
    expect(r.stderr).toMatch(/Pulled res from job [0-9a-f]{8} into /);
  });

  test("detached, the first p wait that sees the end pulls into the directory the job came from, once", async () => {
    const dir = scratch("pulld");
    const id = (await p(["-d", "--pull", "r.txt", "--", "sleep 1; echo r >r.txt"], { env, cwd: dir })).stdout.trim();
    expect(existsSync(join(dir, "r.txt"))).toBe(false);
    const waited = await p(["wait", id], { env, cwd: scratch("elsewhere") });
    expect(waited.code).toBe(0);
    expect(waited.stderr).toContain(`Pulled r.txt from job ${id.slice(0, 8)} into ${dir}`);
    expect(readFileSync(join(dir, "r.txt"), "utf8")).toBe("r\n");
    rmSync(join(dir, "r.txt"));
    const again = await p(["wait", id], { env });
    expect(again.stderr).not.toContain("Pulled");
    expect(existsSync(join(dir, "r.txt"))).toBe(false);
  });

  test("a group's jobs pull into a directory each; a path that is not there is said, not fatal", async () => {
    const dir = scratch("pullg");
    const r = await p(["--on", "p-w1,p-w2", "--pull", "who.txt", "--pull", "nothing", "--", "whoami >who.txt"], {
      env,
      cwd: dir,
    });
    expect(r.code).toBe(0);
    for (const u of ["p-w1", "p-w2"]) expect(readFileSync(join(dir, u, "who.txt"), "utf8")).toBe(`${u}\n`);
    expect(r.stderr).toMatch(/Could not pull nothing from job [0-9a-f]{8}: nothing is not in job/);

    // later, p pull with the group's id does the same for each job, into the dest given
    const group = /group ([0-9a-f]{8})/.exec(r.stderr)![1]!;
    const dest = scratch("pullg-later");
    const later = await p(["pull", group, "who.txt", dest], { env });
    expect(later.code).toBe(0);
    for (const u of ["p-w1", "p-w2"]) {
      expect(readFileSync(join(dest, u, "who.txt"), "utf8")).toBe(`${u}\n`);
      expect(later.stderr).toMatch(new RegExp(`Pulled who\\.txt from job [0-9a-f]{8} into ${join(dest, u)}\n`));
    }
    // a path no job has: said for each, and the exit code is the first failure's
    const none = await p(["pull", "--json", group, "nothing", dest], { env });
    expect(none.code).toBe(64);
    const said = JSON.parse(none.stdout);
    expect(said.group.startsWith(group)).toBe(true);
    expect(said.jobs.map((j: { dest: string }) => j.dest)).toEqual([join(dest, "p-w1"), join(dest, "p-w2")]);
    for (const j of said.jobs)
      expect(j.error).toEqual({ code: "invalid_argument", message: expect.stringContaining("nothing is not in job") });
  });

  test("p pull of a sweep puts each job's copy in a directory named after its worker and values", async () => {
    const cwd = scratch("pulls");
    const r = await p(["--on", "p-w1,p-w2", "--each", "S=1,a/b,3", "--", 'echo "$S" >s.txt'], { env, cwd });
    expect(r.code).toBe(0);
    const group = /group ([0-9a-f]{8})/.exec(r.stderr)![1]!;
    const dest = scratch("pulls-to");
    expect((await p(["pull", group, "s.txt", dest], { env })).code).toBe(0);
    const got = Object.fromEntries(
      ["p-w1_S=1", "p-w2_S=a_b", "p-w1_S=3"].map((d) => [d, readFileSync(join(dest, d, "s.txt"), "utf8")]),
    );
    expect(got).toEqual({ "p-w1_S=1": "1\n", "p-w2_S=a_b": "a/b\n", "p-w1_S=3": "3\n" });
  });

  test("a path outside the work dir is refused before anything runs", async () => {
    for (const bad of ["/etc/passwd", "../x", "a/../../b"]) {
      const r = await p(["--pull", bad, "--", "true"], { env });
      expect(r.code).toBe(64);
      expect(r.stderr).toContain("is not a path inside the job's work dir");
    }
  });
});

describe("--notify", () => {
  test("without notify: in config and no desktop, p says so in one line and keeps the job's code", async () => {
    const r = await p(["--notify", "--", "exit 4"], { env: { ...env, PATH: "/usr/bin:/bin" } });
    expect(r.code).toBe(4);
    expect(r.stderr).toContain("--notify: no notify command in config.yaml, and no notify-send here");
  });

  test("the config's command gets the job's JSON on stdin, from p -- cmd, p wait and p logs -f", async () => {
    const file = join(scratch("notify"), "said.json");
    appendFileSync(join(env.XDG_CONFIG_HOME!, "p", "config.yaml"), `notify:\n  command: cat >>${file}\n`);
    const r = await p(["--notify", "--", "exit 2"], { env });
    expect(r.code).toBe(2);
    const first = JSON.parse(readFileSync(file, "utf8"));
    expect(first).toMatchObject({ status: "done", exit_code: 2, command: "exit 2" });
    rmSync(file);

    const id = (await p(["-d", "--", "sleep 1"], { env })).stdout.trim();
    expect((await p(["wait", "--notify", id], { env })).code).toBe(0);
    expect(JSON.parse(readFileSync(file, "utf8"))).toMatchObject({ id, status: "done", exit_code: 0 });
    rmSync(file);

    const id2 = (await p(["-d", "--", "sleep 1; exit 5"], { env })).stdout.trim();
    expect((await p(["logs", "-f", "--notify", id2], { env })).code).toBe(5);
    expect(JSON.parse(readFileSync(file, "utf8"))).toMatchObject({ id: id2, exit_code: 5 });
    rmSync(file);

    // a group: one word for all of it, a list
    expect((await p(["--on", "p-w1,p-w2", "--notify", "--", "true"], { env })).code).toBe(0);
    const said = JSON.parse(readFileSync(file, "utf8"));
    expect(said.map((j: { worker: string }) => j.worker)).toEqual(["p-w1", "p-w2"]);
  });
});

/** Run p on a pseudo-terminal of `cols` columns (util-linux script), as a user at a terminal would. */
function onTerminal(args: string[], opts: { env: Record<string, string>; cwd?: string; cols?: number }) {
  const line = [P, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
  const r = Bun.spawnSync(["script", "-qec", `stty cols ${opts.cols ?? 100} rows 40; ${line}`, "/dev/null"], {
    env: { ...opts.env, TERM: "xterm" },
    cwd: opts.cwd ?? scratch("tty"),
    stdin: "ignore",
  });
  return { out: r.stdout.toString(), code: r.exitCode };
}

describe("progress, timings and tables that fit", () => {
  test("a sync of a few seconds shows one line of rsync's progress on a terminal, and none through a pipe", async () => {
    // a far-away worker: the rsync here sends at 4 MB/s (--bwlimit)
    const bin = scratch("slow-bin");
    writeFileSync(join(bin, "rsync"), `#!/bin/sh\nexec ${Bun.which("rsync")} --bwlimit=4000 "$@"\n`, { mode: 0o755 });
    const env = { ...w.env, PATH: `${bin}:${w.env.PATH ?? process.env.PATH}` };
    const dir = scratch("big");
    Bun.spawnSync(["sh", "-c", `head -c 12000000 /dev/urandom >${dir}/blob`]);
    const tty = onTerminal(["--", "true"], { env, cwd: dir });
    expect(tty.code).toBe(0);
    expect(tty.out).toMatch(/\r\x1b\[Ksyncing: .*\d+(\.\d+)? [KM]B, \S+\/s, \d+:\d\d:\d\d left/);
    // and it is gone once the sync is: cleared before anything else is written
    expect(tty.out).toMatch(/\r\x1b\[K(?!syncing)/);
    rmSync(join(dir, "blob"));
    Bun.spawnSync(["sh", "-c", `head -c 12000000 /dev/urandom >${dir}/blob2`]);
    const piped = await p(["-v", "--", "true"], { env, cwd: dir });
    expect(piped.code).toBe(0);
    expect(piped.stderr).not.toContain("syncing");
    // (the sync took seconds: the pipe had a progress line to leave out)
    expect(Number(piped.stderr.match(/sync (\d+) ms/)?.[1])).toBeGreaterThan(2000);
  });

  test("-v prints one line of the phases' timings", async () => {
    const r = await p(["-v", "--", "echo hi"], { env, cwd: scratch("verbose") });
    expect(r.stdout).toBe("hi\n");
    expect(r.stderr).toMatch(
      /timings: resolve \d+ ms, sync \d+ ms \(\d+ files?, \d+(\.\d+)? \w+ sent\), launch \d+ ms, first output \d+ ms\n/,
    );
  });

  test("on a terminal p ls cuts a long command to fit, --no-trunc shows it whole; a pipe gets it whole", async () => {
    const long = `echo ${"x".repeat(150)}`;
    expect((await p(["-n", "--", long], { env })).code).toBe(0);
    const cut = onTerminal(["ls", "-a"], { env, cols: 80 });
    const lines = cut.out.replaceAll("\r", "").trimEnd().split("\n");
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(80);
    expect(lines.at(-1)).toContain("…");
    const whole = onTerminal(["ls", "-a", "--no-trunc"], { env, cols: 80 });
    expect(whole.out).toContain(long);
    expect((await p(["ls", "-a"], { env })).stdout).toContain(long);
  });
});
