import { JobStore, loadConfig, pickWorker } from "@p/store";
import { defineCommand } from "citty";
import { jsonArg, strictArgs } from "../_args.ts";
import { pc } from "../_color.ts";
import { usage } from "../_errors.ts";
import { tilde } from "../_format.ts";
import { rerunRequest } from "../lib/rerun.ts";
import { runAndReport, runGroupAndReport } from "./_run.ts";

const args = {
  job: {
    type: "positional",
    required: false,
    description: "The job to run again (id, prefix or name), or a group (its id): each of its jobs again",
  },
  worker: { type: "positional", required: false, description: "Worker to run on (default: the job's own)" },
  detach: { type: "boolean", alias: "d", description: "Start the job, print its id and return" },
  ...jsonArg,
} as const;

export default defineCommand({
  meta: {
    name: "rerun",
    description: "Run a job's command again, with its flags, from its directory as it is now. Example: p rerun a3f2 -d",
  },
  args,
  async run({ rawArgs }) {
    const { values, positionals } = strictArgs(args, rawArgs, "rerun");
    if (positionals.length < 1 || positionals.length > 2) throw usage("usage: p rerun <job-id|name> [<worker>] [-d]");
    if (values.json && !values.detach) throw usage("--json needs -d: a followed job's stdout is its own output");
    const store = new JobStore();
    const { jobs: found, group } = store.named(positionals[0]!);
    const job = found[0]!;
    if (group && positionals[1] !== undefined)
      throw usage("a group runs again on its own workers; give no worker (or rerun one of its jobs)");
    const config = loadConfig();
    const worker = pickWorker(config, positionals[1] ?? job.worker);
    const what = group ? `group ${group.slice(0, 8)} (${found.length} jobs:` : `job ${job.id.slice(0, 8)} (`;
    const where = group ? "on its workers" : `on ${worker.name}`;
    const request = {
      ...rerunRequest(job, worker, config, group ?? job.id),
      detach: Boolean(values.detach),
      store,
    };
    process.stderr.write(`${pc.dim(`Re-running ${what} ${job.command}) from ${tilde(job.cwd)} ${where}`)}\n`);
    const how = { json: Boolean(values.json), verbose: Boolean(values.verbose) };
    if (!group) return runAndReport({ ...request, worker }, how);
    const members = found.map((j) => ({ worker: pickWorker(config, j.worker), ...(j.each && { each: j.each }) }));
    return runGroupAndReport(members, request, how);
  },
});
