// The benchmark: p against what a user would do by hand (rsync + ssh), side by side, on
// a worker behind a 100 Mbit/s link (sshd in a network namespace, veth shaped by tc tbf).
// Prints medians and ratios. Needs root for the namespace and the worker user.
//   bun run bench            (BENCH_RUNS=n for more runs of each measurement;
//                             BENCH_ONLY=sync for the rows of the sync alone,
//                             BENCH_ONLY=group for those of many workers)
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BACKGROUND_SETTLED, peakRss } from "../test/e2e/_harness.ts";

const root = join(import.meta.dir, "..");
const P = join(root, "dist", "p");
const NS = "pbench";
const HOST_IP = "10.77.0.1";
const WORKER_IP = "10.77.0.2";
const USER = "p-bench";
const RATE = process.env.BENCH_RATE ?? "100mbit";
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const ONLY = process.env.BENCH_ONLY;
/** The --on row's runs: a ratio of two short runs on four busy "machines" (see its row). */
const ON_RUNS = Math.max(RUNS, 11);

const sh = (cmd: string, opts: { quiet?: boolean } = {}) => {
  const r = Bun.spawnSync(["bash", "-c", cmd], { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  if (r.exitCode !== 0 && !opts.quiet) throw new Error(`${cmd}: ${r.stderr.toString().trim()}`);
  return r.stdout.toString();
};
const say = (s: string) => process.stderr.write(`\x1b[2m==> ${s}\x1b[0m\n`);

if (process.getuid?.() !== 0) {
  console.error(
    "bench: needs root, for the network namespace and the worker user (run it as root on a scratch machine)",
  );
  process.exit(64);
}

const dir = mkdtempSync(join(tmpdir(), "p-bench-"));
chmodSync(dir, 0o711); // the worker user reads its authorized keys under it
let env: Record<string, string> = {};

function teardown() {
  sh(`pkill -f '${KEEPER}'`, { quiet: true });
  sh(`bash ${root}/test/fixtures/workers.sh down ${dir}/w`, { quiet: true });
  for (const i of GROUP) {
    sh(`bash ${root}/test/fixtures/workers.sh down ${dir}/w${i}`, { quiet: true });
    sh(`ip netns del ${NS}${i}; ip link del pb${i}a`, { quiet: true });
    sh(`pkill -KILL -u ${USER}${i}; sleep 0.1; rm -rf /home/${USER}${i}/.p`, { quiet: true });
  }
  sh(`bash ${root}/test/fixtures/workers.sh down ${dir}/login`, { quiet: true });
  sh(`bash ${root}/test/fixtures/slurm.sh down ${dir}/slurm`, { quiet: true });
  sh(`ip netns del ${NS}`, { quiet: true });
  sh(`ip link del pb0`, { quiet: true });
  sh(`${inWorkerNs} umount /home/${USER}/xfs; rmdir /home/${USER}/xfs`, { quiet: true });
  sh(`rmdir ${CPU_GROUP} ${CPU_GROUP}-client ${GROUP.map((i) => `${CPU_GROUP}${i}`).join(" ")}`, { quiet: true });
  sh(`pkill -KILL -u ${USER}; sleep 0.1; rm -rf /home/${USER}/.p /home/${USER}/hand-* /home/${USER}/blob`, {
    quiet: true,
  });
  rmSync(dir, { recursive: true, force: true });
}
process.on("SIGINT", () => {
  teardown();
  process.exit(130);
});

function setUp() {
  say(`worker ${USER}@${WORKER_IP} behind a ${RATE} link (namespace ${NS})`);
  sh(`ip netns del ${NS} 2>/dev/null; ip link del pb0 2>/dev/null; true`);
  sh(`ip netns add ${NS}`);
  sh(`ip link add pb0 type veth peer name pb1 && ip link set pb1 netns ${NS}`);
  sh(`ip addr add ${HOST_IP}/24 dev pb0 && ip link set pb0 up`);
  sh(`ip netns exec ${NS} sh -c 'ip addr add ${WORKER_IP}/24 dev pb1 && ip link set pb1 up && ip link set lo up'`);
  // shape both directions, as a real link is
  sh(`tc qdisc add dev pb0 root tbf rate ${RATE} burst 64kb latency 50ms`);
  sh(`ip netns exec ${NS} tc qdisc add dev pb1 root tbf rate ${RATE} burst 64kb latency 50ms`);
  mkdirSync(join(dir, "w"));
  sh(`P_WORKER_ADDR=${WORKER_IP} ip netns exec ${NS} bash ${root}/test/fixtures/workers.sh up ${dir}/w ${USER}`);
  env = {
    PATH: process.env.PATH!,
    HOME: process.env.HOME!,
    NO_COLOR: "1",
    XDG_CONFIG_HOME: join(dir, "config"),
    XDG_DATA_HOME: join(dir, "data"),
    XDG_CACHE_HOME: join(dir, "cache"),
    // (p keeps its connections, as it does by default, in a keeper of the benchmark's own)
    XDG_RUNTIME_DIR: join(dir, "run"),
    P_SSH_COMMAND: `ssh -F ${dir}/w/ssh_config`,
  };
  mkdirSync(env.XDG_RUNTIME_DIR!, { mode: 0o700 });
  sh(`${P} worker register ${USER} -n bench`);
  inWorkerNs = `nsenter -t ${readFileSync(join(dir, "w", "sshd.pid"), "utf8").trim()} -m --`;
}

/**
 * Three more workers for --on and --any: each its own user, behind its own shaped link
 * (namespace pbench<i>), reached with the first worker's keys through one ssh config.
 */
const GROUP = [1, 2, 3];
/** How to reach each of them, once they are up (quiet waits for their background work too). */
const groupSsh: string[] = [];
function setUpGroup() {
  say(`workers ${GROUP.map((i) => `${USER}${i}`).join(", ")}, each behind its own ${RATE} link`);
  for (const i of GROUP) {
    const ns = `${NS}${i}`;
    sh(`ip netns del ${ns} 2>/dev/null; ip link del pb${i}a 2>/dev/null; true`);
    sh(`ip netns add ${ns}`);
    sh(`ip link add pb${i}a type veth peer name pb${i}b && ip link set pb${i}b netns ${ns}`);
    sh(`ip addr add 10.77.${i}.1/24 dev pb${i}a && ip link set pb${i}a up`);
    sh(
      `ip netns exec ${ns} sh -c ` +
        `'ip addr add 10.77.${i}.2/24 dev pb${i}b && ip link set pb${i}b up && ip link set lo up'`,
    );
    sh(`tc qdisc add dev pb${i}a root tbf rate ${RATE} burst 64kb latency 50ms`);
    sh(`ip netns exec ${ns} tc qdisc add dev pb${i}b root tbf rate ${RATE} burst 64kb latency 50ms`);
    mkdirSync(join(dir, `w${i}`));
    sh(`cp ${dir}/w/host_key* ${dir}/w/client_key* ${dir}/w${i}/`);
    sh(
      `P_WORKER_ADDR=10.77.${i}.2 ip netns exec ${ns} ` +
        `bash ${root}/test/fixtures/workers.sh up ${dir}/w${i} ${USER}${i}`,
    );
  }
  // one config for all: each instance's host entries, then the first one's defaults
  const parts = ["w", ...GROUP.map((i) => `w${i}`)].map((w) => readFileSync(join(dir, w, "ssh_config"), "utf8"));
  const hosts = parts.map((c) => c.slice(0, c.indexOf("Host *"))).join("");
  const rest = parts[0]!.slice(parts[0]!.indexOf("Host *")).replace(`${dir}/w/known_hosts`, `${dir}/all_known_hosts`);
  writeFileSync(join(dir, "all_ssh_config"), hosts + rest);
  sh(
    `cat ${["w", ...GROUP.map((i) => `w${i}`)].map((w) => `${dir}/${w}/known_hosts`).join(" ")} ` +
      `> ${dir}/all_known_hosts`,
  );
  env.P_SSH_COMMAND = `ssh -F ${dir}/all_ssh_config`;
  for (const i of GROUP) sh(`${P} worker register ${USER}${i} -n b${i}`);
  groupSsh.push(...GROUP.map((i) => `ssh -F ${dir}/all_ssh_config ${USER}${i}`));
}

/**
 * A source tree like a real project's: ~6,000 text files, a few binaries, ~100 MB with .git
 * (`scale` times as many text files).
 */
function buildTree(at: string, scale = 1) {
  say(`building a ~${(6000 * scale).toLocaleString("en-US")}-file tree with .git`);
  const words = (
    "int void return static const struct if else for while size_t char buffer index " +
    "value count node next list free alloc error result data"
  ).split(" ");
  let seed = 42;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let d = 0; d < 60 * scale; d++) {
    mkdirSync(join(at, "src", `mod${d}`), { recursive: true });
    for (let f = 0; f < 98; f++) {
      const lines: string[] = [];
      for (let l = 0; l < 160; l++)
        lines.push(Array.from({ length: 6 }, () => words[rand(words.length)]! + rand(1000)).join(" "));
      writeFileSync(join(at, "src", `mod${d}`, `file${f}.c`), `${lines.join(";\n")}\n`);
    }
  }
  mkdirSync(join(at, "assets"));
  sh(`for i in 1 2 3 4 5 6; do head -c 4000000 /dev/urandom > ${at}/assets/blob$i.bin; done`);
  writeFileSync(join(at, ".gitignore"), "build/\n");
  sh(`cd ${at} && git init -q && git add -A && git -c user.email=b@b -c user.name=b commit -qm tree && git gc -q`);
  const files = sh(`cd ${at} && find . -type f | wc -l`).trim();
  const size = sh(`du -sm ${at} | cut -f1`).trim();
  say(`tree: ${files} files, ${size} MB`);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Before each timed command: the worker done with what p left running in the background
 * (a mirror's spare waiting for its job, then copied under the mirror's lock: each lock
 * waited for, then no such work left, else again; no polling beside a copy, whose CPU
 * would count as the worker's) and every file written so far
 * on disk, so that neither side pays for the other's writes.
 */
function quiet() {
  for (const host of [ssh, ...groupSsh]) sh(`${host} '${BACKGROUND_SETTLED}'`);
  sh("sync");
}

async function time(cmd: string): Promise<number> {
  quiet();
  const t0 = performance.now();
  const r = Bun.spawnSync(["bash", "-c", cmd], { stdout: "ignore", stderr: "pipe", env: { ...process.env, ...env } });
  const t = (performance.now() - t0) / 1000;
  if (r.exitCode !== 0) throw new Error(`${cmd}: exit ${r.exitCode}: ${r.stderr.toString().trim()}`);
  return t;
}

/**
 * The worker's processes (its sshd and everything it starts, p's background work too) in a
 * cpuacct cgroup of their own: their CPU seconds so far. Undefined without cgroup v1's cpuacct.
 */
const CPU_GROUP = `/sys/fs/cgroup/cpuacct/${NS}`;
function workerCpu(pidFile: string): (() => number) | undefined {
  if (!Bun.spawnSync(["test", "-d", "/sys/fs/cgroup/cpuacct"]).success) return undefined;
  sh(`mkdir -p ${CPU_GROUP} && cat ${pidFile} > ${CPU_GROUP}/cgroup.procs`);
  adopt(CPU_GROUP, sshdOf(USER));
  return () => Number(readFileSync(`${CPU_GROUP}/cpuacct.usage`, "utf8")) / 1e9;
}

/**
 * Move the processes `pgrep -f pattern` finds into cgroup `group` (what they start later
 * goes there too): a connection p keeps between runs was made before the group was, and
 * so was the process that keeps it.
 */
const adopt = (group: string, pattern: string) =>
  sh(`for pid in $(pgrep -f '${pattern}'); do echo $pid > ${group}/cgroup.procs; done`, { quiet: true });
/** The sshd processes of a worker user's connections (its listener's children). */
const sshdOf = (user: string) => `^sshd(-session)?: ${user}[ @]`;
/** The process that keeps p's connections, for the benchmark's runs. */
const KEEPER = `[_]_keep-connections ${dir}/run/`;

/** A command in the worker's mount namespace (ip netns exec gives its sshd one of its own). */
let inWorkerNs = "";

/** Bytes written so far to the disk that holds `path` on the worker (after a sync, what reached it). */
function bytesWritten(path: string): number {
  const dev = sh(`${inWorkerNs} df --output=source ${path} | tail -1`)
    .trim()
    .replace(/^\/dev\//, "");
  const line = readFileSync("/proc/diskstats", "utf8")
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .find((f) => f[2] === dev);
  if (!line) throw new Error(`no disk stats for ${dev}`);
  return Number(line[9]) * 512;
}

/** What a command costs the worker box, until p's background work there has ended: CPU seconds, bytes written. */
async function workerCost(cmd: string, cpu: () => number, disk: string) {
  quiet();
  const [c0, b0] = [cpu(), bytesWritten(disk)];
  await time(cmd);
  quiet();
  return { cpu: cpu() - c0, bytes: bytesWritten(disk) - b0 };
}

/** Lines printed after the table: the worker's side of a warm run. */
const costs: string[] = [];

interface Row {
  what: string;
  p: number;
  base: number;
  baseName: string;
  goal: string;
  ok: boolean;
}
const rows: Row[] = [];

/** Run p's way and the baseline alternately `runs` times; `before` runs untimed before each. */
async function compare(
  what: string,
  pCmd: string | (() => string),
  baseName: string,
  baseCmd: (i: number) => string,
  goal: (p: number, b: number) => [string, boolean],
  opts: { runs?: number; before?: (i: number) => void } = {},
) {
  const ps: number[] = [];
  const bs: number[] = [];
  const runs = opts.runs ?? RUNS;
  for (let i = 0; i < runs; i++) {
    opts.before?.(i);
    ps.push(await time(typeof pCmd === "string" ? pCmd : pCmd()));
    bs.push(await time(baseCmd(i)));
  }
  const [g, ok] = goal(median(ps), median(bs));
  rows.push({ what, p: median(ps), base: median(bs), baseName, goal: g, ok });
  say(`${what}: p ${median(ps).toFixed(2)}s, ${baseName} ${median(bs).toFixed(2)}s`);
}

const ssh = `ssh -F ${dir}/w/ssh_config ${USER}`;
const rsyncE = `rsync -a -e 'ssh -F ${dir}/w/ssh_config'`;

try {
  setUp();
  const src = join(dir, "src");
  mkdirSync(src);
  buildTree(src);
  const touch = (i: number) => writeFileSync(join(src, "src", "mod7", "file3.c"), `changed ${i} ${Date.now()}\n`);

  // what a warm run costs the worker box beside the time, against the floor's cost there
  const cpu = workerCpu(`${dir}/w/sshd.pid`);
  const home = `/home/${USER}`;

  if (ONLY !== "group") {
    // cold: a worker that has never seen the tree, each time. Nothing is deleted between cold
    // runs: a file system without a journal (ext4 here) allocates inodes slowly for a minute
    // or more after many were freed, which would tax whichever side ran next. Each cold run
    // gets a copy of the tree at a new path (so a new mirror) and a new directory by hand.
    let copies = 0;
    const freshCopy = (of: string) => {
      const at = `${of}-cold${++copies}`;
      sh(`cp -a ${of} ${at}`);
      return at;
    };
    let cold = "";
    await compare(
      "cold first run (whole tree)",
      () => `cd ${cold} && ${P} -- true`,
      "rsync -a + ssh",
      (i) => `${rsyncE} ${src}/ ${USER}:hand-cold${i}/ && ${ssh} 'cd hand-cold${i} && true'`,
      (p, b) => [`<= 1.0x`, p <= b],
      { runs: Math.min(RUNS, 3), before: () => (cold = freshCopy(src)) },
    );

    // cold, where the data compresses: a directory of build logs
    const logs = join(dir, "logs");
    mkdirSync(logs);
    const logLine = "compile step %g: cc -O2 -c src/file.c -o build/file.o ok";
    sh(`for i in 1 2 3 4; do seq -f '${logLine}' 1 420000 > ${logs}/build$i.log; done`);
    say(`logs: ${sh(`du -sm ${logs} | cut -f1`).trim()} MB of text`);
    await compare(
      "cold first run (logs, compress)",
      () => `cd ${cold} && ${P} -- true`,
      "rsync -a + ssh",
      (i) => `${rsyncE} ${logs}/ ${USER}:hand-logs${i}/ && ${ssh} 'cd hand-logs${i} && true'`,
      (p, b) => [`< 1.0x`, p < b],
      { runs: Math.min(RUNS, 3), before: () => (cold = freshCopy(logs)) },
    );

    // warm: one file changed since the last run
    sh(`cd ${src} && ${P} -- true && ${rsyncE} ${src}/ ${USER}:hand-uptodate/`);
    let fresh = 0;
    const warmP: number[] = [];
    const naive: number[] = [];
    const floor: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      touch(i);
      warmP.push(await time(`cd ${src} && ${P} -- true`));
      naive.push(
        await time(`${rsyncE} ${src}/ ${USER}:hand-fresh${++fresh}/ && ${ssh} 'cd hand-fresh${fresh} && true'`),
      );
      floor.push(await time(`${rsyncE} ${src}/ ${USER}:hand-uptodate/ && ${ssh} 'cd hand-uptodate && true'`));
      sh(`${ssh} 'rm -rf hand-fresh${fresh}'`);
    }
    rows.push({
      what: "warm re-run, 1 file changed",
      p: median(warmP),
      base: median(naive),
      baseName: "rsync to a fresh dir + ssh",
      goal: ">= 10x faster",
      ok: median(naive) / median(warmP) >= 10,
    });
    rows.push({
      what: "warm re-run, 1 file changed",
      p: median(warmP),
      base: median(floor),
      baseName: "rsync to an up-to-date dir + ssh",
      goal: "<= 1.25x",
      ok: median(warmP) <= 1.25 * median(floor),
    });
    say(`warm: p ${median(warmP).toFixed(2)}s, naive ${median(naive).toFixed(2)}s, floor ${median(floor).toFixed(2)}s`);

    // where a warm re-run's time goes, as p -v tells it
    touch(40);
    quiet();
    const phases = Bun.spawnSync(["bash", "-c", `cd ${src} && ${P} -v -- true`], { env: { ...process.env, ...env } });
    const timings = phases.stderr.toString().match(/timings: .*/)?.[0];
    if (timings) costs.push(`p -v, warm re-run: ${timings}`);

    // what a warm run costs the worker box beside the time, against the floor's cost there
    async function warmCosts(what: string, tree: string, change: () => void, hand: string, worker = "bench") {
      if (!cpu) return;
      // (what waiting for the background work costs by itself, taken off both)
      const idle = (await workerCost("true", cpu, home)).cpu;
      const ps: { cpu: number; bytes: number }[] = [];
      const fs: { cpu: number; bytes: number }[] = [];
      for (let i = 0; i < 3; i++) {
        change();
        ps.push(await workerCost(`cd ${tree} && ${P} ${worker} -- true`, cpu, hand));
        fs.push(await workerCost(`${rsyncE} ${tree}/ ${USER}:${hand}/ && ${ssh} 'cd ${hand} && true'`, cpu, hand));
      }
      const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
      const sec = (c: number) => `${Math.max(0, c - idle).toFixed(2)} s`;
      const [pc, pb, fc, fb] = [
        median(ps.map((x) => x.cpu)),
        median(ps.map((x) => x.bytes)),
        median(fs.map((x) => x.cpu)),
        median(fs.map((x) => x.bytes)),
      ];
      costs.push(
        `${what.padEnd(34)} p: ${sec(pc).padStart(7)} CPU, ${mb(pb).padStart(9)} written` +
          `   floor: ${sec(fc).padStart(7)} CPU, ${mb(fb).padStart(9)} written`,
      );
      say(`${what}: p ${sec(pc)} CPU ${mb(pb)}; floor ${sec(fc)} CPU ${mb(fb)}`);
    }
    await warmCosts("6,000 files, ext4", src, () => touch(50), `${home}/hand-uptodate`);

    /**
     * The tree `times` over, synced once by p and once by hand, then a warm re-run of each
     * with one file changed; returns the tree and how to change that file.
     */
    async function warmTreeRow(name: string, times: number, label: string, runs = RUNS) {
      const tree = join(dir, name);
      mkdirSync(tree);
      buildTree(tree, times);
      let change = 0;
      const touchTree = () =>
        writeFileSync(join(tree, "src", "mod7", "file3.c"), `changed ${++change} ${Date.now()}\n`);
      sh(`cd ${tree} && ${P} -- true && ${rsyncE} ${tree}/ ${USER}:hand-${name}/`);
      await compare(
        `warm re-run, 1 file changed (${label})`,
        () => {
          touchTree();
          return `cd ${tree} && ${P} -- true`;
        },
        "rsync to an up-to-date dir + ssh",
        () => {
          touchTree();
          return `${rsyncE} ${tree}/ ${USER}:hand-${name}/ && ${ssh} 'cd hand-${name} && true'`;
        },
        (p, b) => [`<= 1.25x`, p <= 1.25 * b],
        { runs },
      );
      return { tree, touchTree };
    }

    // the same tree four times over: a warm run should cost rsync's own scan plus the change
    const big = await warmTreeRow("big", 4, "4x tree");
    await warmCosts("24,000 files, ext4", big.tree, big.touchTree, `${home}/hand-big`);

    // a 100,000-file tree, where the disk has room for it and its copies (the tree, its
    // mirror, spare and work dirs, and the copy by hand: about 4 GB)
    const freeGB = Number(sh(`df -Pk ${dir} | awk 'NR == 2 { print int($4 / 1048576) }'`).trim());
    if (freeGB >= 12) {
      const huge = await warmTreeRow("huge", 17, "100k tree", Math.min(RUNS, 3));
      sh(`${ssh} 'rm -rf hand-huge'; rm -rf ${huge.tree}`);
    } else costs.push(`(no 100,000-file tree: ${freeGB} GB free here, 12 GB wanted)`);

    // where the file system has reflinks (XFS here, on a loop device), the copies p makes in
    // the background share the blocks of what they copy
    // (xfsprogs installed here if it can be: the benchmark runs as root)
    if (cpu && !sh("command -v mkfs.xfs || true").trim())
      sh(
        "command -v apt-get >/dev/null && apt-get update -qq && " +
          "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xfsprogs",
        { quiet: true },
      );
    if (cpu && sh("command -v mkfs.xfs || true").trim()) {
      sh(`truncate -s 3G ${dir}/xfs.img && mkfs.xfs -q -m reflink=1 ${dir}/xfs.img`);
      sh(
        `mkdir -p ${home}/xfs && ${inWorkerNs} sh -c ` +
          `'mount -o loop ${dir}/xfs.img ${home}/xfs && chown ${USER} ${home}/xfs'`,
      );
      sh(`${P} worker register ${USER} -n bench-xfs --root ${home}/xfs/p`);
      sh(`cd ${src} && ${P} bench-xfs -- true && ${rsyncE} ${src}/ ${USER}:xfs/hand/`);
      await warmCosts("6,000 files, XFS with reflinks", src, () => touch(60), `${home}/xfs/hand`, "bench-xfs");
      sh(`${P} worker rm bench-xfs`);
    } else costs.push("(no XFS here: apt-get install xfsprogs to measure a file system with reflinks)");

    // a new checkout of the same repository (git worktree add): its first run
    let worktrees = 0;
    let wt = "";
    const newWorktree = () => {
      wt = join(dir, `wt${++worktrees}`);
      sh(`cd ${src} && git worktree add -q ${wt}`);
    };
    await compare(
      "first run of a new worktree",
      () => `cd ${wt} && ${P} -- true`,
      "rsync -az + ssh",
      (i) => `${rsyncE} -z ${wt}/ ${USER}:hand-wt${i}/ && ${ssh} 'cd hand-wt${i} && true'`,
      (p, b) => [`< 1.0x`, p < b],
      { runs: Math.min(RUNS, 3), before: newWorktree },
    );
    const wtRow = rows.at(-1)!;
    rows.push({
      what: "first run of a new worktree",
      p: wtRow.p,
      base: median(warmP),
      baseName: "p's warm re-run",
      goal: "<= 2x",
      ok: wtRow.p <= 2 * median(warmP),
    });
  }

  let peakKb = 0;
  // BENCH_ONLY=sync: the rows of the sync alone; BENCH_ONLY=group: those of many workers alone
  if (!ONLY) {
    await compare(
      "launch, no sync (p -n -d -- true)",
      `cd ${src} && ${P} -n -d -- true`,
      "ssh host true",
      () => `${ssh} true`,
      (p, b) => [`<= 1.2x`, p <= 1.2 * b],
    );

    // the queue: 20 jobs of sleep 1 on 4 slots, held back by a gate (a job that ends once
    // they are all in the queue) so that they all wait at once; each stamps its start and end
    sh(`${P} worker set bench --slots 4`);
    const stamps = `/home/${USER}/stamps`;
    sh(`${ssh} 'rm -f stamps go'`);
    const gate = sh(`cd ${src} && ${P} -n -d -- 'while [ ! -f ~/go ]; do sleep 0.05; done'`).trim();
    for (let i = 0; i < 20; i++)
      sh(
        `cd ${src} && ${P} -n -d --after-any ${gate} -- ` +
          `'echo "s $(date +%s%N)" >>${stamps}; sleep 1; echo "e $(date +%s%N)" >>${stamps}'`,
      );
    sh(`${ssh} 'touch go' && ${P} wait --all`);
    const marks = sh(`${ssh} 'cat stamps'`).trim().split("\n");
    const at = (k: string) =>
      marks
        .filter((m) => m.startsWith(k))
        .map((m) => Number(m.split(" ")[1]) / 1e9)
        .sort((a, b) => a - b);
    const [starts, ends] = [at("s"), at("e")];
    const makespan = ends.at(-1)! - starts[0]!;
    rows.push({
      what: "queue: 20 x sleep 1 on 4 slots",
      p: makespan,
      base: 5,
      baseName: "the ideal makespan",
      goal: "<= 1.15x",
      ok: makespan <= 1.15 * 5,
    });
    // the k-th end frees the slot the (k+4)-th start takes
    const startDelay = median(ends.slice(0, 16).map((e, k) => starts[k + 4]! - e));
    rows.push({
      what: "queue: a job starts after a slot frees",
      p: startDelay,
      base: 0.5,
      baseName: "the goal (median)",
      goal: "<= 1.0x",
      ok: startDelay <= 0.5,
    });
    say(`queue: makespan ${makespan.toFixed(2)}s, start after a slot frees ${startDelay.toFixed(3)}s`);
    // submitting a job that must wait: one holds the only slot
    sh(`${P} worker set bench --slots 1`);
    const holder = sh(`cd ${src} && ${P} -n -d -- sleep 600`).trim();
    await compare(
      "submit a queued job (p -n -d -- true)",
      `cd ${src} && ${P} -n -d -- true`,
      "ssh host true",
      () => `${ssh} true`,
      (p, b) => [`<= 1.2x`, p <= 1.2 * b],
    );
    sh(`${P} stop ${holder} && ${P} wait --all && ${P} worker set bench --slots none`);

    // 10,000 job records
    const many = join(dir, "many");
    mkdirSync(join(many, "p", "jobs"), { recursive: true, mode: 0o700 });
    for (let i = 0; i < 10000; i++) {
      const id = `${i.toString(16).padStart(8, "0")}-0000-4000-8000-000000000000`;
      const rec = {
        id,
        worker: "bench",
        connection: USER,
        command: `make test ${i}`,
        argv: ["make", "test", `${i}`],
        cwd: "/src/proj",
        status: "done",
        exit_code: i % 3,
        started_at: 1.7e9 + i,
        created_ms: 1.7e12 + i,
        ended_at: 1.7e9 + i + 5,
        synced: true,
      };
      writeFileSync(join(many, "p", "jobs", `${id}.json`), JSON.stringify(rec, null, 2));
    }
    // a job history at rest, as between a user's runs: p ls indexes a directory only once it
    // has been still for 2 s (the first p ls after records written by another program reads
    // every record)
    await Bun.sleep(2500);
    const ls = `XDG_DATA_HOME=${many} ${P} ls -a --json >/dev/null`;
    await time(ls);
    const lsRow = (what: string, times: number, before?: () => void) =>
      compare(
        `p ls -a --json, 10,000${what}`,
        ls,
        "p --version",
        () => `${P} --version`,
        (p, b) => [`<= ${times}x`, p <= times * b],
        before && { before },
      );
    await lsRow(" records", 3);
    // right after a run: p has just written a job's record (and its line in the journal)
    await lsRow(", right after a run", 3, () => sh(`cd ${src} && XDG_DATA_HOME=${many} ${P} -n -- true`));
    // and where something else changed a record (a rename, as p writes one): the whole
    // directory is looked at again
    const one = join(many, "p", "jobs", "00000007-0000-4000-8000-000000000000.json");
    await lsRow(", one changed by hand", 5, () => sh(`cp ${one} ${one}.new && mv ${one}.new ${one}`));

    // streaming 200 MB of incompressible output
    sh(`${ssh} 'head -c 200000000 /dev/urandom > blob'`);
    const streamP: number[] = [];
    const streamB: number[] = [];
    for (let i = 0; i < Math.min(RUNS, 3); i++) {
      const t0 = performance.now();
      const proc = Bun.spawn([P, "-n", "--", "cat ~/blob"], {
        cwd: src,
        env: { ...process.env, ...env },
        stdout: "pipe",
        stderr: "ignore",
      });
      const peak = peakRss(proc.pid, 100);
      let bytes = 0;
      for await (const c of proc.stdout) bytes += c.length;
      peakKb = Math.max(peakKb, peak());
      if ((await proc.exited) !== 0 || bytes !== 200000000)
        throw new Error(`streaming: exit ${proc.exitCode}, ${bytes} bytes`);
      streamP.push((performance.now() - t0) / 1000);
      streamB.push(await time(`${ssh} cat blob >/dev/null`));
    }
    rows.push({
      what: "streaming 200 MB of output",
      p: median(streamP),
      base: median(streamB),
      baseName: "ssh host cat",
      goal: "<= 1.2x",
      ok: median(streamP) <= 1.2 * median(streamB),
    });
    say(
      `streaming: p ${median(streamP).toFixed(2)}s (peak RSS ${Math.round(peakKb / 1024)} MB), ` +
        `ssh cat ${median(streamB).toFixed(2)}s`,
    );

    // the other way: 100 MB of incompressible input, read by the job from p's stdin
    const input = join(dir, "input.bin");
    sh(`head -c 100000000 /dev/urandom > ${input}`);
    // (the job must have read all of it: a p that passed nothing would be fast)
    const counted = sh(`${P} -n -- wc -c < ${input}`).trim();
    if (counted !== "100000000") throw new Error(`stdin: the job read ${counted} bytes, not 100000000`);
    await compare(
      "a job reading 100 MB of stdin",
      `${P} -n -- wc -c < ${input}`,
      "ssh host wc -c",
      () => `${ssh} wc -c < ${input}`,
      (p, b) => [`<= 1.2x`, p <= 1.2 * b],
      { runs: Math.min(RUNS, 3) },
    );
    rmSync(input, { force: true });
  }

  if (ONLY !== "sync") {
    // many workers: the same warm re-run on three at once, each behind its own link; and
    // what --any's choice among them costs before the launch
    const single = env.P_SSH_COMMAND;
    setUpGroup();
    sh(`cd ${src} && ${P} --on b1,b2,b3 -- true`);
    let change = 100;
    await compare(
      "warm re-run on 3 workers (--on)",
      () => {
        touch(++change);
        return `cd ${src} && ${P} --on b1,b2,b3 -- true`;
      },
      "the same on one worker",
      () => {
        touch(++change);
        return `cd ${src} && ${P} b1 -- true`;
      },
      (p, b) => [`<= 1.3x`, p <= 1.3 * b],
      // (a ratio of two short runs on four busy "machines": medians of 5 moved by a tenth
      // from one whole run to the next)
      { runs: ON_RUNS },
    );
    // the same by hand, for the scale of what these two cores allow: rsync + ssh to three
    // workers at once (each into an up-to-date dir of its own) against one
    const groupConfig = `-F ${dir}/all_ssh_config`;
    const hand = (i: number) =>
      `rsync -a -e 'ssh ${groupConfig}' ${src}/ ${USER}${i}:hand/ && ssh ${groupConfig} ${USER}${i} 'cd hand && true'`;
    for (const i of GROUP) sh(hand(i));
    const handAll: number[] = [];
    const handOne: number[] = [];
    for (let i = 0; i < ON_RUNS; i++) {
      touch(++change);
      handAll.push(
        await time(
          `${GROUP.map((g) => `(${hand(g)}) & w${g}=$!;`).join(" ")} ${GROUP.map((g) => `wait $w${g}`).join(" && ")}`,
        ),
      );
      touch(++change);
      handOne.push(await time(hand(1)));
    }
    costs.push(
      `by hand, the same warm re-run (rsync + ssh) on 3 workers at once: ${median(handAll).toFixed(2)} s, ` +
        `on one: ${median(handOne).toFixed(2)} s (${(median(handAll) / median(handOne)).toFixed(2)}x)`,
    );
    // where an --on run's time goes, on these two cores: the CPU of the client and of each
    // worker (its sshd and all it starts), against the same run on one worker
    if (cpu) {
      const meter = (group: string, pids = "") => {
        sh(`mkdir -p ${group}${pids && ` && cat ${pids} > ${group}/cgroup.procs`}`);
        return () => Number(readFileSync(`${group}/cpuacct.usage`, "utf8")) / 1e9;
      };
      const client = meter(`${CPU_GROUP}-client`);
      const workers = GROUP.map((i) => meter(`${CPU_GROUP}${i}`, `${dir}/w${i}/sshd.pid`));
      // (the client's CPU counts its keeper's, each worker's the connection kept to it)
      adopt(`${CPU_GROUP}-client`, KEEPER);
      for (const i of GROUP) adopt(`${CPU_GROUP}${i}`, sshdOf(`${USER}${i}`));
      const split = (cmd: string) => {
        quiet();
        const before = [client(), ...workers.map((w) => w())];
        const t0 = performance.now();
        sh(`bash -c 'echo $$ > ${CPU_GROUP}-client/cgroup.procs && exec bash -c "$0"' '${cmd}'`);
        const wall = (performance.now() - t0) / 1000;
        return [wall, ...[client(), ...workers.map((w) => w())].map((c, k) => c - before[k]!)];
      };
      const on: number[][] = [];
      const one: number[][] = [];
      for (let i = 0; i < 3; i++) {
        touch(++change);
        on.push(split(`cd ${src} && ${P} --on b1,b2,b3 -- true`));
        touch(++change);
        one.push(split(`cd ${src} && ${P} b1 -- true`));
      }
      const med = (runs: number[][], k: number) => median(runs.map((r) => r[k]!)).toFixed(2);
      costs.push(
        `--on 3 workers, a warm re-run (until p exits): ${med(on, 0)} s, CPU: client ${med(on, 1)} s, ` +
          `workers ${[2, 3, 4].map((k) => med(on, k)).join(" + ")} s; ` +
          `one worker: ${med(one, 0)} s, CPU: client ${med(one, 1)} s, worker ${med(one, 2)} s`,
      );
    }
    const anyT: number[] = [];
    const directT: number[] = [];
    const sshT: number[] = [];
    const sshB1 = `ssh -F ${dir}/all_ssh_config ${USER}1`;
    for (let i = 0; i < RUNS; i++) {
      anyT.push(await time(`cd ${src} && ${P} --any b1,b2,b3 -n -d -- true`));
      directT.push(await time(`cd ${src} && ${P} b1 -n -d -- true`));
      sshT.push(await time(`${sshB1} true`));
    }
    const decision = Math.max(0, median(anyT) - median(directT));
    rows.push({
      what: "--any's choice among 3 (before the launch)",
      p: decision,
      base: median(sshT),
      baseName: "ssh host true",
      goal: "<= 1.5x",
      ok: decision <= 1.5 * median(sshT),
    });
    say(
      `--any: p --any ${median(anyT).toFixed(2)}s, p b1 ${median(directT).toFixed(2)}s, ` +
        `ssh ${median(sshT).toFixed(2)}s`,
    );
    env.P_SSH_COMMAND = single;
  }

  if (!ONLY) {
    // a Slurm worker: the login node is this machine, over loopback (slurmctld listens on
    // this namespace's 127.0.0.1, which the shaped worker's namespace cannot reach)
    say("a one-node Slurm, and its login node over loopback");
    sh(`bash ${root}/test/fixtures/slurm.sh up ${dir}/slurm`);
    sh(`bash ${root}/test/fixtures/workers.sh up ${dir}/login ${USER}`);
    const loginSsh = `ssh -F ${dir}/login/ssh_config`;
    sh(`P_SSH_COMMAND='${loginSsh}' ${P} worker register ${USER} --slurm -n hpc`);
    await compare(
      "submit to Slurm (p -n -d -- true)",
      `cd ${src} && P_SSH_COMMAND='${loginSsh}' ${P} hpc -n -d -- true`,
      "ssh login sbatch --wrap true",
      () => `${loginSsh} ${USER} sbatch --output=/dev/null --wrap true`,
      (p, b) => [`<= 1.3x`, p <= 1.3 * b],
    );
  }

  // the report
  const w = Math.max(...rows.map((r) => r.what.length));
  const bw = Math.max(...rows.map((r) => r.baseName.length));
  const runs = `medians of ${RUNS} runs (cold and streaming: ${Math.min(RUNS, 3)}; --on: ${ON_RUNS})`;
  console.log(`\np benchmark: worker behind a ${RATE} link, ${runs}\n`);
  const line = (cells: string[]) => console.log(cells.join("  "));
  const head = ["measurement".padEnd(w), "p".padStart(7), "baseline".padEnd(bw), "time".padStart(7)];
  line([...head, "ratio".padStart(7), "goal".padEnd(13), "met"]);
  for (const r of rows) {
    const ratio = r.goal.includes("faster") ? `${(r.base / r.p).toFixed(1)}x` : `${(r.p / r.base).toFixed(2)}x`;
    const [pTime, baseTime] = [r.p, r.base].map((t) => `${t.toFixed(2)}s`.padStart(7));
    line([
      r.what.padEnd(w),
      pTime!,
      r.baseName.padEnd(bw),
      baseTime!,
      ratio.padStart(7),
      r.goal.padEnd(13),
      r.ok ? "yes" : "NO",
    ]);
  }
  if (peakKb) console.log(`\nstreaming: p's peak memory ${Math.round(peakKb / 1024)} MB for 200 MB of output`);
  console.log("\nthe workers' side of a warm run (1 file changed), until p's background work there ends:");
  for (const c of costs) console.log(`  ${c}`);
} finally {
  teardown();
}
