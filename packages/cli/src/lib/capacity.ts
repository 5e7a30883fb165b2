import { type Capacity, PError } from "@p/exec/protocol";
import { GPU_ID, type JobStore, type Worker } from "@p/store";

const usage = (message: string) => new PError("invalid_argument", message);

/** `--slots N|none`: jobs of p's at once on a worker; none (undefined) is no limit. */
export function parseSlots(value: string): number | undefined {
  if (value === "none") return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1)
    throw usage(`--slots ${JSON.stringify(value)} is not a number of slots; give a whole number above 0, or none`);
  return Number(value);
}

/** `--gpus LIST|none` of a worker: its GPUs' indexes, as CUDA_VISIBLE_DEVICES names them. */
export function parseGpuList(value: string): string[] | undefined {
  if (value === "none") return undefined;
  const gpus = value.split(",").map((g) => g.trim());
  if (!gpus.every((g) => GPU_ID.test(g)))
    throw usage(`--gpus ${JSON.stringify(value)} is not a list of GPUs; give their indexes (0,1,2), or none`);
  return gpus;
}

/** `--gpus N` of a job: how many GPUs it waits for. */
export function parseGpuCount(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1)
    throw usage(`--gpus ${JSON.stringify(value)} is not a number of GPUs; give a whole number above 0`);
  return Number(value);
}

/** What a worker offers its queue, as its config says. */
export const capacityOf = (worker: Worker): Capacity => ({
  ...(worker.slots !== undefined && { slots: worker.slots }),
  ...(worker.gpus !== undefined && { gpus: worker.gpus }),
});

/** `--after ID[,ID...]`: the full ids of jobs on the same worker (any id argument: a prefix). */
export function resolveAfter(store: JobStore, value: string, worker: Worker, flag: string): string[] {
  const ids = value
    .split(",")
    .map((v) => v.trim())
    .filter(Boolean);
  if (ids.length === 0) throw usage(`${flag} needs job ids, e.g. ${flag} 3f2a1b9c`);
  return ids.map((prefix) => {
    const job = store.find(prefix);
    if (job.worker !== worker.name)
      throw usage(
        `job ${job.id.slice(0, 8)} ran on worker ${job.worker}, not ${worker.name}; ` +
          `${flag} takes jobs of the same worker`,
      );
    return job.id;
  });
}
