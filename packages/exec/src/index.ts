export { commandLine, shJoin, shq } from "./quote.ts";
export { SshError, type SshErrorCode } from "./errors.ts";
export { defaultWorkerName, parseConnection, sshTargetArgs, type Target } from "./target.ts";
export { parseSshConfigDump, resolveSsh, sshCommandArgv, type SshSettings } from "./resolve.ts";
export { fingerprint, checkHostKey, hostMatches, knownHostName, parseKnownHosts } from "./known_hosts.ts";
export { connect, Connection, type ConnectOptions, type RunResult } from "./connect.ts";
export { assertJobId, followScript, jobDir, launchScript, parseStatusLine, remoteSh, STATUS_MARK, workDir, type FollowStatus, type LaunchSpec } from "./script.ts";
export { parseSizes, parseStatusReport, removeScript, statusScript, stopScript, type RemoteState } from "./manage.ts";
