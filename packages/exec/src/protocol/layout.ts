import { createHash } from "node:crypto";
import { PError } from "../errors.ts";

/**
 * What a worker holds on disk, and the only place in p where it is written. Everything is
 * under the worker's root: `.p` in the worker user's home (where ssh and rsync start, and
 * which relative paths are relative to) unless the worker names another (a cluster's
 * shared file system, e.g. /scratch/<user>/p):
 *
 *   .p/jobs/<id>/         the job's record: JOB_FILES; .<id>.new while its launch makes
 *                         it, .<id>.gone while a removal deletes it
 *   .p/workdirs/<id>/     its work dir; <id>.part while a sync makes it
 *   .p/mirrors/<key>      a client directory as last synced (see mirrorDir), with
 *                         <key>.lock (held by a sync and its background work, its mtime
 *                         the last use), <key>.spare (a pristine copy, the next job's work
 *                         dir), <key>.part and <key>.keep (the spare or mirror being made),
 *                         <key>.lock.tick (a probe of the file system's clock), <key>.token
 *                         (the mark of the sync that made the mirror what it is), <key>.bg
 *                         (the background copy of the next spare, which a sync may stop)
 *   .p/queue/             the queue (see queue.sh): an entry <ticket>.<id> per job from
 *                         its launch to its end; capacity, seq (the last ticket), lock
 */
export const P_DIR = ".p";
/** The parts of a root, as each script names them (P_JOBS is <root>/jobs, ...). */
const PARTS = { P_JOBS: "jobs", P_WORKDIRS: "workdirs", P_MIRRORS: "mirrors", P_QUEUE: "queue" } as const;
export const JOBS_DIR = `${P_DIR}/${PARTS.P_JOBS}`;
export const WORKDIRS_DIR = `${P_DIR}/${PARTS.P_WORKDIRS}`;
export const MIRRORS_DIR = `${P_DIR}/${PARTS.P_MIRRORS}`;
export const QUEUE_DIR = `${P_DIR}/${PARTS.P_QUEUE}`;

/** Suffixes of what shares a mirror's name (or a work dir's, for PART). */
export const SUFFIX = {
  part: ".part",
  lock: ".lock",
  spare: ".spare",
  keep: ".keep",
  tick: ".tick",
  changes: ".changes",
  syncing: ".syncing",
  family: ".family",
  token: ".token",
  background: ".bg",
  copy: ".copy",
} as const;

/**
 * The files of a job dir, as the worker-side scripts write and read them. Those read while
 * they may change appear atomically (written to `.<name>.tmp`, then renamed, or with the
 * job dir itself), so a reader never sees half of one; started_at and ended_at, read only
 * once the job has ended, are written as they are.
 */
export const JOB_FILES = {
  command: "cmd",
  cwd: "cwd",
  worker: "worker",
  startedAt: "started_at",
  log: "output.log",
  /** The job's process id, which is also its process group and session. */
  pid: "pid",
  /** The runner that waits for the job and records its end. */
  runner: "runner",
  /** Present once `stop` has signalled the job. */
  stopped: "stopped",
  /** Present once the job's time limit has signalled it. */
  timedOut: "timedout",
  /** Present if the job never ran: a job it runs after did not succeed. */
  skipped: "skipped",
  /** What the job needs of the queue: `<1|all> <gpus>`. */
  needs: "needs",
  /** The jobs it runs after: `<ok|any> <id>...`. */
  after: "after",
  /** Why it waits in the queue (slot, gpu, exclusive, after <id>). */
  waiting: "waiting",
  /** Its place, once the queue gave it one: `<slot> <gpus|->`, or `skip`. */
  granted: "granted",
  exitCode: "exitcode",
  endedAt: "ended_at",
  /** A Slurm worker's job: Slurm's job id (- while it is being submitted). */
  slurm: "slurm",
  /** A Slurm worker's job: the batch script Slurm runs (see batch.sh). */
  batch: "batch",
  /** A Slurm worker's job: its secrets, until its batch script starts and removes them. */
  secrets: "secrets",
  /**
   * A followed job that reads the client's stdin: the fifo it reads it from (an empty file
   * once no one will write it), and the word that someone does (see job_input).
   */
  input: "stdin",
  inputOn: "stdin.on",
} as const;

