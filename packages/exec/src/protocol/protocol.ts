/**
 * What the worker-side scripts say, and how it is read: the marker lines, the exit codes
 * they choose, and a parser for each report. Pure, with table tests.
 */

/** Exit codes the scripts choose (others are a tool's own, e.g. rsync's). */
export const SCRIPT_EXIT = {
  /** launch.sh: the directory named to run in does not exist. */
  noDirectory: 2,
  /** follow.sh, stop.sh: no such job on the worker. */
  noJob: 3,
  /** launch.sh: a launch sent ahead was called off (its sync did not end well). */
  withdrawn: 4,
  /** mirror.sh: the work dir could not be made from the mirror (rsync's "file I/O error"). */
  copyFailed: 11,
  /** mirror.sh: the mirror's or work dir's parent could not be made. */
  noParent: 12,
  /** mirror.sh: a sync of only what changed refused, the mirror not being what it was told (STALE_MARK). */
  stale: 13,
  /** launch.sh: setsid is missing. */
  noSetsid: 127,
} as const;

/**
 * mirror.sh's stderr line when it refuses a sync of only what changed since a sync whose
 * mark the mirror no longer holds: the client then syncs the whole tree.
 */
export const STALE_MARK = "p-mirror-stale";
/**
 * mirror.sh's stderr line when the mirror itself became the job's work dir (a first run):
 * what the sync left there is the job's now, and no later sync can build on it.
 */
export const MOVED_MARK = "p-mirror-moved";
/** The follow script's first stderr line, once it has found the job (after a launch: it has started). */
export const FOLLOW_MARK = "p-follow";
/** Prefix of the stderr line of a followed launch whose job waits in the queue: `p-queued <why>`. */
export const QUEUED_MARK = "p-queued ";
/** Prefix of the stderr line of a followed launch on a Slurm worker: `p-slurm <Slurm's job id>`. */
export const SUBMITTED_MARK = "p-slurm ";
/** Prefix of the follow script's last stderr line (see parseFollowStatus). */
export const STATUS_MARK = "p-status ";

export interface FollowStatus {
  /** Null if the job has no exit code: it is lost, or it never ran (`ran` false). */
  exitCode: number | null;
  endedAt: number | null;
  /** When it began to run (after its sync and any wait in the queue), by the worker's clock; null if never. */
  startedAt: number | null;
  /** Ended by `stop`. */
  stopped: boolean;
  /** Ended by its time limit (its exit code is then 124). */
  timedOut: boolean;
  /** Never ran: a job it runs after did not succeed. */
  skipped: boolean;
  /** False if the job ended without running (stopped while queued, or skipped). */
  ran: boolean;
  /** Size of the whole log, in bytes, when the status was read. */
  size: number;
}

/** How a job that has ended was ended (end_mark in lib.sh). */
type EndMark = "stopped" | "timeout" | "skipped" | "-";
const END_MARKS: readonly string[] = ["stopped", "timeout", "skipped", "-"];
const marks = (mark: EndMark) => ({
  stopped: mark === "stopped",
  timedOut: mark === "timeout",
  skipped: mark === "skipped",
});

/** A number a script's line gives, or null for its "-". */
const numberOf = (field: string) => (field === "-" ? null : Number(field));

/**
 * `p-status <exit code|-|unknown> <ended_at|-> <stopped|timeout|skipped|-> <started_at|->
 * <log size>` (- for a job that never ran); undefined if `line` is not one.
 */
export function parseFollowStatus(line: string): FollowStatus | undefined {
  const m = /^p-status (\d+|-|unknown) (\d+|-) (stopped|timeout|skipped|-) (\d+|-) +(\d+)$/.exec(line.trim());
  if (!m) return undefined;
  return {
    exitCode: /^\d+$/.test(m[1]!) ? Number(m[1]) : null,
    endedAt: numberOf(m[2]!),
    startedAt: numberOf(m[4]!),
    ...marks(m[3] as EndMark),
    ran: m[1] !== "-",
    size: Number(m[5]),
  };
}

/** What Slurm said of a job (a Slurm worker's): its job id, and its state, node and reason if it still knows it. */
export interface SlurmInfo {
  jobId: string;
  state?: string;
  node?: string;
  reason?: string;
}

/** What a worker says of a job (and, of a Slurm worker's job, Slurm). */
export type RemoteState = JobState & { slurm?: SlurmInfo };

type JobState =
  /** Running; since `startedAt` (the worker's clock), where the worker has written it yet. */
  | { state: "running"; startedAt?: number }
  /** Waiting in the worker's queue, for: slot, gpu, exclusive, or `after <short id>`. */
  | { state: "queued"; waitingFor: string }
  /** Ended; `exitCode` null if it never ran (stopped while queued, or skipped). */
  | {
      state: "exited";
      exitCode: number | null;
      endedAt: number | null;
      /** When it began to run; null if it never did (or the worker cannot say). */
      startedAt: number | null;
      stopped: boolean;
      timedOut: boolean;
      skipped: boolean;
    }
  /** The process is gone and left no exit code. */
  | { state: "lost" }
  /** No such job dir. */
  | { state: "gone" };

