import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { Duplex } from "node:stream";
import { type AnyAuthMethod, Client, type ClientChannel, type ConnectConfig, utils } from "ssh2";
import { PError, problem } from "../errors.ts";
import {
  checkHostKey,
  fingerprint,
  type HostKeyVerdict,
  type KnownHost,
  keyTypeOf,
  knownHostName,
  knownHostsLine,
  knownKeyTypes,
  parseKnownHosts,
} from "./known_hosts.ts";
import { resolveSsh, type SshSettings, sshCommandArgv } from "./resolve.ts";
import type { Target } from "./target.ts";

export interface ConnectOptions {
  /** The user's ssh command (P_SSH_COMMAND); resolution and proxies go through it. */
  sshCommand?: string;
  /** Record an unknown host key, as `StrictHostKeyChecking=accept-new` does. */
  acceptNewHostKey?: boolean;
  /** Called when an unknown key is recorded, with its fingerprint. */
  onNewHostKey?: (info: { name: string; keyType: string; fingerprint: string; file: string }) => void;
  timeoutMs?: number;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number | null;
  /** The signal that ended the command, if one did (as ssh reports it: "TERM", "KILL"). */
  signal?: string;
}

/** A command started on the worker. */
export interface RemoteCommand {
  channel: ClientChannel;
  /** Settles when the channel closes, with how the command ended (no code: the connection dropped). */
  ended: Promise<{ code: number | null; signal?: string }>;
}

/** One SSH connection to a worker; many channels (commands) can share it. */
export class Connection {
  constructor(
    readonly client: Client,
    readonly settings: SshSettings,
  ) {}

  exec(command: string): Promise<RemoteCommand> {
    return new Promise((resolve, reject) =>
      this.client.exec(command, (err, channel) => {
        if (err)
          return reject(new PError("remote_failed", `cannot start a command on ${this.where()} (${err.message})`));
        // listen at once: a quick command's exit status and close can arrive in the same
        // packet as the channel's confirmation, before a later listener would be attached
        const ended = new Promise<{ code: number | null; signal?: string }>((done) => {
          let code: number | null = null;
          let signal: string | undefined;
          channel.on("exit", (c: number | null, sig?: string) => {
            code = c;
            signal = sig ?? undefined;
          });
          channel.on("close", () => done({ code, signal }));
        });
        resolve({ channel, ended });
      }),
    );
  }

  /** Run a command to completion and collect its output. */
  async run(command: string, input?: string): Promise<RunResult> {
    const started = await this.exec(command);
    if (input !== undefined) started.channel.end(input);
    return this.collect(started);
  }

  /** What a command started already prints, once it has ended. */
  async collect({ channel, ended }: RemoteCommand): Promise<RunResult> {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    channel.on("data", (d: Buffer) => out.push(d));
    channel.stderr.on("data", (d: Buffer) => err.push(d));
    const { code, signal } = await ended;
    return { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), code, signal };
  }

  where(): string {
    return `${this.settings.hostname} port ${this.settings.port}`;
  }

  close(): void {
    this.client.end();
  }
}

function readKnownHosts(files: string[]): KnownHost[] {
  return files.flatMap((f) => (existsSync(f) ? parseKnownHosts(readFileSync(f, "utf8"), f) : []));
}

const RSA = ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"];
const HOST_KEY_ALGORITHMS = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  ...RSA,
];

/** Offer the key types already on file first, as OpenSSH does, so a known key gets shown. */
function hostKeyOrder(known: string[]): string[] {
  const preferred = known.flatMap((t) => (t === "ssh-rsa" ? RSA : HOST_KEY_ALGORITHMS.includes(t) ? [t] : []));
  return [...new Set([...preferred, ...HOST_KEY_ALGORITHMS])];
}

function authMethods(s: SshSettings): AnyAuthMethod[] {
  const methods: AnyAuthMethod[] = [];
  if (s.identityAgent && existsSync(s.identityAgent))
    methods.push({ type: "agent", username: s.user, agent: s.identityAgent });
  for (const file of s.identityFiles) {
    if (!existsSync(file)) continue;
    const key = utils.parseKey(readFileSync(file));
    if (key instanceof Error) continue; // passphrase-protected: only an agent can use it
    methods.push({ type: "publickey", username: s.user, key: readFileSync(file) });
  }
  return methods;
}

