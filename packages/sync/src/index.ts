export { planSync, remoteSpec, type SyncInput, type SyncPlan } from "./plan.ts";
export { gitFiles } from "./files.ts";
export { runSync, SyncError, type RunSyncOptions } from "./run.ts";
export { insideWorkDir, planPull, type PullInput } from "./pull.ts";
