import { afterAll, beforeAll } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  JOB_FILES,
  JOBS_DIR,
  jobDir,
  MIRRORS_DIR,
  OCCASIONAL_JOB_FILES,
  P_DIR,
  QUEUE_DIR,
  SUFFIX,
  WORKDIRS_DIR,
  workDir,
} from "../../packages/exec/src/protocol/layout.ts";
import { type JobRecord, JobStore } from "../../packages/store/src/index.ts";

/** Where p keeps things on a worker, from the one module that says so. */
export const layout = {
  P_DIR,
  JOBS_DIR,
  WORKDIRS_DIR,
  MIRRORS_DIR,
  QUEUE_DIR,
  SUFFIX,
  JOB_FILES,
  OCCASIONAL_JOB_FILES,
};

export const root = join(import.meta.dir, "..", "..");
export const P = join(root, "dist", "p");
const WORKERS = join(root, "test", "fixtures", "workers.sh");

/** The two worker users: each its own unix account, so each has its own ~/.p. */
export const USERS = ["p-w1", "p-w2"] as const;

export interface Workers {
  dir: string;
  port: number;
  /** Environment that points p at these workers and at a private config and job store. */
  env: Record<string, string>;
  stop(): void;
}

/** Start a real sshd on loopback serving both worker users. Needs root (useradd). */
export function startWorkers(): Workers {
  if (process.getuid?.() !== 0) throw new Error("the end-to-end tests create worker users: run them as root (CI does)");
  if (!existsSync(P)) throw new Error(`${P} is missing: run bun run build first`);
  const dir = mkdtempSync(join(tmpdir(), "p-e2e-"));
  const r = Bun.spawnSync(["bash", WORKERS, "up", dir, ...USERS], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`workers.sh failed: ${r.stderr}`);
  const port = Number(r.stdout.toString().trim());
  const env = {
    PATH: process.env.PATH!,
    HOME: process.env.HOME!,
    NO_COLOR: "1",
    XDG_CONFIG_HOME: join(dir, "config"),
    XDG_DATA_HOME: join(dir, "data"),
    XDG_CACHE_HOME: join(dir, "cache"),
    P_SSH_COMMAND: `ssh -F ${join(dir, "ssh_config")}`,
    // each run connects: a keeper of connections would outlive the test (keep.test.ts has one)
    P_KEEP_CONNECTIONS: "0",
  };
  return {
    dir,
    port,
    env,
    stop() {
      Bun.spawnSync(["bash", WORKERS, "down", dir]);
      rmSync(dir, { recursive: true, force: true });
      for (const d of scratchDirs.splice(0)) rmSync(d, { recursive: true, force: true });
      // leave the worker users as they were: no jobs, no synced trees
      // (no process of theirs left either: a job, or the copy that readies a mirror's spare)
      for (const u of USERS)
        Bun.spawnSync([
          "sh",
          "-c",
          `pkill -KILL -u ${u}; sleep 0.1; cd /home/${u} && rm -rf ${P_DIR} ./* .profile bin`,
        ]);
    },
  };
}

/**
 * A test file's workers: started before its tests, with each argument list registered
 * (`p worker register ...`) and `ready` told; after them, their jobs pruned and all stopped.
 */
export function useWorkers(register: string[][], ready: (w: Workers) => void): void {
  let w: Workers | undefined;
  beforeAll(async () => {
    w = startWorkers();
    ready(w);
    for (const args of register) {
      const r = await p(["worker", "register", ...args], { env: w.env });
      if (r.code !== 0) throw new Error(`p worker register ${args.join(" ")} failed: ${r.stderr}`);
    }
  });
  afterAll(async () => {
    if (!w) return;
    await p(["prune", "--force"], { env: w.env });
    w.stop();
  });
}

/** git in `dir`, as a test's user; its stdout. */
export const gitIn = (dir: string, ...args: string[]): string =>
  Bun.spawnSync(["git", "-C", dir, "-c", "user.email=t@t", "-c", "user.name=t", ...args], {
    stderr: "pipe",
  }).stdout.toString();

/** Make `dir` a repository whose one commit, `message`, holds all it has. */
export function commitAll(dir: string, message: string): void {
  for (const args of [
    ["init", "-q"],
    ["add", "-A"],
    ["commit", "-qm", message],
  ])
    gitIn(dir, ...args);
}

/**
 * For an oddWorker's `ns`: the mount that puts a shell script in place of the worker's
 * `tool`, its text `script(real)` (after #!/bin/sh), where `real` is a copy of the real one
 * (kept in the workers' dir as `<name>.<tool>`).
 */
export function wrappedTool(w: Workers, name: string, tool: string, script: (real: string) => string): string {
  const real = join(w.dir, `${name}.${tool}`);
  const wrapper = join(w.dir, `${name}.wrapped-${tool}`);
  Bun.spawnSync(["cp", Bun.which(tool)!, real]);
  writeFileSync(wrapper, `#!/bin/sh\n${script(real)}\n`, { mode: 0o755 });
  return `mount --bind ${wrapper} "$(command -v ${tool})"`;
}

/**
 * A worker user served by a second sshd in a mount namespace of its own, set up by the
 * shell commands `ns` (to give it a different file system: a missing or dawdling tool, a
 * full disk), with its own client config and job store.
 */
