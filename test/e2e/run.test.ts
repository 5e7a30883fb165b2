import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { mirrorDir } from "../../packages/exec/src/protocol/layout.ts";
import { RACY_MS } from "../../packages/sync/src/snapshot.ts";
import {
  asWorker,
  commitAll,
  gitIn,
  jobDirOf,
  lastJob,
  layout,
  mirrorsSettled,
  oddWorker,
  P,
  p,
  pToHead,
  scratch,
  spawnP,
  startWorkers,
  UUID,
  type Workers,
  waitFor,
  workDirOf,
  wrappedTool,
} from "./_harness.ts";

// real sshd, real rsync, real jobs: slower than unit tests
setDefaultTimeout(30_000);

let w: Workers;
let env: Record<string, string>;

beforeAll(async () => {
  w = startWorkers();
  env = w.env;
  expect((await p(["worker", "register", "p-w1"], { env })).code).toBe(0);
  expect((await p(["worker", "register", `p-w2@127.0.0.1:${w.port}`, "-n", "w2"], { env })).code).toBe(0);
});
afterAll(() => w.stop());

const jobIds = () =>
  new Set(
    (existsSync(join(env.XDG_DATA_HOME!, "p", "jobs")) ? readdirSync(join(env.XDG_DATA_HOME!, "p", "jobs")) : []).map(
      (f) => f.replace(/\.json$/, ""),
    ),
  );
const newJobId = (before: Set<string>) => [...jobIds()].find((id) => !before.has(id))!;

/**
 * The env for runs whose every sync's kind is logged (to P_SYNC_KINDS): rsync started
 * with a filter of what changed ("only"), or on the whole tree ("whole").
 */
function syncKinds(name: string): Record<string, string> {
  const bin = scratch(`${name}-bin`);
  const log = join(bin, "kinds");
  writeFileSync(
    join(bin, "rsync"),
    `#!/bin/sh\ncase " $* " in *" --filter=. - "*) echo only ;; *) echo whole ;; esac >>${log}\nexec ${Bun.which("rsync")} "$@"\n`,
    { mode: 0o755 },
  );
  return { ...env, PATH: `${bin}:${env.PATH ?? process.env.PATH}`, P_SYNC_KINDS: log };
}

