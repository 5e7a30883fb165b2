export { excludeRules, parentDir, planList, planMirrorSync, planSync, remoteSpec, type MirrorSyncInput, type SyncInput, type SyncPlan } from "./plan.ts";
export { gitFiles, ignoredPaths, syncedFiles, walkFiles } from "./files.ts";
export { runSync, SyncError, type RunSyncOptions } from "./run.ts";
export { insideWorkDir, planPull, type PullInput } from "./pull.ts";
export { explainPath, listSynced, type Explanation, type Listing } from "./explain.ts";
