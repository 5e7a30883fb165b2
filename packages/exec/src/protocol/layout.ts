import { createHash } from "node:crypto";
import { PError } from "../errors.ts";

/**
 * What a worker holds on disk, and the only place in p where it is written. Every path is
 * relative to the worker user's home, where ssh and rsync start:
 *
 *   .p/jobs/<id>/         the job's record: JOB_FILES
 *   .p/workdirs/<id>/     its work dir; <id>.part while a sync makes it
 *   .p/mirrors/<key>      a client directory as last synced (see mirrorDir), with
 *                         <key>.lock (held by a sync and its background work, its mtime
 *                         the last use), <key>.spare (a pristine copy, the next job's work
 *                         dir), <key>.part and <key>.keep (the spare or mirror being made),
 *                         <key>.lock.tick (a probe of the file system's clock)
 *   .p/queue/             the queue (see queue.sh): an entry <ticket>.<id> per job from
 *                         its launch to its end; capacity, seq (the last ticket), lock
 */
export const P_DIR = ".p";
export const JOBS_DIR = `${P_DIR}/jobs`;
export const WORKDIRS_DIR = `${P_DIR}/workdirs`;
export const MIRRORS_DIR = `${P_DIR}/mirrors`;
export const QUEUE_DIR = `${P_DIR}/queue`;

/** Suffixes of what shares a mirror's name (or a work dir's, for PART). */
export const SUFFIX = { part: ".part", lock: ".lock", spare: ".spare", keep: ".keep", tick: ".tick" } as const;

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
} as const;

/** The job files that only some jobs have: the marks of how one ended, a queue's details. */
export const OCCASIONAL_JOB_FILES: readonly string[] = [
  JOB_FILES.stopped,
  JOB_FILES.timedOut,
  JOB_FILES.skipped,
  JOB_FILES.after,
  JOB_FILES.waiting,
];

const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A job id is a lowercase UUID; anything else could name a path outside `.p`. */
export const isJobId = (id: string): boolean => JOB_ID.test(id);

export function assertJobId(id: string): string {
  if (!isJobId(id)) throw new PError("invalid_argument", `job id ${JSON.stringify(id)} is not a UUID`);
  return id;
}

export const jobDir = (id: string) => `${JOBS_DIR}/${assertJobId(id)}`;
export const workDir = (id: string) => `${WORKDIRS_DIR}/${assertJobId(id)}`;

/** Who syncs what from where: a mirror is kept per client user, machine and directory. */
export interface MirrorKey {
  /** The client user's uid: a uid with no passwd entry (containers) has no name. */
  uid: number | string;
  host: string;
  /** The client directory, absolute. */
  path: string;
}

export function mirrorDir(key: MirrorKey): string {
  const who = `${key.uid}@${key.host}:${key.path}`;
  return `${MIRRORS_DIR}/${createHash("sha256").update(who).digest("hex").slice(0, 24)}`;
}

/**
 * The layout as shell variables, set before every worker-side script runs, so the scripts
 * name no path of their own. Constants only: no user data is ever pasted into a script.
 */
export const SHELL_LAYOUT: Record<string, string> = {
  P_JOBS: JOBS_DIR,
  P_WORKDIRS: WORKDIRS_DIR,
  P_MIRRORS: MIRRORS_DIR,
  P_QUEUE: QUEUE_DIR,
  P_PART: SUFFIX.part,
  P_LOCK: SUFFIX.lock,
  P_SPARE: SUFFIX.spare,
  P_KEEP: SUFFIX.keep,
  P_TICK: SUFFIX.tick,
};
