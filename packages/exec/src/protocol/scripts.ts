import { PError } from "../errors.ts";
import { assertJobId, SHELL_LAYOUT } from "./layout.ts";
import { shq } from "./quote.ts";
import follow from "./sh/follow.sh" with { type: "text" };
import launch from "./sh/launch.sh" with { type: "text" };
import lib from "./sh/lib.sh" with { type: "text" };
import mirror from "./sh/mirror.sh" with { type: "text" };
import probe from "./sh/probe.sh" with { type: "text" };
import queue from "./sh/queue.sh" with { type: "text" };
import remove from "./sh/remove.sh" with { type: "text" };
import status from "./sh/status.sh" with { type: "text" };
import stop from "./sh/stop.sh" with { type: "text" };

/** Every worker-side script, by name: each one operation, run as one remote command. */
export const SCRIPTS = { launch, follow, status, stop, remove, mirror, probe } as const;
export type ScriptName = keyof typeof SCRIPTS;

/** The shared functions, for tests that check the scripts' syntax. */
export const LIBRARY = { lib, queue } as const;

const LAYOUT = `${Object.entries(SHELL_LAYOUT)
  .map(([k, v]) => `${k}=${shq(v)}`)
  .join("\n")}\n`;
// the layout and the shared functions, which a job's runner reads too (as $P_LIB)
const SHARED = `${LAYOUT}${lib}\n${queue}\n`;

/**
 * The whole text `sh -c` runs for a script: it starts in the home (which all layout paths
 * are relative to), with the layout and the shared functions, then the script.
 */
export function scriptText(name: ScriptName): string {
  const forRunner = name === "launch" ? `P_LIB=${shq(SHARED)}\n` : "";
  return `cd || exit 1\n${SHARED}${forRunner}${SCRIPTS[name]}`;
}

/**
 * The remote command line that runs a script with its arguments: `sh -c '<text>' p-<name>
 * 'arg'...`. Data travels only as quoted positional arguments, never inside the text; the
 * login shell may not be POSIX, so sh is named.
 */
export function scriptCommand(name: ScriptName, args: readonly string[]): string {
  return [`sh -c ${shq(scriptText(name))} p-${name}`, ...args.map(shq)].join(" ");
}

/** What the worker needs to start a job. */
export interface LaunchSpec {
  id: string;
  /** The command line, run by the worker user's login shell. */
  command: string;
  /** The client's directory (display only). */
  cwd: string;
  /** The worker's name (display only). */
  worker: string;
  /** An existing directory to run in (absolute, or relative to the home), instead of its own work dir. */
  dir?: string;
  /** Variables set in the job's environment before its login shell starts. */
  env?: Record<string, string>;
  /**
   * Variables for the job's environment that no argv, file or output may show: they
   * travel on the launch's stdin (see secretInput), never in its command line.
   */
  secrets?: Record<string, string>;
  /** Run the job under a pseudo-terminal of this size. */
  tty?: { cols: number; rows: number };
  /** Seconds after which the job is ended (TERM, KILL 10 s later), with exit code 124. */
  timeoutS?: number;
  /** The worker's capacity, which the queue holds jobs to (none: no limit). */
  capacity?: Capacity;
  /** Take the whole worker: wait until no other job of p's runs, and let none start beside it. */
  exclusive?: boolean;
  /** Wait for this many of the worker's GPUs to be free; the job gets them as CUDA_VISIBLE_DEVICES. */
  gpus?: number;
  /** Start once these jobs have ended: with exit 0 (else the job is skipped), or `any` way. */
  after?: { ids: string[]; any?: boolean };
}

/** What a worker offers the queue: slots (jobs at once) and GPUs (their indexes). */
export interface Capacity {
  slots?: number;
  gpus?: string[];
}

/** The queue's arguments of launch.sh: the worker's capacity, what the job needs, what it runs after. */
function queueArgs(spec: LaunchSpec): string[] {
  const gpuList = spec.capacity?.gpus ?? [];
  for (const g of gpuList)
    if (!GPU_ID.test(g)) throw new PError("invalid_argument", `GPU ${JSON.stringify(g)} is not a GPU id`);
  const slots = spec.capacity?.slots;
  const capacity = `${slots === undefined ? "-" : Math.max(1, Math.floor(slots))} ${gpuList.join(",") || "-"}`;
  const gpus = Math.max(0, Math.floor(spec.gpus ?? 0));
  if (gpus > gpuList.length)
    throw new PError(
      "invalid_argument",
      `the job needs ${gpus} GPU${gpus === 1 ? "" : "s"} and worker ${spec.worker} has ${gpuList.length || "none"}`,
    );
  const needs = `${spec.exclusive ? "all" : "1"} ${gpus}`;
  const after = spec.after?.ids.length
    ? `${spec.after.any ? "any" : "ok"} ${spec.after.ids.map(assertJobId).join(" ")}`
    : "-";
  return [capacity, needs, after];
}

