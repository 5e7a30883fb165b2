import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  asWorker,
  commitAll,
  gitIn,
  layout,
  mirrorsSettled,
  oddWorker,
  p,
  pToHead,
  scratch,
  spawnP,
  useWorkers,
  type Workers,
  wrappedTool,
} from "./_harness.ts";

// Many workers at once, through the compiled p and real sshd: groups (--on), sweeps
// (--each), placement (--any) and every run of a commit.
setDefaultTimeout(90_000);

let env: Record<string, string>;
let w: Workers;
// (dead: a worker whose sshd is not there)
useWorkers([["p-w1"], ["p-w2"], ["p-w1@127.0.0.1:1", "-n", "dead", "--no-check"]], (started) => {
  w = started;
  env = started.env;
});

interface Job {
  id: string;
  worker: string;
  status: string;
  exit_code: number | null;
  started_at: number;
  run_started_at: number;
  ended_at: number;
  duration_s: number;
  group?: string;
  each?: Record<string, string>;
}
const lsJson = async (...args: string[]) => JSON.parse((await p(["ls", "--json", ...args], { env })).stdout) as Job[];

describe("--on", () => {
  test("one job per worker at once: every line whole behind its worker, a summary, the first failure's code, -v's timings of each", async () => {
    // heavy output from both, long lines written in pieces: no line may mix two jobs' bytes
    const command =
      'me=$(whoami); for i in $(seq 3000); do printf "%s " "$me"; printf "line %s %0100d\\n" "$i" 0; done; ' +
      '[ "$me" = p-w2 ] && exit 3; exit 0';
    const r = await p(["-v", "--on", "p-w1,p-w2", "--", command], { env });
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(6000);
    const seen: Record<string, number> = { "p-w1": 0, "p-w2": 0 };
    for (const line of lines) {
      const m = /^\[(p-w[12])\] (p-w[12]) line (\d+) 0{100}$/.exec(line);
      expect(m).not.toBeNull();
      expect(m![2]).toBe(m![1]!);
      // each worker's lines in their own order
      expect(Number(m![3])).toBe(++seen[m![1]!]!);
    }
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/JOB +STATUS +EXIT +DURATION\np-w1 +done +0 +\S+\np-w2 +done +3 +\S+\n/);
    expect(r.stderr).toMatch(/group [0-9a-f]{8}: 1 of 2 succeeded/);
    // each job's phases, behind its worker, once it has ended
    for (const w of ["p-w1", "p-w2"])
      expect(r.stderr).toMatch(
        new RegExp(
          `^\\[${w}\\] timings: resolve \\d+ ms, sync \\d+ ms \\(\\d+ files?, [^)]+ sent\\), launch \\d+ ms, first output \\d+ ms$`,
          "m",
        ),
      );
  });

  test("the exit code is the first failure's in --on order, not the first to end", async () => {
    const r = await p(["--on", "p-w2,p-w1", "--", '[ "$(whoami)" = p-w1 ] && exit 4; sleep 1; exit 5'], { env });
    expect(r.code).toBe(5);
    // and a group runs again as a group, on its own workers, in its order
    const { group } = (await lsJson("-a")).at(-1)!;
    const again = await p(["rerun", group!.slice(0, 8)], { env });
    expect(again.code).toBe(5);
    expect(again.stderr).toContain(`Re-running group ${group!.slice(0, 8)} (2 jobs:`);
    const rerun = (await lsJson("-a")).slice(-2);
    expect(rerun.map((j) => [j.worker, j.exit_code])).toEqual([
      ["p-w2", 5],
      ["p-w1", 4],
    ]);
    expect(rerun[0]!.group).not.toBe(group);
  });

  test("an unreachable worker never stops the others: it is recorded failed, with why, and the code says so", async () => {
    const r = await p(["--on", "p-w1,dead", "--", "echo ran"], { env });
    expect(r.stdout).toBe("[p-w1] ran\n");
    expect(r.stderr).toMatch(/\[dead\] worker dead is unreachable/);
    expect(r.code).toBe(255);
    const group = (await lsJson("-a")).filter((j) => j.group).slice(-2);
    expect(group.map((j) => [j.worker, j.status])).toEqual([
      ["p-w1", "done"],
      ["dead", "failed"],
    ]);
  });

  test("-d prints the group; its id works for ls, logs, wait, stop and rm", async () => {
    const r = await p(["--on", "p-w1,p-w2", "-d", "--json", "--", "echo hi from $(whoami); sleep 30"], { env });
    expect(r.code).toBe(0);
    const { group, jobs } = JSON.parse(r.stdout) as { group: string; jobs: Job[] };
    expect(jobs.map((j) => j.worker)).toEqual(["p-w1", "p-w2"]);
    const short = group.slice(0, 8);
    expect((await p(["ls"], { env })).stdout).toMatch(new RegExp(`GROUP[^\\n]*\\n(.*${short}.*\\n){2}`));
    // named, it is shown alone, with a tally
    const one = await p(["ls", short], { env });
    expect(one.stdout).toMatch(
      new RegExp(`^ID[^\\n]*\\n(\\S+ +p-w[12] +${short} .*running.*\\n){2}2 runs: 0 succeeded, 2 not ended\\n$`),
    );
    await Bun.sleep(1000);
    const logs = await p(["logs", short], { env });
    expect(logs.stdout).toBe("[p-w1] hi from p-w1\n[p-w2] hi from p-w2\n");
    const stop = await p(["stop", short], { env });
    expect(stop.stdout).toMatch(/^Stopped job [0-9a-f]{8}\nStopped job [0-9a-f]{8}\n/);
    const waited = await p(["wait", short, "--json"], { env });
    expect(JSON.parse(waited.stdout).map((j: Job) => j.status)).toEqual(["stopped", "stopped"]);
    // ended, named it is still shown (no -a), its tally saying how
    expect((await p(["ls", short], { env })).stdout.trimEnd().split("\n").at(-1)).toBe(
      "2 runs: 0 succeeded, 2 failed (p-w1: stopped, p-w2: stopped)",
    );
    expect((await p(["rm", short], { env })).code).toBe(0);
    expect((await lsJson("-a")).filter((j) => j.group === group)).toEqual([]);
  });

  test("Ctrl+C detaches from all: every job runs on to its end, and p says how to follow the group", async () => {
    const proc = spawnP(["--on", "p-w1,p-w2", "--", "echo started; sleep 2; echo survived"], { env });
    // both jobs have started: each one's first line has come
    const reader = proc.stdout.getReader();
    let out = "";
    while (!(out.includes("[p-w1] started") && out.includes("[p-w2] started"))) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`p ended before both jobs started: ${out}`);
      out += new TextDecoder().decode(value);
    }
    proc.kill("SIGINT");
    expect(await proc.exited).toBe(130);
    const stderr = await new Response(proc.stderr).text();
    const jobs = (await lsJson("-a")).filter((j) => j.group && stderr.includes(`p logs -f ${j.group.slice(0, 8)}`));
    expect(jobs.map((j) => j.worker)).toEqual(["p-w1", "p-w2"]);
    // (p wait, here the group's id, sees them to their end)
    const waited = await p(["wait", jobs[0]!.group!.slice(0, 8), "--json"], { env });
    expect(waited.code).toBe(0);
    expect(JSON.parse(waited.stdout).map((j: Job) => [j.status, j.exit_code])).toEqual([
      ["done", 0],
      ["done", 0],
    ]);
    const logs = await p(["logs", jobs[0]!.group!.slice(0, 8)], { env });
    expect(logs.stdout.split("\n").sort()).toEqual(
      ["", "[p-w1] started", "[p-w1] survived", "[p-w2] started", "[p-w2] survived"].sort(),
    );
  });

  test("| head: p ends at once with 141 and says the group keeps running; its logs through head end at once too", async () => {
    // (both jobs start before either prints: a job not yet started when the reader goes is
    // never started, as after Ctrl+C)
    const r = await pToHead(["--on", "p-w1,p-w2", "--", "sleep 2; seq 1 3000000"], { env });
    expect(r.stdout).toMatch(/^\[p-w[12]\] 1\n$/);
    expect(r.code).toBe(141);
    const group = /Output closed; group ([0-9a-f]{8}) keeps running\. Follow it again with: p logs -f \1/.exec(
      r.stderr,
    );
    expect(group).not.toBeNull();
    expect(r.stderr).not.toMatch(/EPIPE|\n\s+at /);
    expect(r.ms).toBeLessThan(15_000);
    const waited = await p(["wait", group![1]!, "--json"], { env });
    expect(JSON.parse(waited.stdout).map((j: Job) => [j.worker, j.status, j.exit_code])).toEqual([
      ["p-w1", "done", 0],
      ["p-w2", "done", 0],
    ]);
    for (const args of [
      ["logs", group![1]!],
      ["logs", "-f", group![1]!],
    ]) {
      const logs = await pToHead(args, { env });
      expect([logs.stdout.replace(/p-w[12]/, "w"), logs.code]).toEqual(["[w] 1\n", 141]);
      expect(logs.stderr).not.toMatch(/EPIPE|\n\s+at /);
    }
  });
});

