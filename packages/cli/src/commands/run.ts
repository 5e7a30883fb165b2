import { JobStore, loadConfig, pickWorker } from "@p/store";
import { defineCommand } from "citty";
import { jsonArg, splitCommand, strictArgs } from "../_args.ts";
import { pc } from "../_color.ts";
import { EXIT, usage } from "../_errors.ts";
import { jobJson } from "../_format.ts";
import { interruptSignal, sayReconnecting, stdoutSink } from "../_io.ts";
import { runJob } from "../lib/run.ts";
import { retryFor } from "../lib/workers.ts";
import { endFollow, jobArgs, jobOptions, queueArgs, queueOptions, REPEATABLE } from "./_run.ts";

const USAGE = "p [worker] [-n] [-d] [-t] [--timeout DUR] [--exclusive] [--gpus N] [--after ID[,ID]] -- <command>";

const args = {
  worker: { type: "positional", required: false, description: "Worker to run on (default: the default worker)" },
  "no-sync": { type: "boolean", alias: "n", description: "Do not sync the current directory first" },
  detach: { type: "boolean", alias: "d", description: "Start the job, print its id and return" },
  ...jobArgs,
  ...queueArgs,
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
    const { values, positionals } = strictArgs(args, options, "run", REPEATABLE);
    if (positionals.length > 1) throw usage(`expected at most one worker before --, got ${positionals.join(" ")}`);
    if (values.json && !values.detach) throw usage("--json needs -d: a followed job's stdout is its own output");
    const config = loadConfig();
    const worker = pickWorker(config, positionals[0]);
    const detach = Boolean(values.detach);
    const store = new JobStore();
    const queue = queueOptions(values, store, worker);
    const out = stdoutSink();
    const interrupt = interruptSignal();
    try {
      const outcome = await runJob({
        worker,
        argv,
        cwd: process.cwd(),
        sync: !values["no-sync"],
        detach,
        ...jobOptions(values, config),
        ...queue,
        store,
        out,
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
        process.stdout.write(values.json ? `${JSON.stringify(jobJson(outcome.job))}\n` : `${outcome.job.id}\n`);
        return EXIT.ok;
      }
      if (outcome.kind === "cancelled") return endFollow(outcome, out, { id: "", worker: worker.name, resume: "" });
      const { id } = outcome.job;
      return endFollow(outcome, out, { id, worker: worker.name, resume: `p logs -f ${id.slice(0, 8)}` });
    } finally {
      interrupt.dispose();
    }
  },
});
