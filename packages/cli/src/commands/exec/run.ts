import { BATCH_SCRIPT, commandLine, launchCommand, resolveRoot, sbatchOptions, shq } from "@p/exec";
import { loadConfig } from "@p/store";
import { defineCommand } from "citty";
import { v4 as uuid } from "uuid";
import { jsonArg, splitCommand, strictArgs } from "../../_args.ts";
import { EXIT, usage } from "../../_errors.ts";
import { interruptSignal, jobInput, sayReconnecting, stdoutSink } from "../../_io.ts";
import { runJob } from "../../lib/run.ts";
import { retryFor, slurmOf, workerOrTarget } from "../../lib/workers.ts";
import { endFollow, jobArgs, jobOptions, REPEATABLE } from "../_run.ts";

const USAGE =
  "p-exec run [--dir <dir>] [-d] [-t] [--timeout DUR] [--slurm [--partition P] [--account A]] " +
  "<worker|ssh-target> -- <command>";

const args = {
  target: {
    type: "positional",
    required: false,
    description: "A worker name, or any ssh target: user@host, user@host:port, an alias",
  },
  dir: {
    type: "string",
    description:
      "Existing directory to run in (relative to the home unless absolute); default: a fresh ~/.p/workdirs/<id>",
  },
  detach: { type: "boolean", alias: "d", description: "Start the job, print its id and return" },
  ...jobArgs,
  slurm: { type: "boolean", description: "The target is a Slurm login node: submit the job to Slurm (sbatch)" },
  partition: { type: "string", description: "With --slurm: the partition" },
  account: { type: "string", description: "With --slurm: the account" },
  root: { type: "string", description: "Where p's files are on the target (default ~/.p)" },
  "dry-run": { type: "boolean", description: "Print the script that would run on the target; run nothing" },
  ...jsonArg,
} as const;

export default defineCommand({
  meta: {
    name: "run",
    description:
      "Start a command detached, in its own process group, logged; follow it unless -d. " +
      "Example: p-exec run beefy -d -- ./bench.sh",
  },
  args,
  async run({ rawArgs }) {
    const { options, argv } = splitCommand(rawArgs, USAGE);
    const { values, positionals } = strictArgs(args, options, "p-exec run", REPEATABLE);
    if (positionals.length !== 1) throw usage(`usage: ${USAGE}`);
    const target = positionals[0]!;
    const worker = { ...workerOrTarget(target), ...slurmOf(values) };
    if (values.root !== undefined) worker.root = resolveRoot(String(values.root), {});
    const surroundings = jobOptions(values, loadConfig());
    const dir = values.dir as string | undefined;
    const detach = Boolean(values.detach);
    if (values["dry-run"]) {
      const id = uuid();
      const spec = { id, command: commandLine(argv), cwd: process.cwd(), worker: worker.name };
      const launch = { ...spec, ...surroundings, ...(dir !== undefined && { dir }) };
      if (worker.slurm) {
        // what Slurm would run, and how it would be asked
        const slurm = { ...worker.slurm, ...surroundings.slurm };
        const sbatch = sbatchOptions({ ...launch, slurm });
        const script = BATCH_SCRIPT;
        if (values.json) process.stdout.write(`${JSON.stringify({ id, target: worker.name, sbatch, script })}\n`);
        else
          process.stdout.write(
            `# sbatch ${sbatch.map(shq).join(" ")} --chdir=<work dir> [--dependency=...] ` +
              `<job dir>/batch <job dir> <timeout> <tty> [NAME=VALUE...]\n${script}`,
          );
        return EXIT.ok;
      }
      const script = launchCommand(launch, !detach, worker.root);
      process.stdout.write(values.json ? `${JSON.stringify({ id, target: worker.name, script })}\n` : `${script}\n`);
      return EXIT.ok;
    }
    const out = stdoutSink();
    const interrupt = interruptSignal();
    const resume = (id: string) => `p-exec logs -f ${target} ${id}`;
    try {
      const outcome = await runJob({
        worker,
        argv,
        cwd: process.cwd(),
        sync: false,
        ...(dir !== undefined && { dir }),
        detach,
        ...surroundings,
        ...(!detach && jobInput()),
        out,
        signal: interrupt.signal,
        retry: retryFor(worker, sayReconnecting),
        resume,
      });
      if (outcome.kind === "launched") {
        const { id } = outcome.job;
        process.stdout.write(values.json ? `${JSON.stringify({ id, target: worker.name })}\n` : `${id}\n`);
        return EXIT.ok;
      }
      if (outcome.kind === "cancelled") return endFollow(outcome, out, { id: "", worker: worker.name, resume: "" });
      const { id } = outcome.job;
      return endFollow(outcome, out, { id, worker: worker.name, resume: resume(id) });
    } finally {
      interrupt.dispose();
    }
  },
});
