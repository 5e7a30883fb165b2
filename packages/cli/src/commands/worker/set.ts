import { loadConfig, pickWorker, saveConfig, type Worker } from "@p/store";
import { defineCommand } from "citty";
import { jsonArg, strictArgs } from "../../_args.ts";
import { usage } from "../../_errors.ts";
import { capacityText, slurmText } from "../../_format.ts";
import { parseGpuList, parseSlots } from "../../lib/capacity.ts";
import { slurmOf } from "../../lib/workers.ts";

const args = {
  name: { type: "positional", required: false, description: "Worker to change" },
  slots: { type: "string", description: "Jobs of p's at once on it (N), or none for no limit" },
  gpus: { type: "string", description: "Its GPUs (0,1,2), which jobs with --gpus wait for, or none" },
  partition: { type: "string", description: "A Slurm worker's partition, or none for Slurm's default" },
  account: { type: "string", description: "A Slurm worker's account, or none" },
  ...jsonArg,
} as const;

/** A worker's capacity as --slots and --gpus give it (none: no limit, no GPUs). */
export function withCapacity(worker: Worker, values: { slots?: unknown; gpus?: unknown }): Worker {
  const { slots, gpus, ...rest } = worker;
  const nextSlots = values.slots === undefined ? slots : parseSlots(values.slots as string);
  const nextGpus = values.gpus === undefined ? gpus : parseGpuList(values.gpus as string);
  return { ...rest, ...(nextSlots !== undefined && { slots: nextSlots }), ...(nextGpus && { gpus: nextGpus }) };
}

/** A Slurm worker's partition and account as --partition and --account give them (none: Slurm's default). */
function withSlurm(worker: Worker, values: { partition?: unknown; account?: unknown }): Worker {
  const next = { ...worker.slurm };
  for (const key of ["partition", "account"] as const) {
    const v = values[key] as string | undefined;
    if (v === "none") delete next[key];
    else if (v !== undefined) next[key] = slurmOf({ slurm: true, [key]: v }).slurm![key]!;
  }
  return { ...worker, slurm: next };
}

export default defineCommand({
  meta: {
    name: "set",
    description:
      "Set a worker's capacity (slots, GPUs) or a Slurm worker's partition and account. " +
      "Example: p worker set beefy --slots 4",
  },
  args,
  async run({ rawArgs }) {
    const { values, positionals } = strictArgs(args, rawArgs, "worker set");
    const given = ["slots", "gpus", "partition", "account"].filter((k) => values[k] !== undefined);
    if (positionals.length !== 1 || given.length === 0)
      throw usage(
        "usage: p worker set <name> [--slots N|none] [--gpus LIST|none] " +
          "(Slurm: [--partition P|none] [--account A|none])",
      );
    const config = loadConfig();
    const current = pickWorker(config, positionals[0]);
    const worker = current.slurm ? withSlurm(current, values) : withCapacity(current, values);
    if (current.slurm && (values.slots !== undefined || values.gpus !== undefined))
      throw usage("--slots and --gpus are for workers that run jobs themselves; Slurm places a Slurm worker's jobs");
    if (!current.slurm && (values.partition !== undefined || values.account !== undefined))
      throw usage(`--partition and --account are for Slurm workers, and worker ${current.name} runs jobs itself`);
    saveConfig({ ...config, workers: config.workers.map((w) => (w.name === worker.name ? worker : w)) });
    const text = worker.slurm ? slurmText(worker) : capacityText(worker);
    process.stdout.write(values.json ? `${JSON.stringify(worker)}\n` : `Worker ${worker.name}: ${text}\n`);
    return 0;
  },
});
