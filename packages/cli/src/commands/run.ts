import { PError } from "@p/exec/protocol";
import { JobStore, loadConfig, pickWorker, type Worker } from "@p/store";
import { defineCommand } from "citty";
import { jsonArg, splitCommand, strictArgs } from "../_args.ts";
import { pc } from "../_color.ts";
import { usage } from "../_errors.ts";
import { parseOn, placeByCapacity, planGroup, probeCandidates, roomText, sweep } from "../lib/group.ts";
import {
  jobArgs,
  jobOptions,
  labelArgs,
  queueArgs,
  queueOptions,
  REPEATABLE,
  recordOptions,
  runAndReport,
  runGroupAndReport,
} from "./_run.ts";

const USAGE =
  "p [worker | --on a,b|all] [--each K=v1,v2] [-n] [-d] [-t] [--timeout DUR] [--exclusive] [--gpus N] " +
  "[--after ID[,ID]] -- <command>";

const args = {
  worker: { type: "positional", required: false, description: "Worker to run on (default: the default worker)" },
  "no-sync": { type: "boolean", alias: "n", description: "Do not sync the current directory first" },
  detach: { type: "boolean", alias: "d", description: "Start the job, print its id and return" },
  on: {
    type: "string",
    description: "Run on each of these workers at once (a,b,c, or all), as one group: prefixed output, a summary",
  },
  any: {
    type: "boolean",
    description:
      "Run on the worker with the most free capacity (of all, or of a,b,c given after it); with --each, spread",
  },
  each: {
    type: "string",
    description: "KEY=v1,v2,...: one job per value (repeatable: every combination), with KEY set, as one group",
  },
  pull: {
    type: "string",
    description: "Once the job ends (whatever its code), copy PATH from its work dir to here (repeatable)",
  },
  notify: { type: "boolean", description: "Say when the job ends, as notify: in config.yaml says (default: desktop)" },
  ...jobArgs,
  ...queueArgs,
  ...labelArgs,
  ...jsonArg,
} as const;

/** --pull PATH...: pulled into this directory once the job ends (by p wait or p logs -f if detached). */
function pullOptions(values: Record<string, unknown>) {
  const paths = (values.pull as string[] | undefined) ?? [];
  for (const path of paths)
    if (!path.trim() || path.startsWith("/") || path.split("/").includes(".."))
      throw usage(`--pull ${JSON.stringify(path)} is not a path inside the job's work dir`);
  return paths.length ? { pull: paths, pull_to: process.cwd() } : {};
}

/** --any: probe the candidates at once and place `count` jobs by free capacity, saying where. */
async function chooseAny(candidates: Worker[], count: number): Promise<Worker[]> {
  if (candidates.length === 0)
    throw new PError("worker_not_found", "--any: no worker is registered; add one with: p worker register user@host");
  const probed = await probeCandidates(candidates);
  for (const c of probed)
    if (c.error) process.stderr.write(`${pc.dim(`--any: skipped ${c.worker.name} (${c.error})`)}\n`);
  const placed = placeByCapacity(probed, count);
  const chosen = [...new Set(placed)].map((w) => probed.find((c) => c.worker === w)!);
  process.stderr.write(`${pc.dim(`--any: ${chosen.map(roomText).join(", ")}`)}\n`);
  return placed;
}

export default defineCommand({
  meta: {
    name: "run",
    description: `Sync the current directory to a worker and run a command there: ${USAGE}`,
  },
  args,
  async run({ rawArgs }) {
    const { options, argv } = splitCommand(rawArgs, USAGE);
    const { values, positionals } = strictArgs(args, options, "run", [...REPEATABLE, "tag", "each", "pull"]);
    if (positionals.length > 1) throw usage(`expected at most one worker before --, got ${positionals.join(" ")}`);
    if (values.json && !values.detach) throw usage("--json needs -d: a followed job's stdout is its own output");
    const config = loadConfig();
    const store = new JobStore();
    const each = values.each as string[] | undefined;
    const on = values.on as string | undefined;
    if (on !== undefined && positionals.length) throw usage("give the workers either before -- or with --on, not both");
    if (on !== undefined && values.any) throw usage("give --on or --any, not both");
    const workers = values.any
      ? await chooseAny(
          positionals[0] ? parseOn(positionals[0], config) : config.workers,
          each ? sweep(each).length : 1,
        )
      : on !== undefined
        ? parseOn(on, config)
        : [pickWorker(config, positionals[0])];
    if ((on !== undefined || each) && values.name !== undefined)
      throw usage("--name names one job; tag a group's jobs with --tag, and name the group by its id");
    if (workers.length > 1 && (values.after !== undefined || values["after-any"] !== undefined))
      throw usage("--after takes jobs of one worker; it cannot go with --on several workers");
    const request = {
      argv,
      cwd: process.cwd(),
      sync: !values["no-sync"],
      detach: Boolean(values.detach),
      ...jobOptions(values, config),
      ...queueOptions(values, store, workers[0]!),
      record: { ...recordOptions(values), ...pullOptions(values) },
      store,
    };
    const how = {
      json: Boolean(values.json),
      notify: values.notify ? config : undefined,
      verbose: Boolean(values.verbose),
    };
    if (on === undefined && !each) return runAndReport({ ...request, worker: workers[0]! }, how);
    // (--any has placed each combination already: one worker per job)
    const members = values.any
      ? sweep(each!).map((combo, i) => ({ worker: workers[i]!, each: combo }))
      : planGroup(workers, each ? sweep(each) : undefined);
    return runGroupAndReport(members, request, how);
  },
});
