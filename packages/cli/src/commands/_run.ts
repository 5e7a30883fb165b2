import { resolve } from "node:path";
import { assertSbatchArg, SLURM_MEM } from "@p/exec/protocol";
import { assertJobName, type Config, type JobRecord, type JobStore, type Worker } from "@p/store";
import type { ArgsDef } from "citty";
import { pc } from "../_color.ts";
import { EXIT, exitCodeFor, usage } from "../_errors.ts";
import { clock, doneLine, durationS, jobJson, table } from "../_format.ts";
import { endDetached, endOfOutput, interruptSignal, jobInput, sayReconnecting, stdoutSink } from "../_io.ts";
import { log } from "../_log.ts";
import { notifyEnd, pullResults } from "../lib/after.ts";
import { parseCpus, parseGpuCount, resolveAfter } from "../lib/capacity.ts";
import { parseDuration } from "../lib/duration.ts";
import { jobSurroundings, secretsOf, userEnvOf } from "../lib/env.ts";
import type { Followed } from "../lib/follow.ts";
import { type Member, resultJob, runGroup } from "../lib/group.ts";
import { runWatch } from "../lib/progress.ts";
import { type RunRequest, runJob } from "../lib/run.ts";
import { retryFor } from "../lib/workers.ts";

/**
 * How following a job ends for the user, for p, p logs -f and p-exec alike: the done line
 * and the job's exit code, or the detach hint and 130; a start cancelled by Ctrl+C too.
 */
export function endFollow(
  outcome: Followed | { kind: "cancelled" },
  out: { lastByte: number },
  job: { id: string; worker: string; resume: string },
): number {
  if (outcome.kind === "cancelled") {
    process.stderr.write(`${pc.dim("Cancelled; nothing was started.")}\n`);
    return EXIT.interrupted;
  }
  if (outcome.kind === "detached")
    return endDetached(`job ${job.id.slice(0, 8)} keeps running on ${job.worker}`, job.resume);
  endOfOutput(out, outcome.status);
  const { status } = outcome;
  process.stderr.write(`${doneLine(status.exitCode, status)}\n`);
  // (a job that never ran, stopped while queued or skipped, did not succeed: 1, as p wait says)
  return status.exitCode ?? (status.ran ? EXIT.failure : 1);
}

/** The flags of a job's surroundings, shared by p and p-exec run. */
export const jobArgs = {
  tty: {
    type: "boolean",
    alias: "t",
    description: "Run the job under a pseudo-terminal sized like this one (colours, line buffering, progress bars)",
  },
  env: {
    type: "string",
    description: "KEY=VALUE, or KEY for its value here: set in the job's environment (repeatable)",
  },
  "env-file": {
    type: "string",
    description: "Set the variables of this dotenv file in the job's environment (repeatable)",
  },
  timeout: {
    type: "string",
    description: "End the job after this long (90s, 30m, 2h): TERM, KILL 10 s later; exit 124",
  },
  secret: {
    type: "string",
    description: "KEY: its value here goes to the job's environment, never in an argv, file or record (repeatable)",
  },
  cpus: { type: "string", description: "Slurm workers: CPUs for the job (sbatch --cpus-per-task)" },
  mem: { type: "string", description: "Slurm workers: memory for the job (500M, 4G; sbatch --mem)" },
  "sbatch-arg": {
    type: "string",
    description: "Slurm workers: one more sbatch option, as --option=value (repeatable)",
  },
} as const satisfies ArgsDef;

/** The flags of a job's place in its worker's queue (p only). */
export const queueArgs = {
  exclusive: {
    type: "boolean",
    description: "Take the whole worker: wait until no other job of p's runs there, and let none start beside it",
  },
  gpus: { type: "string", description: "Wait for N of the worker's GPUs; the job gets them as CUDA_VISIBLE_DEVICES" },
  after: {
    type: "string",
    description: "Start once these jobs (ID[,ID...], same worker) have ended with exit 0; else end as skipped",
  },
  "after-any": { type: "string", description: "Start once these jobs (ID[,ID...], same worker) have ended, however" },
} as const satisfies ArgsDef;

/** A job's labels (p only): a name any job-id argument accepts, and tags. */
export const labelArgs = {
  name: { type: "string", description: "Name the job: p logs, stop, wait... accept the name as they accept its id" },
  tag: { type: "string", description: "Tag the job, for p ls --tag and p wait --tag (repeatable)" },
} as const satisfies ArgsDef;