/** A variable's name, as the job's environment takes it. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A GPU's index or id, as CUDA_VISIBLE_DEVICES takes it. */
export const GPU_ID = /^[A-Za-z0-9_.:-]+$/;

const assertEnvName = (name: string) => {
  if (!ENV_NAME.test(name)) throw new PError("invalid_argument", `${JSON.stringify(name)} is not a variable name`);
  return name;
};

/**
 * What a launch reads on its stdin before anything else: the secrets, as shell
 * assignments (`export NAME='value'`) that launch.sh evaluates; launchCommand passes
 * only their length. Empty without secrets.
 */
export function secretInput(spec: LaunchSpec): string {
  return Object.entries(spec.secrets ?? {})
    .map(([name, value]) => `export ${assertEnvName(name)}=${shq(value)}\n`)
    .join("");
}

/**
 * Record and start a job; with `follow`, stream its output to its end in the same round
 * trip. With secrets, secretInput(spec) must be written to the command's stdin.
 */
export function launchCommand(spec: LaunchSpec, follow: boolean): string {
  if (spec.dir === "")
    throw new PError("invalid_argument", "the directory to run in is empty; give a path or leave it out");
  const env = Object.entries(spec.env ?? {}).map(([name, value]) => `${assertEnvName(name)}=${value}`);
  const secretBytes = String(Buffer.byteLength(secretInput(spec)));
  const tty = spec.tty ? `${Math.max(1, Math.floor(spec.tty.cols))}x${Math.max(1, Math.floor(spec.tty.rows))}` : "-";
  const mode = follow ? "follow" : "detach";
  const timeout = spec.timeoutS === undefined ? "-" : String(Math.max(1, Math.ceil(spec.timeoutS)));
  const args = [mode, assertJobId(spec.id), spec.command, spec.cwd, spec.worker, spec.dir ?? "", tty, timeout];
  return scriptCommand("launch", [...args, ...queueArgs(spec), secretBytes, ...env]);
}

/** A job's output from byte `offset`; with `follow`, until the job ends. Then its status line. */
export function followCommand(id: string, offset = 0, follow = true): string {
  return scriptCommand("follow", [assertJobId(id), String(Math.max(0, Math.floor(offset))), follow ? "yes" : "no"]);
}

/** The state of each job, in one round trip. */
export function statusCommand(ids: readonly string[]): string {
  return scriptCommand("status", ids.map(assertJobId));
}

/** Stop a job: TERM its process group, KILL after `graceS` seconds; then its state. */
export function stopCommand(id: string, graceS = 10): string {
  return scriptCommand("stop", [String(Math.round(graceS * 10)), assertJobId(id)]);
}

export interface RemoveOptions {
  /** Stop jobs still running first (else they are removed as they are). */
  stop?: boolean;
  /** Only measure. */
  dryRun?: boolean;
  /** Also sweep what no job owns, with mirrors unused for this many days. */
  sweepDays?: number;
}

/** Measure and remove jobs' dirs (and sweep leftovers), in one round trip. */
export function removeCommand(ids: readonly string[], opts: RemoveOptions = {}): string {
  const sweep = opts.sweepDays === undefined ? "-" : String(Math.floor(opts.sweepDays));
  return scriptCommand("remove", [
    opts.stop ? "yes" : "no",
    opts.dryRun ? "no" : "yes",
    sweep,
    ...ids.map(assertJobId),
  ]);
}

/**
 * rsync's remote command for a sync into a job's work dir by way of the client
 * directory's mirror (see mirror.sh); rsync appends its own arguments.
 */
export function mirrorCommand(mirrorDir: string, workDir: string): string {
  return scriptCommand("mirror", [mirrorDir, workDir.replace(/\/+$/, "")]);
}

/** What the worker has: tools p needs, cores, memory. */
export function probeCommand(): string {
  return scriptCommand("probe", []);
}