/** The job files only a Slurm worker's jobs have. */
export const SLURM_JOB_FILES: readonly string[] = [JOB_FILES.slurm, JOB_FILES.batch, JOB_FILES.secrets];

/** The job files that only some jobs have: the marks of how one ended, a queue's details, a Slurm job's. */
export const OCCASIONAL_JOB_FILES: readonly string[] = [
  JOB_FILES.stopped,
  JOB_FILES.timedOut,
  JOB_FILES.skipped,
  JOB_FILES.after,
  JOB_FILES.waiting,
  JOB_FILES.input,
  JOB_FILES.inputOn,
  ...SLURM_JOB_FILES,
];

const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A job id is a lowercase UUID; anything else could name a path outside `.p`. */
export const isJobId = (id: string): boolean => JOB_ID.test(id);

export function assertJobId(id: string): string {
  if (!isJobId(id)) throw new PError("invalid_argument", `job id ${JSON.stringify(id)} is not a UUID`);
  return id;
}

export const jobDir = (id: string, root = P_DIR) => `${root}/${PARTS.P_JOBS}/${assertJobId(id)}`;
export const workDir = (id: string, root = P_DIR) => `${root}/${PARTS.P_WORKDIRS}/${assertJobId(id)}`;

/** Who syncs what from where: a mirror is kept per client user, machine and directory. */
export interface MirrorKey {
  /** The client user's uid: a uid with no passwd entry (containers) has no name. */
  uid: number | string;
  host: string;
  /** The client directory, absolute. */
  path: string;
}

export function mirrorDir(key: MirrorKey, root = P_DIR): string {
  const who = `${key.uid}@${key.host}:${key.path}`;
  return `${root}/${PARTS.P_MIRRORS}/${createHash("sha256").update(who).digest("hex").slice(0, 24)}`;
}

/**
 * The family of a client directory's mirror: the same client user's checkouts of the same
 * repository (see repositoryOf) share it, and a first sync of one may take files from
 * another's mirror. Nothing of another user's, or of another repository's, ever.
 */
export function mirrorFamily(key: { uid: number | string; host: string; repository: string }): string {
  const who = `${key.uid}@${key.host}\0${key.repository}`;
  return createHash("sha256").update(who).digest("hex").slice(0, 32);
}

/**
 * The layout as shell code, run before every worker-side script once P_ROOT is set (from
 * the script's first argument), so the scripts name no path of their own. Constants only:
 * no user data is ever pasted into a script.
 */
export const SHELL_LAYOUT = [
  ...Object.entries(PARTS).map(([name, part]) => `${name}=$P_ROOT/${part}`),
  ...Object.entries(SUFFIX).map(([name, suffix]) => `P_${name.toUpperCase()}=${suffix}`),
].join("\n");

/**
 * A worker's root as the user gives it (absolute, `~/...`, or relative to the home), with
 * `$USER`/`$HOME` taken from the worker (probe.sh's user and home): the path the scripts use.
 */
export function resolveRoot(given: string, worker: { user?: string; home?: string }): string {
  const missing = (name: string) => {
    throw new PError("invalid_argument", `root ${JSON.stringify(given)} uses $${name}, which the worker did not say`);
  };
  let path = given.replace(/\$\{?(USER|HOME)\}?/g, (_, name: "USER" | "HOME") =>
    name === "USER" ? (worker.user ?? missing(name)) : (worker.home ?? missing(name)),
  );
  if (path === "~") path = ".";
  else if (path.startsWith("~/")) path = path.slice(2);
  if (worker.home && path.startsWith(`${worker.home}/`)) path = path.slice(worker.home.length + 1);
  path = path.replace(/\/+$/, "").replace(/\/{2,}/g, "/");
  if (!path || path === "." || /\$|`|\\|\n|(^|\/)\.\.(\/|$)/.test(path) || path.startsWith("~"))
    throw new PError(
      "invalid_argument",
      `root ${JSON.stringify(given)} is not a directory p can keep its files in: ` +
        "give an absolute path or one in the home, e.g. /scratch/$USER/p",
    );
  return path;
}
