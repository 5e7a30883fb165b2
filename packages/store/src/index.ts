export { writeFileAtomic, writeFileAtomicAsync } from "./atomic.ts";
export {
  assertWorkerName,
  type Config,
  configPath,
  loadConfig,
  pickWorker,
  RESERVED_NAMES,
  saveConfig,
  type Worker,
  workerKind,
} from "./config.ts";
export { assertJobName, type JobRecord, type JobStatus, JobStore } from "./jobs.ts";
export { cacheDir, configDir, dataDir } from "./paths.ts";
