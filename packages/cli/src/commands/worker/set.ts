import { loadConfig, pickWorker, saveConfig, type Worker } from "@p/store";
import { defineCommand } from "citty";
import { jsonArg, strictArgs } from "../../_args.ts";
import { usage } from "../../_errors.ts";
import { capacityText } from "../../_format.ts";
import { parseGpuList, parseSlots } from "../../lib/capacity.ts";

const args = {
  name: { type: "positional", required: false, description: "Worker to change" },
  slots: { type: "string", description: "Jobs of p's at once on it (N), or none for no limit" },
  gpus: { type: "string", description: "Its GPUs (0,1,2), which jobs with --gpus wait for, or none" },
  ...jsonArg,
} as const;

/** A worker's capacity as --slots and --gpus give it (none: no limit, no GPUs). */
export function withCapacity(worker: Worker, values: { slots?: unknown; gpus?: unknown }): Worker {
  const { slots, gpus, ...rest } = worker;
  const nextSlots = values.slots === undefined ? slots : parseSlots(values.slots as string);
  const nextGpus = values.gpus === undefined ? gpus : parseGpuList(values.gpus as string);
  return { ...rest, ...(nextSlots !== undefined && { slots: nextSlots }), ...(nextGpus && { gpus: nextGpus }) };
}

export default defineCommand({
  meta: {
    name: "set",
    description: "Set a worker's capacity: slots (jobs at once) and GPUs. Example: p worker set beefy --slots 4",
  },
  args,
  async run({ rawArgs }) {
    const { values, positionals } = strictArgs(args, rawArgs, "worker set");
    if (positionals.length !== 1 || (values.slots === undefined && values.gpus === undefined))
      throw usage("usage: p worker set <name> [--slots N|none] [--gpus LIST|none]");
    const config = loadConfig();
    const worker = withCapacity(pickWorker(config, positionals[0]), values);
    saveConfig({ ...config, workers: config.workers.map((w) => (w.name === worker.name ? worker : w)) });
    process.stdout.write(
      values.json ? `${JSON.stringify(worker)}\n` : `Worker ${worker.name}: ${capacityText(worker)}\n`,
    );
    return 0;
  },
});
