import { GPU_ID, PError } from "@p/exec/protocol";
import type { JobStore, Worker } from "@p/store";

const usage = (message: string) => new PError("invalid_argument", message);

/** A count a flag gives: a whole number above 0, else an error naming the flag. */
function count(flag: string, value: string, what: string, orNone = ""): number {
  if (!/^\d+$/.test(value) || Number(value) < 1)
    throw usage(`${flag} ${JSON.stringify(value)} is not a number of ${what}; give a whole number above 0${orNone}`);
  return Number(value);
}

/** `--slots N|none`: jobs of p's at once on a worker; none (undefined) is no limit. */
export const parseSlots = (value: string): number | undefined =>
  value === "none" ? undefined : count("--slots", value, "slots", ", or none");

/** `--gpus LIST|none` of a worker: its GPUs' indexes, as CUDA_VISIBLE_DEVICES names them. */
export function parseGpuList(value: string): string[] | undefined {
  if (value === "none") return undefined;
  const gpus = value.split(",").map((g) => g.trim());
  if (!gpus.every((g) => GPU_ID.test(g)))
    throw usage(`--gpus ${JSON.stringify(value)} is not a list of GPUs; give their indexes (0,1,2), or none`);
  return gpus;
}

/** `--cpus N` of a Slurm worker's job. */
export const parseCpus = (value: string): number => count("--cpus", value, "CPUs");

/** `--gpus N` of a job: how many GPUs it waits for. */
export const parseGpuCount = (value: string): number => count("--gpus", value, "GPUs");

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