/** A proxy process (ProxyCommand or ProxyJump) as the connection's socket. */
function proxySocket(s: SshSettings, sshCommand?: string): Duplex | undefined {
  let argv: string[] | undefined;
  if (s.proxyCommand) {
    const cmd = s.proxyCommand
      .replaceAll("%h", s.hostname)
      .replaceAll("%p", String(s.port))
      .replaceAll("%r", s.user)
      .replaceAll("%%", "%");
    argv = ["sh", "-c", `exec ${cmd}`];
  } else if (s.proxyJump) {
    argv = sshCommandArgv(sshCommand, ["-o", "BatchMode=yes", "-W", `[${s.hostname}]:${s.port}`, s.proxyJump]);
  }
  if (!argv) return undefined;
  const child = Bun.spawn(argv, { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
  const reader = child.stdout.getReader();
  const sock = new Duplex({
    read() {
      reader.read().then(
        ({ done, value }) => this.push(done ? null : Buffer.from(value)),
        () => this.push(null),
      );
    },
    write(chunk, _enc, cb) {
      child.stdin.write(chunk);
      child.stdin.flush();
      cb();
    },
    final(cb) {
      child.stdin.end();
      cb();
    },
    destroy(err, cb) {
      child.kill();
      cb(err);
    },
  });
  return sock;
}

const triedKeys = (s: SshSettings) =>
  [s.identityAgent ? "ssh-agent" : "", ...s.identityFiles.filter(existsSync)].filter(Boolean).join(", ") || "no key";

const onFile = (e: { file: string; line: number }) => `${e.file}:${e.line}`;

function hostKeyError(v: HostKeyVerdict, name: string, presented: string): PError {
  if (v.kind === "mismatch")
    return new PError(
      "host_key_mismatch",
      `host key of ${name} has CHANGED (now ${presented}; ${v.entry.keyType} on file at ${onFile(v.entry)}); ` +
        "someone may be intercepting the connection. " +
        `If the worker was reinstalled, remove the old key with: ssh-keygen -R '${name}'`,
    );
  if (v.kind === "revoked")
    return new PError("host_key_mismatch", `host key of ${name} is revoked (${onFile(v.entry)})`);
  return new PError(
    "host_key_unknown",
    problem(
      `host key of ${name} is not known`,
      presented,
      "accept it with `p worker register` or by connecting once with ssh",
    ),
  );
}

function translate(err: Error & { code?: string; level?: string }, s: SshSettings, timeoutMs: number): PError {
  const where = `${s.hostname} port ${s.port}`;
  if (err.level === "client-authentication")
    return new PError(
      "auth_failed",
      problem(
        `ssh authentication as ${s.user} to ${where} failed`,
        `tried ${triedKeys(s)}`,
        "add your key to ssh-agent or the worker's authorized_keys",
      ),
    );
  const reason =
    err.code === "ECONNREFUSED"
      ? "Connection refused"
      : err.code === "ENOTFOUND" || err.code === "EAI_AGAIN"
        ? "Name or service not known"
        : err.code === "EHOSTUNREACH" || err.code === "ENETUNREACH"
          ? "No route to host"
          : err.level === "client-timeout" || /timed out/i.test(err.message)
            ? `Connection timed out after ${timeoutMs / 1000}s`
            : err.message;
  return new PError("worker_unreachable", `connect to host ${where}: ${reason}`);
}

/** Connect the way the user's ssh would: its config, agent, keys and known_hosts. */
export async function connect(target: Target, opts: ConnectOptions = {}): Promise<Connection> {
  const s = await resolveSsh(target, opts.sshCommand);
  const name = knownHostName(s.hostKeyAlias ?? s.hostname, s.port);
  const known = readKnownHosts(s.knownHostsFiles);
  const timeoutMs = opts.timeoutMs ?? (s.connectTimeoutS ? s.connectTimeoutS * 1000 : 15000);
  const methods = authMethods(s);
  let refusal: PError | undefined;

  const hostVerifier = (blob: Buffer): boolean => {
    const keyType = keyTypeOf(blob);
    const key = blob.toString("base64");
    const fp = fingerprint(blob);
    const verdict = checkHostKey(known, name, keyType, key);
    if (verdict.kind === "match") return true;
    const acceptNew =
      opts.acceptNewHostKey || s.strictHostKeyChecking === "accept-new" || s.strictHostKeyChecking === "no";
    if (verdict.kind === "unknown" && acceptNew) {
      const file = s.knownHostsFiles[0];
      if (file) {
        mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
        appendFileSync(file, knownHostsLine(name, keyType, key, s.hashKnownHosts), { mode: 0o600 });
        opts.onNewHostKey?.({ name, keyType, fingerprint: fp, file });
      }
      return true;
    }
    refusal = hostKeyError(verdict, name, `${keyType} ${fp}`);
    return false;
  };

  const config: ConnectConfig = {
    host: s.hostname,
    port: s.port,
    username: s.user,
    readyTimeout: timeoutMs,
    keepaliveInterval: 15000,
    keepaliveCountMax: 3,
    hostVerifier,
    authHandler: methods.length ? methods : ["none"],
    algorithms: { serverHostKey: hostKeyOrder(knownKeyTypes(known, name)) as never },
  };
  const sock = proxySocket(s, opts.sshCommand);
  if (sock) config.sock = sock;

  const client = new Client();
  return new Promise((resolve, reject) => {
    client.once("ready", () => {
      // small messages go at once: a sync's and a follow's exchanges wait on each other, and
      // Nagle's algorithm would hold each one back until the last was acknowledged
      client.setNoDelay(true);
      client.removeAllListeners("error");
      client.on("error", () => {}); // later faults surface on the channels that use them
      resolve(new Connection(client, s));
    });
    // the first error decides; ending the client may raise more (a handshake cut short),
    // which must not go unheard
    client.on("error", (err) => {
      client.end();
      reject(refusal ?? translate(err, s, timeoutMs));
    });
    client.connect(config);
  });
}
