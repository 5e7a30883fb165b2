export { configDir, dataDir } from "./paths.ts";
export { writeFileAtomic } from "./atomic.ts";
export { StoreError, type StoreErrorCode } from "./errors.ts";
export { assertWorkerName, configPath, loadConfig, pickWorker, saveConfig, type Config, type Worker } from "./config.ts";
export { JobStore, type JobRecord, type JobStatus } from "./jobs.ts";
