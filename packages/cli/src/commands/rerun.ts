import { existsSync } from "node:fs";
import { PError } from "@p/exec/protocol";
import { JobStore, loadConfig, pickWorker } from "@p/store";
import { defineCommand } from "citty";
import { jsonArg, strictArgs } from "../_args.ts";
import { pc } from "../_color.ts";
import { usage } from "../_errors.ts";
import { tilde } from "../_format.ts";
import { jobSurroundings, secretsOf, userEnv } from "../lib/env.ts";
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
    const found = store.findMany(positionals[0]!);
    const job = found[0]!;
    const isGroup =
      found.length > 1 || (job.group?.startsWith(positionals[0]!.toLowerCase()) && job.id !== positionals[0]);
    if (isGroup && positionals[1] !== undefined)
      throw usage("a group runs again on its own workers; give no worker (or rerun one of its jobs)");
    const config = loadConfig();
    const worker = pickWorker(config, positionals[1] ?? job.worker);
    if (!existsSync(job.cwd))
      throw new PError("invalid_argument", `job ${job.id.slice(0, 8)} ran from ${job.cwd}, which is gone; nothing ran`);
    // the flags as they were given: variables and secrets are read here again, now
    const given = userEnv({ env: job.env_args ?? [], envFiles: job.env_files ?? [] }, process.env);
    const what = isGroup ? `group ${job.group!.slice(0, 8)} (${found.length} jobs:` : `job ${job.id.slice(0, 8)} (`;
    const where = isGroup ? "on its workers" : `on ${worker.name}`;
    process.stderr.write(`${pc.dim(`Re-running ${what} ${job.command}) from ${tilde(job.cwd)} ${where}`)}\n`);
    const request = {
      argv: job.argv,
      cwd: job.cwd,
      sync: job.synced,
      detach: Boolean(values.detach),
      ...jobSurroundings(config, false, given),
      ...(job.secrets?.length && { secrets: secretsOf(job.secrets, process.env) }),
      ...(job.timeout_s !== undefined && { timeoutS: job.timeout_s }),
      ...(job.exclusive && { exclusive: true }),
      ...(job.gpus && { gpus: job.gpus }),
      // (what it asked of Slurm, where Slurm runs it again)
      ...(worker.slurm && {
        slurm: {
          ...(job.cpus && { cpus: job.cpus }),
          ...(job.mem && { mem: job.mem }),
          ...(job.sbatch_args?.length && { args: job.sbatch_args }),
        },
      }),
      record: {
        ...(job.tags?.length && { tags: job.tags }),
        ...(job.env_args?.length && { env_args: job.env_args }),
        ...(job.env_files?.length && { env_files: job.env_files }),
        rerun_of: isGroup ? job.group! : job.id,
      },
      store,
    };
    const how = { json: Boolean(values.json), verbose: Boolean(values.verbose) };
    if (!isGroup) return runAndReport({ ...request, worker }, how);
    const members = found.map((j) => ({ worker: pickWorker(config, j.worker), ...(j.each && { each: j.each }) }));
    return runGroupAndReport(members, request, how);
  },
});
