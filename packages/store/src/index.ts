export { writeFileAtomic } from "./atomic.ts";
export {
  assertWorkerName,
  type Config,
  configPath,
  GPU_ID,
  loadConfig,
  pickWorker,
  RESERVED_NAMES,
  saveConfig,
  type Worker,
} from "./config.ts";
export { assertJobName, JOB_NAME, type JobRecord, type JobStatus, JobStore } from "./jobs.ts";
export { configDir, dataDir } from "./paths.ts";