/** What p's record keeps of the flags: the labels, and --env as given (p rerun reads it again). */
export function recordOptions(values: Record<string, unknown>) {
  const tags = (values.tag as string[] | undefined)?.map((t) => assertJobName(t, "tag"));
  const envArgs = values.env as string[] | undefined;
  const envFiles = (values["env-file"] as string[] | undefined)?.map((f) => resolve(f));
  return {
    ...(values.name !== undefined && { name: assertJobName(String(values.name)) }),
    ...(tags?.length && { tags: [...new Set(tags)] }),
    ...(envArgs?.length && { env_args: envArgs }),
    ...(envFiles?.length && { env_files: envFiles }),
  };
}

/** queueArgs as parsed, for runJob. */
export function queueOptions(values: Record<string, unknown>, store: JobStore, worker: Worker) {
  if (values.after !== undefined && values["after-any"] !== undefined)
    throw usage("give --after or --after-any, not both");
  const flag = values.after !== undefined ? "--after" : "--after-any";
  const after = (values.after ?? values["after-any"]) as string | undefined;
  return {
    ...(values.exclusive === true && { exclusive: true }),
    ...(values.gpus !== undefined && { gpus: parseGpuCount(values.gpus as string) }),
    ...(after !== undefined && {
      after: { ids: resolveAfter(store, after, worker, flag), any: flag === "--after-any" },
    }),
  };
}

/** Of jobArgs, those that may be given more than once. */
export const REPEATABLE = ["env", "env-file", "secret", "sbatch-arg"];

/** jobArgs as parsed, into what runJob takes: variables, terminal, time limit. */
export function jobOptions(values: Record<string, unknown>, config: Config) {
  return {
    ...jobSurroundings(config, Boolean(values.tty), userEnvOf(values)),
    ...(values.timeout !== undefined && { timeoutS: parseDuration(values.timeout as string) }),
    ...(values.secret !== undefined && { secrets: secretsOf(values.secret as string[], process.env) }),
    ...slurmOptions(values),
  };
}

/** The Slurm flags of jobArgs, checked here: a mistake is said before anything is synced. */
function slurmOptions(values: Record<string, unknown>) {
  const cpus = values.cpus === undefined ? undefined : parseCpus(String(values.cpus));
  const mem = values.mem as string | undefined;
  if (mem !== undefined && !SLURM_MEM.test(mem))
    throw usage(`--mem ${JSON.stringify(mem)} is not a size: give e.g. 500M or 4G`);
  const args = ((values["sbatch-arg"] as string[] | undefined) ?? []).map(assertSbatchArg);
  if (cpus === undefined && mem === undefined && !args.length) return {};
  return { slurm: { ...(cpus && { cpus }), ...(mem && { mem }), ...(args.length && { args }) } };
}

/**
 * Run a job for p (p -- cmd, p rerun): follow it to its end and exit with its code, or
 * print its id (its JSON with `json`) when detached.
 */
export async function runAndReport(
  req: Omit<RunRequest, "out" | "signal" | "retry" | "resume" | "onFollow" | "onQueued" | "watch">,
  how: ReportOptions,
): Promise<number> {
  const { worker } = req;
  const { json = false, notify } = how;
  const out = stdoutSink();
  const interrupt = interruptSignal();
  // the sync's progress on a terminal (never under --json), the phases' timings with --verbose
  const shown = runWatch({ line: Boolean(process.stderr.isTTY) && !json, timings: Boolean(how.verbose) });
  try {
    const outcome = await runJob({
      ...req,
      ...(!req.detach && jobInput()),
      out: shown.out(out),
      // (rsync reports its progress only when something shows it)
      ...(shown.watching && { watch: shown.watch }),
      signal: interrupt.signal,
      retry: retryFor(worker, sayReconnecting),
      resume: (id) => `p logs -f ${id.slice(0, 8)}`,
      onFollow: (job) => {
        if (process.stderr.isTTY) process.stderr.write(`${pc.dim(`job ${job.id.slice(0, 8)} on ${worker.name}`)}\n`);
      },
      onQueued: (why) =>
        process.stderr.write(`${pc.dim(`queued (${why}) on ${worker.name}; it starts when it can`)}\n`),
    });
    if (outcome.kind === "launched") {
      process.stdout.write(json ? `${JSON.stringify(jobJson(outcome.job))}\n` : `${outcome.job.id}\n`);
      return EXIT.ok;
    }
    if (outcome.kind === "cancelled") return endFollow(outcome, out, { id: "", worker: worker.name, resume: "" });
    const { id } = outcome.job;
    const code = endFollow(outcome, out, { id, worker: worker.name, resume: `p logs -f ${id.slice(0, 8)}` });
    if (outcome.kind === "ended") await afterEnd([outcome.job], req.store, notify);
    return code;
  } finally {
    shown.finish();
    interrupt.dispose();
  }
}