export async function oddWorker(w: Workers, name: string, user: string, ns: string) {
  const dir = join(w.dir, name);
  mkdirSync(dir);
  const up = Bun.spawnSync(["bash", WORKERS, "up", dir, user], {
    env: { ...process.env, P_WORKER_NS: ns },
    stderr: "pipe",
  });
  if (up.exitCode !== 0) throw new Error(`workers.sh failed: ${up.stderr}`);
  const env = {
    ...w.env,
    P_SSH_COMMAND: `ssh -F ${join(dir, "ssh_config")}`,
    XDG_CONFIG_HOME: join(dir, "config"),
    XDG_DATA_HOME: join(dir, "data"),
    XDG_CACHE_HOME: join(dir, "cache"),
  };
  const reg = await p(["worker", "register", user, "-n", name], { env });
  if (reg.code !== 0) throw new Error(`p worker register failed: ${reg.stderr}`);
  return { env, down: () => Bun.spawnSync(["bash", WORKERS, "down", dir]) };
}

export interface Run {
  stdout: string;
  stderr: string;
  code: number;
}

/** An empty directory to run p in when a test names none: p syncs its working directory. */
let emptyDir: string | undefined;
const defaultCwd = () => {
  if (!emptyDir || !existsSync(emptyDir)) emptyDir = scratch("empty");
  return emptyDir;
};

/** Run the compiled p to completion. */
export const p = (args: string[], opts: { env: Record<string, string>; cwd?: string }): Promise<Run> =>
  runBinary(P, args, opts);

/** Run one of the compiled binaries (p, p-sync, p-exec) to completion, as a user would. */
export async function runBinary(
  path: string,
  args: string[],
  opts: { env: Record<string, string>; cwd?: string },
): Promise<Run> {
  const proc = Bun.spawn([path, ...args], {
    env: opts.env,
    cwd: opts.cwd ?? defaultCwd(),
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { stdout, stderr, code };
}

/**
 * `p <args> | head -1`, as a user types it (under pipefail, so that the code is p's): the
 * line head printed, p's stderr and exit code, and how long the pipeline took (ms).
 */
export async function pToHead(args: string[], opts: { env: Record<string, string>; cwd?: string }) {
  const t0 = performance.now();
  const r = await runBinary("bash", ["-c", 'set -o pipefail; "$@" | head -1', "bash", P, ...args], opts);
  return { ...r, ms: performance.now() - t0 };
}

/**
 * Start p and hand back the process, for signals and timing; with `stdin: "pipe"`, a stdin
 * of the test's own (which it writes and ends), for a job that reads it.
 */
export function spawnP<In extends "ignore" | "pipe" = "ignore">(
  args: string[],
  opts: { env: Record<string, string>; cwd?: string; stdin?: In },
) {
  return Bun.spawn([P, ...args], {
    env: opts.env,
    cwd: opts.cwd ?? defaultCwd(),
    stdin: opts.stdin ?? ("ignore" as In),
    stdout: "pipe",
    stderr: "pipe",
  });
}

/** The newest job of the client store `env` names, as p reads its records (one being written is not one yet). */
export const lastJob = (env: Record<string, string>): JobRecord | undefined =>
  new JobStore(join(env.XDG_DATA_HOME!, "p", "jobs")).list().at(-1);

export const home = (user: string) => `/home/${user}`;
export const jobDirOf = (user: string, id: string) => join(home(user), jobDir(id));
export const workDirOf = (user: string, id: string) => join(home(user), workDir(id));
/** A path on a worker, from its layout-relative form. */
export const onWorkerPath = (user: string, rel: string) => join(home(user), rel);

/** A file on the worker (the tests run as root on the same machine, so they can look). */
export const onWorker = (user: string, path: string) => readFileSync(join(home(user), path), "utf8");

/** Run a shell command as a worker user, as the worker would see it. */
export function asWorker(user: string, cmd: string): string {
  return Bun.spawnSync(["su", "-s", "/bin/sh", user, "-c", cmd]).stdout.toString();
}

export async function waitFor(check: () => boolean, timeoutMs = 10000): Promise<void> {
  const t0 = Date.now();
  while (!check()) {
    if (Date.now() - t0 > timeoutMs) throw new Error("timed out waiting");
    await Bun.sleep(50);
  }
}

/** Client-side directories made by a test file, removed when its workers stop. */
const scratchDirs: string[] = [];

/** A fresh, empty client directory (removed by Workers.stop). */
export function scratch(name: string): string {
  const d = mkdtempSync(join(tmpdir(), `p-${name}-`));
  scratchDirs.push(d);
  return d;
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Sample a process's resident memory; call the result to stop sampling and get the peak, in KiB. */
export function peakRss(pid: number, everyMs = 50): () => number {
  let peak = 0;
  const sample = setInterval(() => {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      if (m) peak = Math.max(peak, Number(m[1]));
    } catch {} // it has exited
  }, everyMs);
  return () => {
    clearInterval(sample);
    return peak;
  };
}

/**
 * Wait until a worker has finished what syncs left running in the background (mirrors and
 * spares being made; a spare waits for its job's start, without the lock, first).
 */
export function mirrorsSettled(user: string): void {
  asWorker(user, BACKGROUND_SETTLED);
}

/**
 * A worker user's shell command that returns once p's background work there has ended:
 * each mirror's lock taken in turn, then no p-mirror process left (one that had let its
 * lock go meanwhile), or all that again. (Also the benchmark's, over ssh.)
 */
export const BACKGROUND_SETTLED =
  `until for l in ~/${MIRRORS_DIR}/*${SUFFIX.lock}; do [ -e "$l" ] && flock "$l" true; done; ` +
  `! pgrep -u "$(id -u)" -f "[p]-mirror" >/dev/null; do sleep 0.05; done`;