describe("p -- <command>", () => {
  test("argv arrives intact and stdout is exactly the job's", async () => {
    const r = await p(["--", "printf", "%s|", "a b", "c'd", "$HOME", "", "`id`", "ü ✓"], { env });
    expect(r.stdout).toBe("a b|c'd|$HOME||`id`|ü ✓|");
    expect(r.stderr).toContain("[Job done: exit 0]");
    expect(r.code).toBe(0);
  });

  test("a single argument is a shell command line", async () => {
    const r = await p(["--", "echo one && echo two; false || echo three"], { env });
    expect(r.stdout).toBe("one\ntwo\nthree\n");
  });

  test("p exits with the job's exit code, so scripts can chain on it", async () => {
    const r = await p(["--", "exit 42"], { env });
    expect(r.code).toBe(42);
    expect(r.stderr).toContain("[Job done: exit 42]");
    const chained = Bun.spawnSync(["sh", "-c", `"$0" -- false && echo deployed`, P], { env });
    expect(chained.stdout.toString()).toBe("");
    expect(chained.exitCode).toBe(1);
  });

  test("p -- cmd | head: p ends at once, as a command SIGPIPE kills (141), saying the job keeps running, which it does", async () => {
    const before = jobIds();
    // (some 20 MB of output: far more than a pipe holds, so p's writes meet head's exit)
    const r = await pToHead(["--", "seq 1 3000000; sleep 2; echo finished > after-head"], { env });
    expect(r.stdout).toBe("1\n");
    expect(r.code).toBe(141);
    const id = newJobId(before);
    expect(r.stderr).toContain(`Output closed; job ${id.slice(0, 8)} keeps running on p-w1. Follow it again with:`);
    expect(r.stderr).not.toMatch(/EPIPE|\n\s+at /);
    expect(r.ms).toBeLessThan(10_000);
    // followed again while it runs: from the start (what went into the pipe was not seen)
    const again = await pToHead(["logs", "-f", id.slice(0, 8)], { env });
    expect([again.stdout, again.code]).toEqual(["1\n", 141]);
    expect(again.stderr).not.toContain("resuming after");
    expect((await p(["wait", id.slice(0, 8)], { env })).code).toBe(0);
    expect(readFileSync(join(workDirOf("p-w1", id), "after-head"), "utf8")).toBe("finished\n");
    // what only prints a log ends at once too, without a word
    const logs = await pToHead(["logs", id.slice(0, 8)], { env });
    expect([logs.stdout, logs.code, logs.stderr]).toEqual(["1\n", 141, ""]);
    const followed = await pToHead(["logs", "-f", id.slice(0, 8)], { env });
    expect([followed.stdout, followed.code]).toEqual(["1\n", 141]);
    expect(followed.stderr).not.toMatch(/EPIPE|\n\s+at /);
  });

  test("stdout and stderr of the job both arrive, in order, on stdout", async () => {
    const r = await p(["--", "echo out; echo err >&2; echo out2"], { env });
    expect(r.stdout).toBe("out\nerr\nout2\n");
  });

  test("output appears as it is produced", async () => {
    const proc = spawnP(["--", "echo first; sleep 3; echo second"], { env });
    const reader = proc.stdout.getReader();
    const t0 = Date.now();
    const { value } = await reader.read();
    expect(Buffer.from(value!).toString()).toBe("first\n");
    expect(Date.now() - t0).toBeLessThan(2500);
    let rest = "";
    for (let c = await reader.read(); !c.done; c = await reader.read()) rest += Buffer.from(c.value).toString();
    expect(rest).toBe("second\n");
    expect(await proc.exited).toBe(0);
  });

  test("runs in the job's own work dir, as the worker user, in their login environment", async () => {
    writeFileSync("/home/p-w1/.profile", 'export PATH="$HOME/bin:$PATH"\n');
    mkdirSync("/home/p-w1/bin", { recursive: true });
    writeFileSync("/home/p-w1/bin/only-in-login-path", "#!/bin/sh\necho found-by-login-path\n", { mode: 0o755 });
    Bun.spawnSync(["chown", "-R", "p-w1:p-w1", "/home/p-w1/bin", "/home/p-w1/.profile"]);
    const before = jobIds();
    const r = await p(["--", "whoami; pwd; only-in-login-path"], { env, cwd: scratch("cwd") });
    const id = newJobId(before);
    expect(r.stdout).toBe(`p-w1\n${workDirOf("p-w1", id)}\nfound-by-login-path\n`);
  });

  test("p <worker> -- targets that worker", async () => {
    const r = await p(["w2", "--", "whoami"], { env });
    expect(r.stdout).toBe("p-w2\n");
    expect(lastJob(env)!.worker).toBe("w2");
  });

  test("the worker holds the spec's layout, with the real exit status", async () => {
    const cwd = scratch("layout");
    const before = jobIds();
    await p(["--", "echo logged; exit 5"], { env, cwd });
    const id = newJobId(before);
    const j = jobDirOf("p-w1", id);
    // the spec's layout (layout.ts), but the marks of an end by stop or time limit, and a queue's details
    expect(readdirSync(j).sort()).toEqual(
      Object.values(layout.JOB_FILES)
        .filter((f) => !layout.OCCASIONAL_JOB_FILES.includes(f))
        .sort(),
    );
    expect(readFileSync(join(j, "cmd"), "utf8")).toBe("echo logged; exit 5");
    expect(readFileSync(join(j, "cwd"), "utf8")).toBe(cwd);
    expect(readFileSync(join(j, "worker"), "utf8")).toBe("p-w1");
    expect(readFileSync(join(j, "output.log"), "utf8")).toBe("logged\n");
    expect(readFileSync(join(j, "exitcode"), "utf8")).toBe("5\n");
    const record = lastJob(env)!;
    expect(record).toMatchObject({
      id,
      worker: "p-w1",
      cwd,
      command: "echo logged; exit 5",
      status: "done",
      exit_code: 5,
    });
    expect(record.ended_at).toBeGreaterThanOrEqual(record.started_at);
  });

  test("the job runs in its own process group and session", async () => {
    const before = jobIds();
    const r = await p(["--", "ps -o pgid=,sid= -p $$"], { env });
    const id = newJobId(before);
    const pid = readFileSync(join(jobDirOf("p-w1", id), "pid"), "utf8").trim();
    expect(r.stdout.trim().split(/\s+/)).toEqual([pid, pid]);
  });

  test("an empty command is refused before anything happens", async () => {
    const before = jobIds();
    for (const args of [["--"], ["--", ""], ["--", "  "]]) {
      const r = await p(args, { env });
      expect(r.code).toBe(64);
      expect(r.stderr).toMatch(/no command given/);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
    expect(jobIds()).toEqual(before);
  });

  test("an unknown worker is refused with the known ones named", async () => {
    const r = await p(["nope", "--", "true"], { env });
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/no worker named "nope" \(known: p-w1, w2\)/);
  });
});

