import { homedir } from "node:os";
import { PError } from "../errors.ts";
import { sshTargetArgs, type Target } from "./target.ts";

/** What OpenSSH resolves for a target (`ssh -G`), the part a connection needs. */
export interface SshSettings {
  hostname: string;
  user: string;
  port: number;
  identityFiles: string[];
  /** Socket of the ssh-agent to use, or undefined for none. */
  identityAgent?: string;
  identitiesOnly: boolean;
  knownHostsFiles: string[];
  strictHostKeyChecking: "yes" | "no" | "accept-new" | "ask";
  hashKnownHosts: boolean;
  hostKeyAlias?: string;
  connectTimeoutS?: number;
  proxyCommand?: string;
  proxyJump?: string;
}

/**
 * The argv that runs the user's ssh command with more arguments. Like GIT_SSH_COMMAND, a
 * custom command is a shell snippet (it may carry its own quoted options).
 */
export function sshCommandArgv(sshCommand: string | undefined, args: readonly string[]): string[] {
  if (!sshCommand) return ["ssh", ...args];
  // words the shell would take as they are (no quote, variable, glob, ~ or assignment)
  // need no shell: a process fewer for each connection
  const words = sshCommand.trim().split(/[ \t]+/);
  if (words.every((w) => /^[\w./,:@=+-]+$/.test(w)) && !words[0]!.includes("=")) return [...words, ...args];
  return ["sh", "-c", `${sshCommand} "$@"`, "ssh", ...args];
}

const expandHome = (path: string, home: string) =>
  path === "~" || path.startsWith("~/") ? home + path.slice(1) : path;

/** Parse `ssh -G` output. Pure: `env` and `home` stand in for the process's. */
export function parseSshConfigDump(
  text: string,
  env: Record<string, string | undefined>,
  home = homedir(),
): SshSettings {
  const one = new Map<string, string>();
  const identityFiles: string[] = [];
  for (const line of text.split("\n")) {
    const sp = line.indexOf(" ");
    if (sp < 0) continue;
    const key = line.slice(0, sp).toLowerCase();
    const value = line.slice(sp + 1).trim();
    if (key === "identityfile") identityFiles.push(expandHome(value, home));
    else if (!one.has(key)) one.set(key, value);
  }
  const get = (k: string) => {
    const v = one.get(k);
    return v === undefined || v === "none" ? undefined : v;
  };
  const agent = one.get("identityagent");
  let identityAgent: string | undefined;
  if (agent === undefined || agent === "SSH_AUTH_SOCK") identityAgent = env.SSH_AUTH_SOCK || undefined;
  else if (agent.startsWith("$")) identityAgent = env[agent.slice(1)] || undefined;
  else if (agent !== "none") identityAgent = expandHome(agent, home);
  const strict = one.get("stricthostkeychecking") ?? "ask";
  const timeout = get("connecttimeout");
  return {
    hostname: one.get("hostname") ?? "",
    user: one.get("user") ?? "",
    port: Number(one.get("port") ?? 22),
    identityFiles,
    identityAgent,
    identitiesOnly: one.get("identitiesonly") === "yes",
    knownHostsFiles: (get("userknownhostsfile") ?? "~/.ssh/known_hosts ~/.ssh/known_hosts2")
      .split(/\s+/)
      .concat((get("globalknownhostsfile") ?? "").split(/\s+/))
      .filter((f) => f !== "" && f !== "/dev/null")
      .map((f) => expandHome(f, home)),
    strictHostKeyChecking:
      strict === "true" || strict === "yes"
        ? "yes"
        : strict === "false" || strict === "no"
          ? "no"
          : strict === "accept-new"
            ? "accept-new"
            : "ask",
    hashKnownHosts: one.get("hashknownhosts") === "yes",
    ...(get("hostkeyalias") && { hostKeyAlias: get("hostkeyalias") }),
    ...(timeout && { connectTimeoutS: Number(timeout) }),
    ...(get("proxycommand") && { proxyCommand: get("proxycommand") }),
    ...(get("proxyjump") && { proxyJump: get("proxyjump") }),
  };
}

/** Ask the user's ssh what it would do for `target`, so p connects where ssh and rsync would. */
export async function resolveSsh(target: Target, sshCommand?: string): Promise<SshSettings> {
  const argv = sshCommandArgv(sshCommand, ["-G", ...sshTargetArgs(target)]);
  let proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  try {
    proc = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  } catch {
    throw new PError("invalid_argument", `cannot run ${argv[0]}: install OpenSSH's client (ssh), or set P_SSH_COMMAND`);
  }
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (code !== 0) {
    const why = err.trim().split("\n").pop() || `exit ${code}`;
    throw new PError("invalid_argument", `ssh cannot resolve ${target.host} (${why})`);
  }
  return parseSshConfigDump(out, process.env);
}
