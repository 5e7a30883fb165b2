export * from "./scripts.ts";
export { defaultWorkerName, parseConnection, sshTargetArgs, type Target } from "./target.ts";
export { parseSshConfigDump, resolveSsh, sshCommandArgv, type SshSettings } from "./resolve.ts";
export { fingerprint, checkHostKey, hostMatches, knownHostName, parseKnownHosts } from "./known_hosts.ts";
export { connect, Connection, type ConnectOptions, type RunResult } from "./connect.ts";
