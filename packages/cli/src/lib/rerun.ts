import { existsSync } from "node:fs";
import { PError } from "@p/exec/protocol";
import type { Config, JobRecord, Worker } from "@p/store";
import { jobSurroundings, secretsOf, userEnv } from "./env.ts";
import type { RunRequest } from "./run.ts";

/**
 * What runs a job again (p rerun, the dashboard's rerun): its command and flags, from its
 * directory as it is now, its variables and secrets read here again, now. `rerunOf` is
 * what the new record says it re-runs (the job, or its group).
 */
export function rerunRequest(job: JobRecord, worker: Worker, config: Config, rerunOf = job.id) {
  if (!existsSync(job.cwd))
    throw new PError("invalid_argument", `job ${job.id.slice(0, 8)} ran from ${job.cwd}, which is gone; nothing ran`);
  const given = userEnv({ env: job.env_args ?? [], envFiles: job.env_files ?? [] }, process.env);
  return {
    argv: job.argv,
    cwd: job.cwd,
    sync: job.synced,
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
      rerun_of: rerunOf,
    },
  } satisfies Partial<RunRequest>;
}