/** One `<id> <state...>` line (see job_state in lib.sh); undefined if it is not one. */
export function parseStateLine(line: string): [string, JobState] | undefined {
  const [id, state, code, ended, mark, began, ...rest] = line.trim().split(" ");
  if (!id) return undefined;
  if (state === "queued" && code !== undefined)
    return [id, { state, waitingFor: [code, ended, mark, began, ...rest].join(" ").trim() }];
  if (rest.length) return undefined;
  if ((state === "lost" || state === "gone") && code === undefined) return [id, { state }];
  if (state === "running" && ended === undefined && /^(\d+)?$/.test(code ?? ""))
    return [id, code ? { state, startedAt: Number(code) } : { state }];
  const field = /^(\d+|-)$/;
  if (state !== "exited" || ![code, ended, began].every((f) => field.test(f ?? ""))) return undefined;
  if (!END_MARKS.includes(mark ?? "")) return undefined;
  return [
    id,
    {
      state,
      exitCode: numberOf(code!),
      endedAt: numberOf(ended!),
      startedAt: numberOf(began!),
      ...marks(mark as EndMark),
    },
  ];
}

/** `<id> slurm <job id> <state|-> <node|-> <reason|->` (see slurm_info in slurm.sh). */
function parseSlurmLine(line: string): [string, SlurmInfo] | undefined {
  const m = /^(\S+) slurm (\d+|-) (\S+) (\S+) (.+)$/.exec(line.trim());
  if (!m || m[2] === "-") return undefined;
  const known = (v: string) => (v === "-" || v === "" ? undefined : v);
  const [state, node, reason] = [known(m[3]!), known(m[4]!), known(m[5]!)];
  return [m[1]!, { jobId: m[2]!, ...(state && { state }), ...(node && { node }), ...(reason && { reason }) }];
}

/** The status script's report: each job's state, with what Slurm says of a Slurm worker's. */
export function parseStatusReport(text: string): Map<string, RemoteState> {
  const states = new Map<string, RemoteState>();
  const slurm = new Map<string, SlurmInfo>();
  for (const line of text.split("\n")) {
    const info = parseSlurmLine(line);
    if (info) slurm.set(...info);
    const parsed = info ? undefined : parseStateLine(line);
    if (parsed) states.set(...parsed);
  }
  for (const [id, info] of slurm) {
    const state = states.get(id);
    if (state) states.set(id, { ...state, slurm: info });
  }
  return states;
}

export interface StopReport {
  /** False when the job had ended by itself, before or while being stopped. */
  stopped: boolean;
  state?: RemoteState;
}

/** stop.sh's report: `stopped` or `finished`, then the state line. */
export function parseStopReport(text: string): StopReport | undefined {
  const [first, second = ""] = text.split("\n");
  if (first !== "stopped" && first !== "finished") return undefined;
  return { stopped: first === "stopped", state: parseStateLine(second)?.[1] };
}

/** remove.sh's report: each job's size in bytes (only the jobs it found a line for). */
export function parseSizes(text: string): Map<string, number> {
  const sizes = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^(\S+) (\d+)$/.exec(line.trim());
    if (m) sizes.set(m[1]!, Number(m[2]) * 1024);
  }
  return sizes;
}

/** The sweep's report: each leftover path and its size in bytes. */
export function parseLeftovers(text: string): { path: string; bytes: number }[] {
  return [...text.matchAll(/^leftover (\d+) (.+)$/gm)].map((m) => ({ path: m[2]!, bytes: Number(m[1]) * 1024 }));
}

/** What a worker has, as probe.sh reports it. */
export interface Probe {
  rsync: boolean;
  setsid: boolean;
  flock: boolean;
  cores?: number;
  memBytes?: number;
  /** The GPUs' indexes (from nvidia-smi -L), if it has any. */
  gpus?: string[];
  /** The 1-minute load average, and p's jobs there running or queued. */
  load1?: number;
  active?: number;
  /** The worker's user and home. */
  user?: string;
  home?: string;
  /** Where sbatch is (a Slurm login node): its version, its other tools, and whether slurmctld answers. */
  slurm?: { version: string; squeue: boolean; scancel: boolean; answers: boolean };
}

export function parseProbe(text: string): Probe {
  const facts = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^(\S+) (.*)$/.exec(line);
    if (m) facts.set(m[1]!, m[2]!);
  }
  const num = (k: string) => (/^\d+$/.test(facts.get(k) ?? "") ? Number(facts.get(k)) : undefined);
  const mem = num("mem_kib");
  return {
    rsync: facts.get("rsync") === "yes",
    setsid: facts.get("setsid") === "yes",
    flock: facts.get("flock") === "yes",
    ...(num("cores") !== undefined && { cores: num("cores") }),
    ...(mem !== undefined && { memBytes: mem * 1024 }),
    ...(/^[0-9,]+$/.test(facts.get("gpus") ?? "") && { gpus: facts.get("gpus")!.split(",").filter(Boolean) }),
    ...(/^\d+(\.\d+)?$/.test(facts.get("load1") ?? "") && { load1: Number(facts.get("load1")) }),
    ...(num("active") !== undefined && { active: num("active") }),
    ...(facts.get("user") && { user: facts.get("user") }),
    ...(facts.get("home")?.startsWith("/") && { home: facts.get("home") }),
    ...(facts.has("slurm") && {
      slurm: {
        version: facts.get("slurm") ?? "",
        squeue: facts.get("squeue") === "yes",
        scancel: facts.get("scancel") === "yes",
        answers: facts.get("slurm_answers") === "yes",
      },
    }),
  };
}