describe("sync", () => {
  test("a run's rsync rides p's own SSH connection, the first too: ssh only resolves the worker, and nothing of the relay outlives p", async () => {
    const cwd = scratch("bridge");
    // every ssh p starts, as its arguments: one line each
    const log = join(cwd, "..", "bridge-ssh.log");
    const wrapper = join(cwd, "..", "bridge-ssh");
    writeFileSync(wrapper, `#!/bin/sh\necho "$*" >>${log}\nexec ${env.P_SSH_COMMAND} "$@"\n`, { mode: 0o755 });
    for (const body of ["first\n", "bridged\n"]) {
      writeFileSync(join(cwd, "f.txt"), body);
      rmSync(log, { force: true });
      const r = await p(["--", "cat f.txt"], { env: { ...env, P_SSH_COMMAND: wrapper }, cwd });
      expect(r).toMatchObject({ code: 0, stdout: body });
      // no ssh connected (rsync's remote shell was the relay, over the connection of the launch)
      const lines = readFileSync(log, "utf8").trim().split("\n");
      expect(lines.length).toBeGreaterThan(0);
      expect(lines.filter((l) => !l.split(" ").includes("-G"))).toEqual([]);
      expect(readFileSync(join(workDirOf("p-w1", lastJob(env)!.id), "f.txt"), "utf8")).toBe(body);
    }
    // the relay's shell (named p-rsh) is gone with p
    const ps = Bun.spawnSync(["ps", "-eo", "args"]).stdout.toString();
    expect(ps.split("\n").filter((l) => l.includes("p-rsh"))).toEqual([]);
  });

  test("from a subdirectory of a checkout: the whole checkout goes, and the job runs in the same place in it", async () => {
    const top = scratch("mono");
    for (const [f, body] of [
      ["backend/app.py", "print(1)"],
      ["shared/config", "shared"],
    ]) {
      mkdirSync(join(top, f!, ".."), { recursive: true });
      writeFileSync(join(top, f!), body!);
    }
    commitAll(top, "first");
    const cwd = join(top, "backend");
    writeFileSync(join(cwd, "untracked.txt"), "new");
    const r = await p(
      ["--", "pwd; git rev-parse --show-prefix; cat ../shared/config untracked.txt; mkdir out; echo r > out/res"],
      { env, cwd },
    );
    expect(r.code).toBe(0);
    const job = lastJob(env)!;
    expect(r.stdout).toBe(`${workDirOf("p-w1", job.id)}/backend\nbackend/\nsharednew`);
    expect(job.subdir).toBe("backend");
    // p pull takes a path as the job saw it
    const dest = join(scratch("pulled"), "res");
    expect((await p(["pull", job.id.slice(0, 8), "out/res", dest], { env, cwd })).code).toBe(0);
    expect(readFileSync(dest, "utf8")).toBe("r\n");
    // and above it, within the checkout, but never out of the work dir
    const shared = join(scratch("pulled"), "config");
    expect((await p(["pull", job.id.slice(0, 8), "../shared/config", shared], { env, cwd })).code).toBe(0);
    expect(readFileSync(shared, "utf8")).toBe("shared");
    const out = await p(["pull", job.id.slice(0, 8), "../../x", join(scratch("pulled"), "x")], { env, cwd });
    expect(out.code).toBe(64);
    expect(out.stderr).toContain("outside the job's work dir");
  });

  test("git repo: what git does not ignore, .git kept, spaces and unicode intact", async () => {
    const cwd = scratch("repo");
    const files: Record<string, string> = {
      ".gitignore": "*.log\nnode_modules/\n!keep.log\n",
      "src/main.c": "int main;",
      "debug.log": "x",
      "keep.log": "kept",
      "node_modules/big/index.js": "x",
      "lib/.gitignore": "generated/\n",
      "lib/generated/out.js": "x",
      "lib/ok.js": "ok",
      "dir with space/ünï ✓.txt": "unicode",
    };
    for (const [f, body] of Object.entries(files)) {
      mkdirSync(join(cwd, f, ".."), { recursive: true });
      writeFileSync(join(cwd, f), body);
    }
    commitAll(cwd, "first");
    const r = await p(
      [
        "--",
        "git rev-parse --is-inside-work-tree && git log --format=%s && find . -path ./.git -prune -o -type f -print | sort",
      ],
      { env, cwd },
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        "true",
        "first",
        "./.gitignore",
        "./dir with space/ünï ✓.txt",
        "./keep.log",
        "./lib/.gitignore",
        "./lib/ok.js",
        "./src/main.c",
        "",
      ].join("\n"),
    );
  });

  test("plain directory: nested .gitignore files honoured", async () => {
    const cwd = scratch("plain");
    mkdirSync(join(cwd, "sub/tmp"), { recursive: true });
    writeFileSync(join(cwd, ".gitignore"), "*.o\n");
    writeFileSync(join(cwd, "a.c"), "");
    writeFileSync(join(cwd, "a.o"), "");
    writeFileSync(join(cwd, "sub/.gitignore"), "tmp/\n");
    writeFileSync(join(cwd, "sub/tmp/x"), "");
    writeFileSync(join(cwd, "sub/b.c"), "");
    const r = await p(["--", "find . -type f | sort"], { env, cwd });
    expect(r.stdout).toBe("./.gitignore\n./a.c\n./sub/.gitignore\n./sub/b.c\n");
  });

  test("a client directory with spaces and unicode in its path", async () => {
    const cwd = join(scratch("path"), "my prøject ✓");
    mkdirSync(cwd);
    writeFileSync(join(cwd, "it's here.txt"), "yes");
    const r = await p(["--", 'cat "it\'s here.txt"'], { env, cwd });
    expect(r.stdout).toBe("yes");
    expect(lastJob(env)!.cwd).toBe(cwd);
  });

  test("every job gets its own work dir", async () => {
    const cwd = scratch("iso");
    writeFileSync(join(cwd, "f"), "original");
    await p(["--", "echo changed > f; rm -f f2"], { env, cwd });
    const r = await p(["--", "cat f"], { env, cwd });
    expect(r.stdout).toBe("original");
  });

  test("re-runs send only what changed, yet each job sees exactly the tree as it is here", async () => {
    const cwd = scratch("rerun");
    mkdirSync(join(cwd, "src"));
    for (let i = 0; i < 50; i++) writeFileSync(join(cwd, "src", `f${i}.c`), `int f${i};\n`.repeat(200));
    writeFileSync(join(cwd, ".gitignore"), "out/\n");
    // the first job changes, adds and deletes files in its work dir, and writes ignored output
    const first = await p(
      [
        "--",
        "echo edited >> src/f1.c; rm src/f2.c; echo new > src/new.c; mkdir out; echo built > out/bin; ls src | wc -l",
      ],
      { env, cwd },
    );
    expect(first.stdout).toBe("50\n");
    // meanwhile here: one file edited, one deleted, one added, one newly ignored
    writeFileSync(join(cwd, "src", "f3.c"), "edited here\n");
    rmSync(join(cwd, "src", "f4.c"));
    writeFileSync(join(cwd, "src", "added.c"), "added\n");
    writeFileSync(join(cwd, ".gitignore"), "out/\nsrc/f5.c\n");
    // the worker's mirror of this directory (the only one holding src/f10.c): rsync rewrites a
    // file it sends, so an unchanged file keeping its inode shows it was not sent again
    const mirror = `~/${layout.MIRRORS_DIR}/${"?".repeat(24)}`; // not its spare, <hash>.spare
    const inodes = () => asWorker("p-w1", `stat -c %i ${mirror}/src/f10.c ${mirror}/src/f3.c`).trim().split("\n");
    mirrorsSettled("p-w1"); // the first run's mirror is made again in the background
    const [f10, f3, more] = inodes();
    expect(f10).toMatch(/^\d+$/);
    expect(more).toBeUndefined();
    const before = jobIds();
    const second = await p(
      [
        "--",
        "cat src/f3.c; grep -c edited src/f1.c; ls src | wc -l; for f in src/f2.c src/new.c src/f4.c src/f5.c out; do [ -e $f ] && echo has $f; done; true",
      ],
      { env, cwd },
    );
    expect(second.stdout).toBe("edited here\n0\n49\nhas src/f2.c\n");
    const [f10After, f3After] = inodes();
    expect(f10After).toBe(f10!);
    expect(f3After).not.toBe(f3!);
    const id = newJobId(before);
    expect(asWorker("p-w1", `cat ~/${layout.WORKDIRS_DIR}/${id}/src/f3.c`)).toBe("edited here\n");
  });

  test("a warm run's work dir is the tree here exactly, whatever changed: by rsync's log, or by a scan after a sync that never finished", async () => {
    const cwd = scratch("level");
    const mirror = `~/${mirrorDir({ uid: process.getuid!(), host: hostname(), path: cwd })}`;
    // each sync's kind, as rsync here was started: the whole tree, or only what changed
    const env = syncKinds("level");
    const put = (rel: string, text: string) => {
      mkdirSync(join(cwd, rel, ".."), { recursive: true });
      writeFileSync(join(cwd, rel), text);
    };
    put("a.txt", "a");
    put("tree/deep/x.txt", "x");
    put("tree/deep/y.txt", "y");
    put("swap/inner.txt", "inner");
    put("gone.txt", "gone");
    put("mode.sh", "#!/bin/sh\n");
    put("flip", "a file, then a directory");
    // what a tree holds, as find sees it: type, mode, size, mtime to the nanosecond, link target
    const format = "%y %m %s %T@ %p -> %l\\n";
    const listing = (dir: string) => asWorker("p-w1", `cd ${dir} && find . -printf '${format}' | sort`);
    const here = () => Bun.spawnSync(["sh", "-c", `cd ${cwd} && find . -printf '${format}' | sort`]).stdout.toString();
    // each job's work dir is the tree here exactly (the mirror may be made again meanwhile)
    const runAndCompare = async () => {
      mirrorsSettled("p-w1");
      const before = jobIds();
      expect((await p(["--", "true"], { env, cwd })).code).toBe(0);
      const id = newJobId(before);
      const listed = listing(`~/${layout.WORKDIRS_DIR}/${id}`);
      expect(listed).toBe(here());
      return listed;
    };
    await runAndCompare(); // the first run: the mirror is made
    await runAndCompare(); // the second: the spare made meanwhile is used
    // a file edited, one deleted, a tree deleted, a directory replaced by a file, a file by a
    // link, a mode changed, a new directory with files, a name with a newline in it
    put("a.txt", "a, edited");
    rmSync(join(cwd, "gone.txt"));
    rmSync(join(cwd, "tree"), { recursive: true });
    rmSync(join(cwd, "swap"), { recursive: true });
    put("swap", "now a file");
    Bun.spawnSync(["sh", "-c", `cd ${cwd} && chmod 755 mode.sh && rm -f link && ln -s a.txt link`]);
    put("new/dir/n.txt", "n");
    rmSync(join(cwd, "flip"));
    put("flip/inside.txt", "inside");
    const listed = await runAndCompare();
    expect(listed).toMatch(/^f 644 6 [\d.]+ \.\/flip\/inside\.txt -> $/m);
    expect(listed).toContain("./swap -> \n");
    expect(listed).not.toContain("./tree");
    expect(listed).toMatch(/^l \d+ \d+ [\d.]+ \.\/link -> a\.txt$/m);
    expect(listed).toMatch(/^f 755 .* \.\/mode\.sh -> $/m);
    // one file edited: by hand; many, or a directory's mode: by rsync, from the same log
    put("a.txt", "once more");
    await runAndCompare();
    // the log alone says what to level: nothing else is looked at (a file planted in the
    // spare, which a whole scan would delete, is still there in the next job's work dir)
    for (const edit of ["by the log", "by the log, twice"]) {
      mirrorsSettled("p-w1");
      asWorker("p-w1", `echo planted > ${mirror}${layout.SUFFIX.spare}/planted.txt`);
      put("a.txt", edit);
      const before = jobIds();
      expect((await p(["--", "cat a.txt planted.txt"], { env, cwd })).stdout).toBe(`${edit}planted\n`);
      expect(asWorker("p-w1", `ls ~/${layout.WORKDIRS_DIR}/${newJobId(before)}`)).toContain("planted.txt");
    }
    await runAndCompare();
    // a file deleted, alone
    rmSync(join(cwd, "mode.sh"));
    expect(await runAndCompare()).not.toContain("mode.sh");
    for (let i = 0; i < 30; i++) put(`new/dir/m${i}.txt`, `m${i}`);
    await runAndCompare();
    Bun.spawnSync(["chmod", "700", join(cwd, "new")]);
    expect(await runAndCompare()).toMatch(/^d 700 \d+ [\d.]+ \.\/new -> $/m);
    put("new\nline.txt", "odd name");
    put("new/dir/n.txt", "n2");
    const odd = await runAndCompare();
    // (the name's newline splits its line of the listing)
    expect(odd.split("\n")).toContain("line.txt -> ");
    // a sync cut short leaves its mark: the next one levels the spare by a whole scan
    put("a.txt", "after a cut");
    asWorker("p-w1", `touch ${mirror}${layout.SUFFIX.syncing}`);
    await runAndCompare();
    expect(asWorker("p-w1", `ls ${mirror}${layout.SUFFIX.syncing} 2>&1`)).toContain("No such file");
    // the first sync, and the one after the first run (whose mirror became its work dir),
    // were whole; every later one looked only at what changed, but the one after the cut:
    // the worker refused it, and it was made whole
    expect(readFileSync(env.P_SYNC_KINDS!, "utf8")).toBe(`whole\nwhole\n${"only\n".repeat(9)}only\nwhole\n`);
  });

  test("a sync of only what changed runs only on the mirror the last one left: else it is refused and made whole", async () => {
    const cwd = scratch("refused");
    const env = syncKinds("refused");
    const mirror = `~/${mirrorDir({ uid: process.getuid!(), host: hostname(), path: cwd })}`;
    for (let i = 0; i < 20; i++) writeFileSync(join(cwd, `f${i}.txt`), `f${i}`);
    mkdirSync(join(cwd, "sub"));
    writeFileSync(join(cwd, "sub", "s.txt"), "s");
    // (what changed within RACY_MS of a sync counts as changed at the next: sub must be older)
    await Bun.sleep(RACY_MS + 100);
    const run = async (cmd: string) => {
      mirrorsSettled("p-w1");
      const r = await p(["--", cmd], { env, cwd });
      expect(r.code).toBe(0);
      return r.stdout;
    };
    await run("true");
    await run("true");
    // the mirror swept away (by hand, its mark left behind): refused, and the whole tree
    // sent again (to a new mirror, which the job then gets: the next sync is whole too)
    mirrorsSettled("p-w1");
    asWorker("p-w1", `rm -rf ${mirror} ${mirror}${layout.SUFFIX.spare}`);
    writeFileSync(join(cwd, "f0.txt"), "edited");
    expect(await run("cat f0.txt; ls | wc -l")).toBe("edited21\n");
    // the mirror changed by another's sync (its mark another's): a file planted in a
    // directory no change here touches is gone from the next job, which a whole sync deletes
    await run("true");
    mirrorsSettled("p-w1");
    asWorker(
      "p-w1",
      `for d in ${mirror} ${mirror}${layout.SUFFIX.spare}; do echo planted > $d/sub/planted; done && ` +
        `echo someone-elses-mark > ${mirror}${layout.SUFFIX.token}`,
    );
    writeFileSync(join(cwd, "f1.txt"), "edited");
    expect(await run("cat f1.txt; ls sub")).toBe("editeds.txt\n");
    expect(readFileSync(env.P_SYNC_KINDS!, "utf8")).toBe("whole\nwhole\nonly\nwhole\nwhole\nonly\nwhole\n");
    // and with its mark there, a change is all a sync looks at: what is planted (in the
    // mirror and in the spare the next work dir is made of) stays
    mirrorsSettled("p-w1");
    asWorker("p-w1", `for d in ${mirror} ${mirror}${layout.SUFFIX.spare}; do echo planted > $d/sub/planted; done`);
    writeFileSync(join(cwd, "f2.txt"), "edited");
    expect((await p(["--", "cat f2.txt; ls sub"], { env, cwd })).stdout).toBe("editedplanted\ns.txt\n");
  });

  test("a new checkout of a repository the worker holds takes its files from there; another repository's, never", async () => {
    const base = scratch("family");
    const repo = join(base, "repo");
    mkdirSync(repo);
    for (let i = 0; i < 60; i++) writeFileSync(join(repo, `f${i}.bin`), randomBytes(50_000));
    commitAll(repo, "one");
    const sums = "md5sum f*.bin | md5sum";
    const local = (cwd: string) => Bun.spawnSync(["sh", "-c", sums], { cwd }).stdout.toString();
    // "timings: ... sync 120 ms (12 files, 3.4 KB sent) ...": what crossed the network
    const sentKB = (stderr: string) => {
      const m = /\(([\d,]+) files?, ([\d.]+) (B|KB|MB) sent\)/.exec(stderr);
      if (!m) throw new Error(`no timings in ${stderr}`);
      return Number(m[2]) * { B: 1 / 1024, KB: 1, MB: 1024 }[m[3] as "B" | "KB" | "MB"];
    };
    const first = await p(["-v", "--", sums], { env, cwd: repo });
    expect(first.stdout).toBe(local(repo));
    expect(sentKB(first.stderr)).toBeGreaterThan(2500);
    mirrorsSettled("p-w1");

    // a worktree of it: a new directory, new mtimes, the same files, and not the file the
    // repository's directory holds beside them. Its mirror is the repository's spare, renamed:
    // the job's files are the spare's own (their inodes), nothing copied, and what is not the
    // worktree's is gone
    const mirrorOf = (path: string) => `~/${mirrorDir({ uid: process.getuid!(), host: hostname(), path })}`;
    writeFileSync(join(repo, "only-here.txt"), "repo's\n");
    expect((await p(["--", "true"], { env, cwd: repo })).code).toBe(0);
    mirrorsSettled("p-w1");
    const inode = (path: string) => asWorker("p-w1", `stat -c %i ${path}`).trim();
    const spareInode = inode(`${mirrorOf(repo)}.spare/f0.bin`);
    expect(spareInode).toMatch(/^\d+$/);
    const wt = join(base, "wt");
    gitIn(repo, "worktree", "add", "-q", wt);
    const again = await p(["-v", "--", `${sums}; ls only-here.txt 2>&1`], { env, cwd: wt });
    expect(again.stdout).toBe(`${local(wt)}ls: cannot access 'only-here.txt': No such file or directory\n`);
    expect(sentKB(again.stderr)).toBeLessThan(300);
    expect(inode(`~/.p/workdirs/${lastJob(env)!.id}/f0.bin`)).toBe(spareInode);
    mirrorsSettled("p-w1");

    // a seeded sync cut short leaves its mark ("seeded"): what its mirror and spare hold was
    // never vouched for by checksum, so the next sync (no first: by size and mtime) starts
    // without them. A file forged there, with the size and mtime of the real one, never
    // reaches a job.
    asWorker(
      "p-w1",
      `set -e; m=${mirrorOf(wt)}; echo seeded >$m.syncing; for d in $m $m.spare; do ` +
        `touch -r $d/f5.bin $m.ref; head -c 50000 /dev/zero >$d/f5.bin; touch -r $m.ref $d/f5.bin; done; rm $m.ref`,
    );
    const cut = await p(["--", "md5sum f5.bin"], { env, cwd: wt });
    expect(cut.stdout).toBe(Bun.spawnSync(["md5sum", "f5.bin"], { cwd: wt }).stdout.toString());
    mirrorsSettled("p-w1");

    // the worktree's mirror gone while its jobs' records stay (swept, or its ~/.p wiped): the
    // next sync is no first, compares by size and mtime, and so takes nothing from another
    // mirror; a file made to look like the other mirror's copy arrives as it is here
    asWorker("p-w1", `rm -rf ${mirrorOf(wt)}*`);
    writeFileSync(join(wt, "f3.bin"), randomBytes(50_000));
    Bun.spawnSync(["touch", "-r", join(repo, "f3.bin"), join(wt, "f3.bin")]);
    const wiped = await p(["--", `${sums}; md5sum f3.bin`], { env, cwd: wt });
    expect(wiped.stdout).toBe(Bun.spawnSync(["sh", "-c", `${sums}; md5sum f3.bin`], { cwd: wt }).stdout.toString());
    mirrorsSettled("p-w1");

    // a clone with one file changed, its size and mtime made those of the worker's copy:
    // only its content tells, and the job gets the clone's content
    const clone = join(base, "clone");
    gitIn(base, "clone", "-q", repo, clone);
    writeFileSync(join(clone, "f7.bin"), randomBytes(50_000));
    Bun.spawnSync(["touch", "-r", join(repo, "f7.bin"), join(clone, "f7.bin")]);
    const cloned = await p(["-v", "--", `${sums}; md5sum f7.bin`], { env, cwd: clone });
    expect(cloned.stdout).toBe(Bun.spawnSync(["sh", "-c", `${sums}; md5sum f7.bin`], { cwd: clone }).stdout.toString());
    expect(sentKB(cloned.stderr)).toBeGreaterThan(45);
    expect(sentKB(cloned.stderr)).toBeLessThan(400);
    mirrorsSettled("p-w1");

    // another repository holding the very same files: nothing of the first's mirror reaches it
    const other = join(base, "other");
    mkdirSync(other);
    Bun.spawnSync(["sh", "-c", `cp -p ${repo}/*.bin ${other}/`]);
    commitAll(other, "other");
    const theirs = await p(["-v", "--", sums], { env, cwd: other });
    expect(theirs.stdout).toBe(local(other));
    expect(sentKB(theirs.stderr)).toBeGreaterThan(2500);
  });

  test("a sync for a new job never changes the tree of one already running", async () => {
    const cwd = scratch("twin");
    writeFileSync(join(cwd, "which"), "a");
    const before = jobIds();
    const a = p(["--", "sleep 2; cat which"], { env, cwd });
    await waitFor(() => [...jobIds()].some((id) => !before.has(id) && existsSync(workDirOf("p-w1", id))));
    // same size, same second: only the sub-second mtime tells rsync it changed
    const aMs = statSync(join(cwd, "which")).mtimeMs;
    writeFileSync(join(cwd, "which"), "b");
    const sameSecond = new Date(Math.floor(aMs / 1000) * 1000 + (Math.floor(aMs) % 1000 === 900 ? 100 : 900));
    utimesSync(join(cwd, "which"), sameSecond, sameSecond);
    const b = await p(["--", "cat which"], { env, cwd });
    const ra = await a; // wait for both before judging, so no p is left behind
    expect([ra.stdout, b.stdout]).toEqual(["a", "b"]);
  });

  // A first run renames the freshly synced mirror into the job's work dir and makes the
  // mirror again from a copy of it, while the job runs. A worker whose background copies
  // (niced: cp, rsync) dawdle makes that copy read the job's changes: a same-size rewrite
  // with its mtime put back, which rsync's size-and-mtime check cannot see, must still
  // never reach the next job; and a file the job makes unreadable at once (which fails a
  // copy of the whole) must not cost the mirror, nor directories it makes read-only leave
  // the copy behind. Says what the first job printed, what the next sync sent, and how
  // many times the background's cp set out to copy the job's work dir.
  async function rewriteOnFirstRun(name: string, ns: string) {
    const calls = `/tmp/p-${name}.cp.log`;
    rmSync(calls, { force: true });
    const mounts = ["cp", "rsync"].map((cmd) => {
      const log = cmd === "cp" ? `echo "$*" >>${calls}; ` : "";
      return wrappedTool(w, name, cmd, (real) => `[ "$(nice)" = 0 ] || { ${log}sleep 1.5; }\nexec ${real} "$@"`);
    });
    const odd = await oddWorker(w, name, "p-w2", `${mounts.join(" && ")}${ns}`);
    try {
      const cwd = scratch(name);
      writeFileSync(join(cwd, "a.txt"), "good");
      writeFileSync(join(cwd, "b.txt"), "kept");
      const mirror = `~/${mirrorDir({ uid: process.getuid!(), host: hostname(), path: cwd })}`;
      const first = await p(
        [
          "--",
          `[ -d ${mirror} ] && echo mirror || echo none; mkdir out && echo secret >out/key && chmod 000 out/key; ` +
            "mkdir -p ro/x && echo f >ro/x/f && chmod -R a-w ro; " +
            `sleep 2; touch -r a.txt ../t.$$; printf BAD! > a.txt; touch -r ../t.$$ a.txt; rm ../t.$$; cat a.txt`,
        ],
        { env: odd.env, cwd },
      );
      expect(first.code).toBe(0);
      mirrorsSettled("p-w2");
      const second = await p(["-v", "--", "cat a.txt b.txt"], { env: odd.env, cwd });
      expect(second.stdout).toBe("goodkept");
      // (what the copies left goes, the job's read-only directories too)
      mirrorsSettled("p-w2");
      expect(asWorker("p-w2", `ls -a ~/${layout.MIRRORS_DIR}`)).not.toMatch(/\.part$/m);
      const workCopies = readFileSync(calls, "utf8")
        .split("\n")
        .filter((l) => new RegExp(`${layout.WORKDIRS_DIR}/[0-9a-f-]{36}/\\. `).test(l)).length;
      return {
        first: first.stdout,
        sent: /timings: .*sync \d+ ms \((\d+) files?, /.exec(second.stderr)?.[1],
        workCopies,
      };
    } finally {
      odd.down();
      rmSync(calls, { force: true });
    }
  }

  test("a first run starts its job on the synced tree itself, and what the job rewrites never reaches the next", async () => {
    // no mirror while the job starts: it was renamed into the work dir, not copied first;
    // the mirror made again lacks only the file the job rewrote, which the next sync sends
    // (the copy of the work dir that failed on the unreadable file was not made twice)
    expect(await rewriteOnFirstRun("firstrun", "")).toEqual({ first: "none\nBAD!", sent: "1", workCopies: 1 });
  });

  test("a worker whose find lacks -cnewer copies the mirror for a first run, just as isolated", async () => {
    const fake = wrappedTool(
      w,
      "nocnewer-find",
      "find",
      (real) =>
        `for a; do [ "$a" = -cnewer ] && { echo "find: unknown predicate -cnewer" >&2; exit 1; }; done\nexec ${real} "$@"`,
    );
    // (the mirror is as the first sync left it: the next sends nothing)
    expect(await rewriteOnFirstRun("nocnewer", ` && ${fake}`)).toEqual({
      first: "mirror\nBAD!",
      sent: "0",
      workCopies: 0,
    });
  });

  test("a group's syncs of one directory to one worker follow one another, each over what the one before left: none refused, none whole", async () => {
    const cwd = scratch("chain");
    const env = syncKinds("chain");
    writeFileSync(join(cwd, "a.txt"), "one");
    for (const _ of [1, 2]) {
      mirrorsSettled("p-w1");
      expect((await p(["--", "true"], { env, cwd })).code).toBe(0);
    }
    writeFileSync(join(cwd, "a.txt"), "two");
    mirrorsSettled("p-w1");
    const r = await p(["--on", "p-w1", "--each", "K=1,2,3", "--", "echo $K $(cat a.txt)"], { env, cwd });
    expect(r.code).toBe(0);
    const lines = r.stdout
      .trimEnd()
      .split("\n")
      .map((l) => l.replace(/^\[[^\]]*\] /, ""));
    expect(lines.sort()).toEqual(["1 two", "2 two", "3 two"]);
    // none refused, and none whole: the first took the spare; the second (its spare not
    // made again yet, and the third to follow) a copy of the mirror, which it left as the
    // first had, so the third sent only what changed since (nothing)
    expect(readFileSync(env.P_SYNC_KINDS!, "utf8")).toBe("whole\nwhole\nonly\nonly\nonly\n");
  });

  test("a sync never waits behind p's background work: it stops it, and finishes what it needs itself", async () => {
    // every copy made in the background (niced) on this worker stops as it starts: a copy
    // that never gets the CPU, as one at the lowest priority may not on a worker its jobs
    // keep busy
    const stall = wrappedTool(w, "stall", "cp", (real) => `[ "$(nice)" = 0 ] || kill -STOP $$\nexec ${real} "$@"`);
    const odd = await oddWorker(w, "stall", "p-w2", stall);
    const stalled = () =>
      asWorker("p-w2", "ps -u p-w2 -o stat=,comm=")
        .split("\n")
        .filter((l) => /^T.* cp$/.test(l)).length;
    const base = scratch("stall");
    const cwd = join(base, "repo");
    mkdirSync(cwd);
    const mirror = `~/${mirrorDir({ uid: process.getuid!(), host: hostname(), path: cwd })}`;
    try {
      writeFileSync(join(cwd, "a.txt"), "one ");
      writeFileSync(join(cwd, "b.txt"), "b");
      commitAll(cwd, "one");
      // a first run: its mirror is moved into its work dir, and the copy that begins making
      // it again stops
      expect((await p(["--", "cat *.txt"], { env: odd.env, cwd })).stdout).toBe("one b");
      await waitFor(() => stalled() === 1, 20_000);
      const steps = [
        // the second stops that refill and makes the mirror again itself; its spare's copy stops
        [() => writeFileSync(join(cwd, "a.txt"), "two "), "two b"],
        // the third stops that copy and completes the spare itself; so does the fourth
        [() => rmSync(join(cwd, "b.txt")), "two "],
        [() => writeFileSync(join(cwd, "c.txt"), "c"), "two c"],
      ] as const;
      for (const [change, want] of steps) {
        change();
        const t0 = Date.now();
        const proc = spawnP(["--", "cat *.txt"], { env: odd.env, cwd });
        const timer = setTimeout(() => proc.kill(), 15_000);
        const out = await new Response(proc.stdout).text();
        clearTimeout(timer);
        expect(await proc.exited).toBe(0);
        expect(out).toBe(want);
        expect(Date.now() - t0).toBeLessThan(10_000);
        // what it stopped is gone, and the next spare's copy stops in its turn
        await waitFor(() => stalled() === 1, 20_000);
        // the mirror stays the tree here, whole
        expect(asWorker("p-w2", `cd ${mirror} && cat *.txt`)).toBe(want);
      }
      // a new checkout's first sync starts from that mirror, whose spare's copy it stops
      // too (it would wait 10 s for it, then go without); its own mirror's refill stops
      const wt = join(base, "wt");
      gitIn(cwd, "worktree", "add", "-q", wt);
      const t0 = Date.now();
      const seeded = await p(["--", "cat *.txt"], { env: odd.env, cwd: wt });
      expect(seeded.stdout).toBe("one b");
      expect(Date.now() - t0).toBeLessThan(8000);
      await waitFor(() => stalled() === 1, 20_000);
    } finally {
      Bun.spawnSync(["pkill", "-KILL", "-u", "p-w2", "-x", "cp"]);
      odd.down();
    }
  });

  test("the copy that makes a mirror's next spare gives way to jobs: nice, and its session's scheduler group too", async () => {
    // (where Linux groups each session's processes for the scheduler, a nice process still
    // gets a share as large as a job's session: the group's own nice must be raised)
    if (!existsSync("/proc/self/autogroup")) return;
    const cwd = scratch("nice");
    writeFileSync(join(cwd, "a.txt"), "a");
    for (const _ of [1, 2]) {
      mirrorsSettled("p-w1");
      expect((await p(["--", "true"], { env, cwd })).code).toBe(0);
    }
    mirrorsSettled("p-w1");
    // a warm run: its spare is copied once the job has run 2 s, by p's background work
    expect((await p(["-d", "--", "sleep 3"], { env, cwd })).code).toBe(0);
    const background = () =>
      asWorker(
        "p-w1",
        `for p in $(pgrep -u "$(id -u)" -f "[p]-mirror"); do cat /proc/$p/autogroup; ps -o ni= -p $p; done`,
      );
    await waitFor(() => /nice 19/.test(background()), 2000);
    expect(background()).toMatch(/^\/autogroup-\d+ nice 19\n\s*10$/m);
    mirrorsSettled("p-w1");
  });

  test("-n/--no-sync sends nothing", async () => {
    const cwd = scratch("nosync");
    writeFileSync(join(cwd, "local-only"), "x");
    for (const flag of ["-n", "--no-sync"]) {
      const r = await p([flag, "--", "ls -A | wc -l"], { env, cwd });
      expect(r.stdout.trim()).toBe("0");
      expect(lastJob(env)!.synced).toBe(false);
    }
  });
});

