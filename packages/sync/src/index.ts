export { type Explanation, explainPath, type Listing, listSynced } from "./explain.ts";
export {
  checkoutOf,
  gitFiles,
  gitProvenance,
  ignoredPaths,
  type LinkedWorktree,
  linkedWorktree,
  originUrl,
  type Provenance,
  repositoryOf,
  syncedFiles,
  walkFiles,
} from "./files.ts";
export {
  excludeRules,
  type MirrorSyncInput,
  type OverlaySyncInput,
  parentDir,
  planList,
  planMirrorSync,
  planOverlaySync,
  planSync,
  remoteSpec,
  type SyncInput,
  type SyncPlan,
} from "./plan.ts";
export { insideWorkDir, type PullInput, planPull } from "./pull.ts";
export { parseProgress, type RunSyncOptions, runSync, type SyncProgress } from "./run.ts";
export {
  anchored,
  changeRules,
  parseWalk,
  parseWalkText,
  RACY_MS,
  type Tree,
  treeOf,
  type Walk,
  walkCommand,
  walkText,
  walkTree,
} from "./snapshot.ts";
export { type Overlay, worktreeOverlay } from "./worktree.ts";