describe("--each", () => {
  test("a 2x3 sweep over two workers of 2 slots: every combination once, with its values, queued beyond", async () => {
    for (const u of ["p-w1", "p-w2"]) expect((await p(["worker", "set", u, "--slots", "2"], { env })).code).toBe(0);
    try {
      // each job stamps its start and end on its worker
      const stamp = (k: string) => `echo "${k} $(date +%s%N)" >>~/sweep.log`;
      for (const u of ["p-w1", "p-w2"]) rmSync(`/home/${u}/sweep.log`, { force: true });
      const cmd = `${stamp("s")}; echo "$A$B"; sleep 1; ${stamp("e")}`;
      const r = await p(["--on", "p-w1,p-w2", "--each", "A=1,2", "--each", "B=x,y,z", "--", cmd], { env });
      expect(r.code).toBe(0);
      // "queued beyond": at most two at once on each worker of two slots, and two did run at once
      for (const u of ["p-w1", "p-w2"]) {
        const events = readFileSync(`/home/${u}/sweep.log`, "utf8")
          .trim()
          .split("\n")
          .map((l) => l.split(" ") as [string, string])
          .sort((a, b) => (BigInt(a[1]) < BigInt(b[1]) ? -1 : 1));
        let now = 0;
        let most = 0;
        for (const [k] of events) most = Math.max(most, (now += k === "s" ? 1 : -1));
        expect(events).toHaveLength(6);
        expect(most).toBe(2);
      }
      const got = r.stdout.trimEnd().split("\n").sort();
      expect(got).toEqual(
        [
          "p-w1 A=1 B=x] 1x",
          "p-w2 A=1 B=y] 1y",
          "p-w1 A=1 B=z] 1z",
          "p-w2 A=2 B=x] 2x",
          "p-w1 A=2 B=y] 2y",
          "p-w2 A=2 B=z] 2z",
        ]
          .map((l) => `[${l}`)
          .sort(),
      );
      const jobs = (await lsJson("-a")).slice(-6);
      // each one's duration is how long it ran (a second), not how long it waited before: a
      // third job on a worker waited a second for a slot
      for (const j of jobs) {
        expect(j.run_started_at).toBeGreaterThanOrEqual(j.started_at);
        expect(j.duration_s).toBe(j.ended_at - j.run_started_at);
        expect(j.duration_s).toBeLessThanOrEqual(2);
      }
      expect(jobs.filter((j) => j.run_started_at - j.started_at >= 1).length).toBeGreaterThanOrEqual(2);
      // and the summary says as much of each
      const summary = r.stderr.split("\n").filter((l) => /^p-w[12] A=/.test(l));
      expect(summary).toHaveLength(6);
      for (const line of summary) expect(line).toMatch(/\sdone\s+0\s+0:00:0[12]$/);
      expect(jobs.map((j) => j.each)).toEqual([
        { A: "1", B: "x" },
        { A: "1", B: "y" },
        { A: "1", B: "z" },
        { A: "2", B: "x" },
        { A: "2", B: "y" },
        { A: "2", B: "z" },
      ]);
      expect((await p(["ls", "-a"], { env })).stdout).toMatch(/VALUES[^\n]*\n(.*\n)*.*A=2 B=z/);
    } finally {
      for (const u of ["p-w1", "p-w2"]) await p(["worker", "set", u, "--slots", "none"], { env });
    }
  });

  /**
   * A tree of one file, a.txt ("tree"), run once on p-w2 through `env` (an oddWorker's), so
   * that its mirror and the spare are there, and settled.
   */
  async function syncedTree(name: string, env: Record<string, string>) {
    const cwd = scratch(name);
    writeFileSync(join(cwd, "a.txt"), "tree");
    expect((await p(["--", "true"], { env, cwd })).code).toBe(0);
    mirrorsSettled("p-w2");
    return cwd;
  }

  // A sweep's jobs on one worker share one tree: the first takes the mirror's spare, the
  // rest are each copied from the mirror, at once rather than one after another (a
  // copy of a real tree takes a second or more, and so a sweep's jobs on a worker of
  // several slots never ran together). A worker whose copies of a whole tree take 1.5 s
  // each shows which it is.
  test("a sweep's jobs on one worker are copied from its mirror at once, each into a work dir of its own", async () => {
    const slow = wrappedTool(w, "copies", "cp", (real) => `[ "$2" != --reflink=auto ] || sleep 1.5\nexec ${real} "$@"`);
    const odd = await oddWorker(w, "copies", "p-w2", slow);
    try {
      const cwd = await syncedTree("copies", odd.env);
      rmSync("/home/p-w2/copies.log", { force: true });
      const r = await p(
        [
          "-v",
          "--each",
          "K=1,2,3,4",
          "--on",
          "copies",
          "--",
          'echo "$K $(date +%s%N)" >>~/copies.log; echo $K >>a.txt; cat a.txt',
        ],
        { env: odd.env, cwd },
      );
      expect(r.code).toBe(0);
      // each job's own tree: its own line only
      expect(r.stdout.trimEnd().split("\n").sort()).toEqual([
        "[copies K=1] tree1",
        "[copies K=2] tree2",
        "[copies K=3] tree3",
        "[copies K=4] tree4",
      ]);
      // nothing sent for the three copied: the mirror held the tree
      expect(r.stderr.match(/sync \d+ ms \(0 files, /g)).toHaveLength(4);
      const started = Object.fromEntries(
        readFileSync("/home/p-w2/copies.log", "utf8")
          .trim()
          .split("\n")
          .map((l) => l.split(" ").map(Number) as [number, number]),
      );
      // the copies were made together, as many at once as the worker has cores: those jobs
      // started within a second of each other (not 1.5 s apart, as one after another), and
      // any beyond them a copy's time later
      const cores = Math.min(3, Number(Bun.spawnSync(["getconf", "_NPROCESSORS_ONLN"]).stdout.toString()));
      const copied = [started[2]!, started[3]!, started[4]!].sort((a, b) => a - b).map((t) => (t - started[1]!) / 1e6);
      // (each within a second of the first, or a copy's time after the one `cores` before it)
      copied.forEach((t, i) => {
        if (i < cores) expect(t - copied[0]!).toBeLessThan(1000);
        else expect(t - copied[i - cores]!).toBeGreaterThan(1000);
      });
      // and the mirror is as the tree is: the next run's sync sends nothing
      mirrorsSettled("p-w2");
      const again = await p(["-v", "--", "cat a.txt"], { env: odd.env, cwd });
      expect(again.stdout).toBe("tree");
      expect(again.stderr).toMatch(/sync \d+ ms \(0 files, /);
      expect(asWorker("p-w2", "cat ~/copies.log | wc -l").trim()).toBe("4");
    } finally {
      odd.down();
      rmSync("/home/p-w2/copies.log", { force: true });
    }
  });

  // Where the mirror no longer holds the mark the sync before left (another client's sync
  // came between), a job's copy is refused, and its sync sends the tree whole instead. A
  // worker whose every mv takes the marks away shows it.
  test("a sweep's job whose mirror lost its mark meanwhile syncs its tree whole, and runs on it", async () => {
    const fake = wrappedTool(
      w,
      "markless",
      "mv",
      (real) => `${real} "$@" || exit\nrm -f "$HOME"/${layout.MIRRORS_DIR}/*${layout.SUFFIX.token}`,
    );
    const odd = await oddWorker(w, "markless", "p-w2", fake);
    try {
      const cwd = await syncedTree("markless", odd.env);
      const r = await p(["--each", "K=1,2,3", "--on", "markless", "--", "echo $K >>a.txt; cat a.txt"], {
        env: odd.env,
        cwd,
      });
      expect(r.stderr).not.toMatch(/error|stale/i);
      expect(r.code).toBe(0);
      expect(r.stdout.trimEnd().split("\n").sort()).toEqual([
        "[markless K=1] tree1",
        "[markless K=2] tree2",
        "[markless K=3] tree3",
      ]);
      // (and the worker did take the marks away)
      expect(asWorker("p-w2", `ls -a ~/${layout.MIRRORS_DIR}`)).not.toMatch(/\.token$/m);
    } finally {
      odd.down();
    }
  });
});

describe("--any", () => {
  test("picks a reachable worker, skipping the one that does not answer, and says which", async () => {
    const r = await p(["--any", "--", "whoami"], { env });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/--any: skipped dead \(.*\)/);
    expect(r.stderr).toMatch(/--any: p-w[12] \(no slot limit, load \d+\.\d\d per core\)/);
    expect(["p-w1\n", "p-w2\n"]).toContain(r.stdout);
    // of those named only
    const only = await p(["--any", "p-w2,dead", "--", "whoami"], { env });
    expect(only).toMatchObject({ code: 0, stdout: "p-w2\n" });
  });
});

describe("runs of a commit", () => {
  test("p ls --commit lists every run of it, on any worker, with a tally", async () => {
    const dir = scratch("repo");
    writeFileSync(join(dir, "test.sh"), '[ "$(whoami)" = p-w2 ] && exit 2; exit 0\n');
    commitAll(dir, "one");
    const sha = gitIn(dir, "rev-parse", "HEAD").trim();
    expect((await p(["--on", "p-w1,p-w2", "--", "sh test.sh"], { env, cwd: dir })).code).toBe(2);
    const r = await p(["ls", "--commit", sha.slice(0, 7)], { env });
    expect(r.stdout.trimEnd().split("\n").at(-1)).toBe("2 runs: 1 succeeded, 1 failed (p-w2: exit 2)");
    expect(r.stdout.split("\n").filter((l) => l.includes("sh test.sh"))).toHaveLength(2);
  });
});