describe("detach and survival", () => {
  test("-d prints the job id on stdout and returns while the job runs on", async () => {
    const t0 = Date.now();
    const r = await p(["-d", "--", "sleep 2; echo finished"], { env });
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(r.code).toBe(0);
    const id = r.stdout.trim();
    expect(id).toMatch(UUID);
    expect(existsSync(join(jobDirOf("p-w1", id), "exitcode"))).toBe(false);
    await waitFor(() => existsSync(join(jobDirOf("p-w1", id), "exitcode")));
    expect(readFileSync(join(jobDirOf("p-w1", id), "output.log"), "utf8")).toBe("finished\n");
  });

  test("Ctrl+C detaches with a hint; the job keeps running to its end", async () => {
    const before = jobIds();
    const proc = spawnP(["--", "echo started; sleep 2; echo survived"], { env });
    const reader = proc.stdout.getReader();
    await reader.read();
    proc.kill("SIGINT");
    expect(await proc.exited).toBe(130);
    const stderr = await new Response(proc.stderr).text();
    const id = newJobId(before);
    expect(stderr).toContain(`p logs -f ${id.slice(0, 8)}`);
    await waitFor(() => existsSync(join(jobDirOf("p-w1", id), "exitcode")));
    expect(readFileSync(join(jobDirOf("p-w1", id), "output.log"), "utf8")).toBe("started\nsurvived\n");
    expect(readFileSync(join(jobDirOf("p-w1", id), "exitcode"), "utf8")).toBe("0\n");
  });

  test("the job survives the client being killed outright", async () => {
    const before = jobIds();
    const proc = spawnP(["--", "echo a; sleep 2; echo b"], { env });
    await proc.stdout.getReader().read();
    proc.kill("SIGKILL");
    await proc.exited;
    const id = newJobId(before);
    await waitFor(() => existsSync(join(jobDirOf("p-w1", id), "exitcode")));
    expect(readFileSync(join(jobDirOf("p-w1", id), "output.log"), "utf8")).toBe("a\nb\n");
  });

  test("no stray processes are left on the worker after a job ends", async () => {
    await p(["--", "echo done"], { env });
    // sshd's per-connection processes take a moment to go; nothing else may stay
    const others = () =>
      asWorker("p-w1", "ps -u p-w1 -o comm=")
        .split("\n")
        .filter((c) => c && !["ps", "sh", "su"].includes(c));
    await waitFor(() => others().length === 0, 5000).catch(() => {});
    expect(others()).toEqual([]);
  });
});
