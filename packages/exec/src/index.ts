export * from "./backend.ts";
export * from "./protocol/index.ts";
export { RELAY_FDS, RELAY_RSH, relayArgs, remoteCommand, type ServedRelay, serveRelay } from "./ssh/bridge.ts";
export { Connection, type ConnectOptions, connect, type RunResult } from "./ssh/connect.ts";
export { borrowKept, keptKey, privateDir, serveKeeper } from "./ssh/keep.ts";
export { checkHostKey, fingerprint, hostMatches, knownHostName, parseKnownHosts } from "./ssh/known_hosts.ts";
export { parseSshConfigDump, resolveSsh, type SshSettings, sshCommandArgv } from "./ssh/resolve.ts";
export { defaultWorkerName, parseConnection, sshTargetArgs, type Target } from "./ssh/target.ts";
export { SshWorker } from "./ssh/worker.ts";