/** How p reports a run: JSON (detached), the word when it ends, the phases' timings. */
export interface ReportOptions {
  json?: boolean;
  notify?: Config | undefined;
  verbose?: boolean;
}

/** Once p has seen jobs end: their pulls (--pull), then the word that they ended (--notify). */
export async function afterEnd(jobs: JobRecord[], store: JobStore | undefined, notify?: Config): Promise<void> {
  for (const lines of await Promise.all(jobs.map((j) => pullResults(j, store))))
    for (const line of lines) process.stderr.write(`${line}\n`);
  const problem = notify ? await notifyEnd(notify, jobs) : undefined;
  if (problem) log.warn(problem);
}

const COLORS = [pc.cyan, pc.magenta, pc.yellow, pc.green, pc.blue, pc.red];

/**
 * Run a group of jobs for p (--on, --each): follow them all, each line prefixed with its
 * job's worker (and values), then a summary; exit 0 if all succeeded, else with the code
 * of the first, in order, that did not. Detached, print the group's id (its JSON with
 * `json`: the group and its jobs).
 */
export async function runGroupAndReport(
  members: Member[],
  req: Omit<RunRequest, "worker" | "out" | "signal" | "retry" | "resume" | "onFollow" | "onQueued">,
  how: ReportOptions,
): Promise<number> {
  const { json = false, notify } = how;
  const out = stdoutSink();
  const interrupt = interruptSignal();
  const colored = Boolean(process.stdout.isTTY) && pc.isColorSupported;
  // with --verbose, each job's phases' timings, behind its label, as it ends
  const watches = how.verbose ? members.map(() => runWatch({ line: false, timings: true })) : undefined;
  try {
    const { group, results } = await runGroup(members, {
      ...req,
      out,
      signal: interrupt.signal,
      retry: (worker) => retryFor(worker, sayReconnecting),
      prefix: (label, i) => (colored ? COLORS[i % COLORS.length]!(`[${label}] `) : `[${label}] `),
      onQueued: (why) => process.stderr.write(`${pc.dim(`queued (${why}); it starts when it can`)}\n`),
      onError: (label, err) => process.stderr.write(`[${label}] ${pc.red((err.message ?? "").split("\n")[0]!)}\n`),
      ...(watches && { watchFor: (i: number) => watches[i] }),
    });
    const short = group.slice(0, 8);
    const jobs = results.map(resultJob);
    if (req.detach) {
      if (json)
        process.stdout.write(`${JSON.stringify({ group, jobs: jobs.flatMap((j) => (j ? [jobJson(j)] : [])) })}\n`);
      else process.stdout.write(`${group}\n`);
      return results.some((r) => r.error) ? EXIT.failure : EXIT.ok;
    }
    if (results.some((r) => r.outcome?.kind === "detached" || r.outcome?.kind === "cancelled"))
      return endDetached(`group ${short} keeps running`, `p logs -f ${short}`);
    const rows = results.map((r, i) => {
      const j = jobs[i];
      return [
        r.label,
        j?.status ?? "failed",
        j?.exit_code === null || !j ? "-" : String(j.exit_code),
        j ? clock(durationS(j)) : "-",
      ];
    });
    process.stderr.write(`${table(["JOB", "STATUS", "EXIT", "DURATION"], rows)}\n`);
    const failed = results.findIndex((r, i) => r.error || jobs[i]?.status !== "done" || jobs[i]?.exit_code !== 0);
    const ok = results.length - results.filter((r, i) => r.error || jobs[i]?.exit_code !== 0).length;
    process.stderr.write(`${pc.dim(`group ${short}: ${ok} of ${results.length} succeeded`)}\n`);
    await afterEnd(
      jobs.flatMap((j) => (j ? [j] : [])),
      req.store,
      notify,
    );
    if (failed < 0) return EXIT.ok;
    const first = results[failed]!;
    if (first.error) return exitCodeFor(first.error);
    return jobs[failed]?.exit_code || EXIT.failure;
  } finally {
    interrupt.dispose();
  }
}
