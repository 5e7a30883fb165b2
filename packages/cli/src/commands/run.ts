import { JobStore, loadConfig, pickWorker } from "@p/store";
import { defineCommand } from "citty";
import { jsonArg, splitCommand, strictArgs } from "../_args.ts";
import { usage } from "../_errors.ts";
import {
  jobArgs,
  jobOptions,
  labelArgs,
  queueArgs,
  queueOptions,
  REPEATABLE,
  recordOptions,
  runAndReport,
} from "./_run.ts";

const USAGE = "p [worker] [-n] [-d] [-t] [--timeout DUR] [--exclusive] [--gpus N] [--after ID[,ID]] -- <command>";

const args = {
  worker: { type: "positional", required: false, description: "Worker to run on (default: the default worker)" },
  "no-sync": { type: "boolean", alias: "n", description: "Do not sync the current directory first" },
  detach: { type: "boolean", alias: "d", description: "Start the job, print its id and return" },
  ...jobArgs,
  ...queueArgs,
  ...labelArgs,
  ...jsonArg,
} as const;

export default defineCommand({
  meta: {
    name: "run",
    description: `Sync the current directory to a worker and run a command there: ${USAGE}`,
  },
  args,
  async run({ rawArgs }) {
    const { options, argv } = splitCommand(rawArgs, USAGE);
    const { values, positionals } = strictArgs(args, options, "run", [...REPEATABLE, "tag"]);
    if (positionals.length > 1) throw usage(`expected at most one worker before --, got ${positionals.join(" ")}`);
    if (values.json && !values.detach) throw usage("--json needs -d: a followed job's stdout is its own output");
    const config = loadConfig();
    const worker = pickWorker(config, positionals[0]);
    const store = new JobStore();
    const queue = queueOptions(values, store, worker);
    return runAndReport(
      {
        worker,
        argv,
        cwd: process.cwd(),
        sync: !values["no-sync"],
        detach: Boolean(values.detach),
        ...jobOptions(values, config),
        ...queue,
        record: recordOptions(values),
        store,
      },
      Boolean(values.json),
    );
  },
});
