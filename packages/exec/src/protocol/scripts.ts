import { PError } from "../errors.ts";
import { assertJobId, P_DIR, SHELL_LAYOUT } from "./layout.ts";
import { shq } from "./quote.ts";
import batch from "./sh/batch.sh" with { type: "text" };
import follow from "./sh/follow.sh" with { type: "text" };
import input from "./sh/input.sh" with { type: "text" };
import launch from "./sh/launch.sh" with { type: "text" };
import lib from "./sh/lib.sh" with { type: "text" };
import mirror from "./sh/mirror.sh" with { type: "text" };
import probe from "./sh/probe.sh" with { type: "text" };
import queue from "./sh/queue.sh" with { type: "text" };
import remove from "./sh/remove.sh" with { type: "text" };
import slurm from "./sh/slurm.sh" with { type: "text" };
import status from "./sh/status.sh" with { type: "text" };
import stop from "./sh/stop.sh" with { type: "text" };

/**
 * A script as the worker gets it: without its comment lines, nearly half its bytes, which
 * every remote command would carry (and on a new connection, a round trip more). No line
 * of these scripts' data starts with `#`: a comment line is a comment wherever it is.
 */
export const bare = (text: string) => text.replace(/^[ \t]*#(?!!).*\n/gm, "");

/** Every worker-side script, by name: each one operation, run as one remote command. */
export const SCRIPTS = {
  launch: bare(launch),
  follow: bare(follow),
  input: bare(input),
  status: bare(status),
  stop: bare(stop),
  remove: bare(remove),
  mirror: bare(mirror),
  probe: bare(probe),
} as const;
export type ScriptName = keyof typeof SCRIPTS;

/** The shared functions, for tests that check the scripts' syntax. */
export const LIBRARY = { lib, queue, slurm } as const;

// the layout and the shared functions, which a job's runner reads too (as $P_LIB)
const SHARED = bare(`${SHELL_LAYOUT}\n${lib}\n${queue}\n${slurm}\n`);

/**
 * The shared text with only the functions `text` calls, and those they call: each
 * function is a block from `name() {` to the first `}` at the start of a line (as every
 * one of them is written). All else (the layout, the texts of the processes a job starts
 * as) stays.
 */
export function sharedFor(text: string, shared = SHARED): string {
  const blocks = shared.split(/(?<=^\}\n)|(?=^[a-z_]+\(\) \{$)/m);
  const nameOf = (block: string) => /^([a-z_]+)\(\) \{$/m.exec(block.split("\n", 1)[0]!)?.[1];
  const used = new Set<string>();
  const calls = (t: string) => {
    for (const block of blocks) {
      const name = nameOf(block);
      if (name && !used.has(name) && new RegExp(`\\b${name}\\b`).test(t)) {
        used.add(name);
        calls(block);
      }
    }
  };
  calls(text);
  return blocks
    .filter((b) => {
      const name = nameOf(b);
      return !name || used.has(name);
    })
    .join("");
}

/**
 * The batch script a Slurm worker's job runs as (see batch.sh): the shared functions and
 * the batch's own text, with no data in it (that travels as its arguments).
 */
export const BATCH_SCRIPT = `#!/bin/sh\n${SHARED}${bare(batch)}`;

/** Each script's text, made once per process (an --on run sends the same ones to every worker). */
const texts = new Map<ScriptName, string>();

/**
 * The whole text `sh -c` runs for a script: it starts in the home (which relative paths
 * are relative to), takes the worker's root from its first argument, then has the layout
 * and the shared functions, then the script.
 */
export function scriptText(name: ScriptName): string {
  let text = texts.get(name);
  if (text === undefined) {
    const start = "cd || exit 1\nP_ROOT=$1\nshift\n";
    // a launch hands the shared text on (to the job's runner, or into a Slurm job's batch
    // script), so it gets it once, as a string it then runs
    const shared =
      name === "launch"
        ? `P_LIB=${shq(SHARED)}\neval "$P_LIB"\nP_BATCH=${shq(bare(batch))}\n`
        : sharedFor(SCRIPTS[name]);
    texts.set(name, (text = `${start}${shared}${SCRIPTS[name]}`));
  }
  return text;
}

/**
 * The remote command line that runs a script with its arguments: `sh -c '<text>' p-<name>
 * '<root>' 'arg'...`. Data travels only as quoted positional arguments, never inside the
 * text; the login shell may not be POSIX, so sh is named.
 */
export function scriptCommand(name: ScriptName, args: readonly string[], root = P_DIR): string {
  return [`sh -c ${shq(scriptText(name))} p-${name}`, ...[root, ...args].map(shq)].join(" ");
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
  /** Submit the job to Slurm (the worker is a login node) rather than run it: see sbatchOptions. */
  slurm?: SlurmSubmit;
  /**
   * The job reads the client's stdin, which inputCommand, sent with the launch, passes on
   * (a followed launch on a worker that runs its jobs itself; else it reads nothing).
   */
  input?: boolean;
}

/** What a Slurm worker's job asks of Slurm, beside the spec's GPUs, exclusivity and time limit. */
export interface SlurmSubmit {
  partition?: string;
  account?: string;
  /** CPUs for the job (sbatch --cpus-per-task). */
  cpus?: number;
  /** Memory for the job, as sbatch --mem takes it: 500M, 4G. */
  mem?: string;
  /** More sbatch options, each one word: `--constraint=a100`. */
  args?: string[];
}

/** A size as sbatch's --mem takes it: a number, then K, M, G or T (M if none). */
export const SLURM_MEM = /^\d+[KMGT]?$/i;

/** Options of sbatch's that p sets itself, with what to use instead (or why not). */
const OWN_SBATCH_OPTIONS: Record<string, string> = {
  chdir: "p runs the job in its work dir",
  output: "the job's output is its log (p logs)",
  error: "the job's output is its log (p logs)",
  input: "a job has no input",
  export: "use --env or --secret",
  "export-file": "use --env-file",
  wrap: "the command follows --",
  parsable: "p reads sbatch's answer itself",
  dependency: "use --after or --after-any",
  "kill-on-invalid-dep": "p sets it",
  time: "use --timeout",
  array: "use one p run per job",
  "cpus-per-task": "use --cpus",
  mem: "use --mem",
  gpus: "use --gpus",
  exclusive: "use --exclusive",
  partition: "set the worker's partition with p worker set",
  account: "set the worker's account with p worker set",
  "open-mode": "p keeps the log",
  "job-name": "use --name",
};

/** One sbatch option as --sbatch-arg takes it: `--name` or `--name=value`, one word, never a shell string. */
export function assertSbatchArg(arg: string): string {
  const m = /^--([a-z][a-z0-9-]*)(=[^\n\0]*)?$/.exec(arg);
  if (!m)
    throw new PError(
      "invalid_argument",
      `--sbatch-arg ${JSON.stringify(arg)} is not one sbatch option: ` +
        "give --option or --option=value, e.g. --sbatch-arg=--constraint=a100",
    );
  const instead = OWN_SBATCH_OPTIONS[m[1]!];
  if (instead) throw new PError("invalid_argument", `--sbatch-arg ${m[1]}: p sets --${m[1]} itself (${instead})`);
  return arg;
}

const positive = (n: number | undefined, what: string) => {
  if (n === undefined) return undefined;
  if (!Number.isInteger(n) || n < 1) throw new PError("invalid_argument", `${what} must be a whole number above 0`);
  return n;
};

/**
 * The sbatch options of a Slurm worker's job, one word each (launch.sh passes them to
 * sbatch as arguments, adding --chdir and --dependency; no shell reads them): p's own,
 * its name, the worker's partition and account,
 * the resources it asks for, its time limit in whole minutes (Slurm's unit; batch.sh
 * ends the job at the exact second), then the user's own.
 */
export function sbatchOptions(spec: LaunchSpec): string[] {
  const s = spec.slurm ?? {};
  const word = (v: string, what: string) => {
    if (!/^[^\s\0'"\\]+$/.test(v)) throw new PError("invalid_argument", `${what} ${JSON.stringify(v)} is not one word`);
    return v;
  };
  // (p's own: the job's output is its log, its environment the user's own; a job whose
  // dependency failed ends at once; a job whose node fails is not run again, as on any
  // worker, unless the user's own --requeue says so)
  const options = [
    "--parsable",
    "--export=NONE",
    "--output=/dev/null",
    "--error=/dev/null",
    "--kill-on-invalid-dep=yes",
    "--no-requeue",
    `--job-name=p-${assertJobId(spec.id).slice(0, 8)}`,
  ];
  if (s.partition) options.push(`--partition=${word(s.partition, "partition")}`);
  if (s.account) options.push(`--account=${word(s.account, "account")}`);
  const cpus = positive(s.cpus, "--cpus");
  if (cpus) options.push(`--cpus-per-task=${cpus}`);
  if (s.mem !== undefined) {
    if (!SLURM_MEM.test(s.mem))
      throw new PError("invalid_argument", `--mem ${JSON.stringify(s.mem)} is not a size: give e.g. 500M or 4G`);
    options.push(`--mem=${s.mem.toUpperCase()}`);
  }
  const gpus = positive(spec.gpus || undefined, "--gpus");
  if (gpus) options.push(`--gpus=${gpus}`);
  if (spec.exclusive) options.push("--exclusive");
  if (spec.timeoutS !== undefined) options.push(`--time=${Math.max(1, Math.ceil(spec.timeoutS / 60))}`);
  for (const arg of s.args ?? []) options.push(assertSbatchArg(arg));
  return options;
}

/** What a worker offers the queue: slots (jobs at once) and GPUs (their indexes). */
export interface Capacity {
  slots?: number;
  gpus?: string[];
}

/** A Slurm job's AFTER argument of launch.sh: the jobs it runs after, which launch.sh makes Slurm dependencies. */
function slurmAfter(spec: LaunchSpec): string {
  return spec.after?.ids.length ? `${spec.after.any ? "any" : "ok"} ${spec.after.ids.map(assertJobId).join(" ")}` : "-";
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
  return [capacity, needs, slurmAfter(spec)];
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
 * trip. With secrets, secretInput(spec) must be written to the command's stdin. Sent
 * `ahead`, it waits for a line "go" on stdin (after the secrets) before it does anything,
 * and does nothing if stdin ends first (exit SCRIPT_EXIT.withdrawn).
 */
export function launchCommand(spec: LaunchSpec, follow: boolean, root?: string, ahead = false): string {
  if (spec.dir === "")
    throw new PError("invalid_argument", "the directory to run in is empty; give a path or leave it out");
  const env = Object.entries(spec.env ?? {}).map(([name, value]) => `${assertEnvName(name)}=${value}`);
  const secretBytes = String(Buffer.byteLength(secretInput(spec)));
  const tty = spec.tty ? `${Math.max(1, Math.floor(spec.tty.cols))}x${Math.max(1, Math.floor(spec.tty.rows))}` : "-";
  const mode = `${ahead ? "ahead-" : ""}${follow ? "follow" : "detach"}`;
  const timeout = spec.timeoutS === undefined ? "-" : String(Math.max(1, Math.ceil(spec.timeoutS)));
  const args = [mode, assertJobId(spec.id), spec.command, spec.cwd, spec.worker, spec.dir ?? "", tty, timeout];
  const queue = spec.slurm ? ["- -", "1 0", slurmAfter(spec)] : queueArgs(spec);
  const batch = spec.slurm ? sbatchOptions(spec).join("\n") : "-";
  const input = spec.input && follow && !spec.slurm ? "yes" : "-";
  return scriptCommand("launch", [...args, ...queue, secretBytes, batch, input, ...env], root);
}

/** A job's output from byte `offset`; with `follow`, until the job ends. Then its status line. */
export function followCommand(id: string, offset = 0, follow = true, root?: string): string {
  const args = [assertJobId(id), String(Math.max(0, Math.floor(offset))), follow ? "yes" : "no"];
  return scriptCommand("follow", args, root);
}

/** Pass what comes on the command's stdin to job `id`'s, launched with `input` (see input.sh). */
export function inputCommand(id: string, root?: string): string {
  return scriptCommand("input", [assertJobId(id)], root);
}

/** The state of each job, in one round trip. */
export function statusCommand(ids: readonly string[], root?: string): string {
  return scriptCommand("status", ids.map(assertJobId), root);
}

/** Stop a job: TERM its process group, KILL after `graceS` seconds; then its state. */
export function stopCommand(id: string, graceS = 10, root?: string): string {
  return scriptCommand("stop", [String(Math.round(graceS * 10)), assertJobId(id)], root);
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
export function removeCommand(ids: readonly string[], opts: RemoveOptions = {}, root?: string): string {
  const sweep = opts.sweepDays === undefined ? "-" : String(Math.floor(opts.sweepDays));
  return scriptCommand(
    "remove",
    [opts.stop ? "yes" : "no", opts.dryRun ? "no" : "yes", sweep, ...ids.map(assertJobId)],
    root,
  );
}

/** How a sync into a job's work dir goes, for its remote command (see mirrorCommand). */
export interface MirrorSyncOptions {
  /** The worker's root, where it is not `.p` in the home. */
  root?: string;
  /** The client user's repository (mirrorFamily), whose other mirrors may seed a first sync. */
  family?: string;
  /** A first sync that compares by checksum, and so may take files from another mirror of the family. */
  seed?: boolean;
  /**
   * The mark the mirror holds once this sync has ended well (tokenFor), and the one it must
   * hold now for a sync of only what changed since then (else the worker refuses it, and
   * says STALE_MARK).
   */
  token?: { next: string; expect?: string };
  /**
   * Another sync of the same tree into another job's work dir comes right after this one
   * (a group's): the mirror stays as it is, and the job's work dir is copied from it where
   * no spare is ready.
   */
  follows?: boolean;
  /**
   * The mirror holds this tree already (the mark `token.expect`, which the sync before in
   * the same group left): rsync sends nothing, and the job's work dir is copied from the
   * mirror beside the copies of the group's other jobs there. The number is this copy's
   * place among them (from 0): as many are made at once as the worker has cores.
   */
  copy?: number;
}

const TOKEN = /^[A-Za-z0-9_-]{8,64}$/;

/**
 * rsync's remote command for a sync into a job's work dir by way of the client
 * directory's mirror (see mirror.sh); rsync appends its own arguments.
 */
export function mirrorCommand(mirrorDir: string, workDir: string, opts: MirrorSyncOptions = {}): string {
  const { family, token } = opts;
  if (family !== undefined && !/^[0-9a-f]{16,64}$/.test(family))
    throw new PError("invalid_argument", `mirror family ${JSON.stringify(family)} is not a hash`);
  for (const t of [token?.next, token?.expect])
    if (t !== undefined && !TOKEN.test(t))
      throw new PError("invalid_argument", `mirror token ${JSON.stringify(t)} is not one`);
  if (opts.copy !== undefined && token?.expect === undefined)
    throw new PError("invalid_argument", "a copy of the mirror needs the mark the mirror holds");
  const args = [
    mirrorDir,
    workDir.replace(/\/+$/, ""),
    family ?? "-",
    opts.seed ? "yes" : "no",
    token?.expect ?? "-",
    token?.next ?? "-",
    opts.copy !== undefined ? `copy:${Math.max(0, Math.floor(opts.copy))}` : opts.follows ? "yes" : "no",
  ];
  return scriptCommand("mirror", args, opts.root);
}

/** What the worker has: tools p needs, cores, memory, load; with `slurm`, Slurm's tools too. */
export function probeCommand(root?: string, slurm = false): string {
  return scriptCommand("probe", slurm ? ["slurm"] : [], root);
}
