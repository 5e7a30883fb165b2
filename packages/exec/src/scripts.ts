// The worker-side scripts and shell quoting, without the SSH client: for code that only
// builds or reads scripts (and must not pay for loading ssh2), e.g. `p ls` with nothing running.
export { commandLine, shJoin, shq } from "./quote.ts";
export { SshError, type SshErrorCode } from "./errors.ts";
export { assertJobId, FOLLOW_MARK, followScript, jobDir, launchScript, MIRRORS_DIR, parseStatusLine, remoteSh, STATUS_MARK, workDir, type FollowStatus, type LaunchSpec } from "./script.ts";
export { parseLeftovers, parseSizes, parseStatusReport, removeScript, statusScript, stopScript, sweepScript, type RemoteState } from "./manage.ts";
