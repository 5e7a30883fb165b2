import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { Duplex } from "node:stream";
import {
  type AnyAuthMethod,
  type AuthHandlerMiddleware,
  Client,
  type ClientChannel,
  type ConnectConfig,
  utils,
} from "ssh2";
import { PError, problem } from "../errors.ts";
import { borrowKept } from "./keep.ts";
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
  /**
   * What `ssh -G` said for this target the last time, and where to keep what it says
   * now. With it, the handshake starts at once while ssh -G runs again, and
   * authentication waits until ssh -G has said the same; if it says otherwise (or the
   * host's key is not known), that connection goes and one is made with what it says now.
   */
  resolved?: { last?: SshSettings; save(s: SshSettings): void };
  /**
   * Where a keeper of connections listens (see keep.ts): a connection it keeps for these
   * settings is borrowed, none made; `absent` is told when none listens there.
   */
  keep?: { socket: string; absent(): void };
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

/**
 * ssh2's authHandler trying `methods` in order, the first only once `confirmed` (if
 * given) says the settings they came from hold; else `stop` hears why not.
 */
function confirmedFirst(
  methods: (AnyAuthMethod | "none")[],
  confirmed: Promise<boolean> | undefined,
  stop: (err: Error) => void,
): AuthHandlerMiddleware {
  let next = 0;
  return (_left, _partial, callback) => {
    if (next > 0 || !confirmed) return methods[next++] ?? false;
    next++;
    confirmed.then(
      (ok) => (ok ? callback(methods[0]!) : stop(STALE)),
      (err: Error) => stop(err),
    );
    return undefined as never;
  };
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

/** A handshake begun with settings `ssh -G` no longer gives, or with a host key it could not take alone. */
const STALE = new Error("settings changed");

/** Connect the way the user's ssh would: its config, agent, keys and known_hosts. */
export async function connect(target: Target, opts: ConnectOptions = {}): Promise<Connection> {
  const last = opts.resolved?.last;
  const resolving = resolveSsh(target, opts.sshCommand);
  const same = resolving.then((s) => {
    const unchanged = last !== undefined && JSON.stringify(s) === JSON.stringify(last);
    if (!unchanged) opts.resolved?.save(s);
    return unchanged;
  });
  same.catch(() => {});
  // a connection kept for these settings is borrowed (see keep.ts), while ssh -G runs here;
  // lent only while it still says the same, else it goes back
  if (opts.keep) {
    const kept = await borrowKept(opts.keep.socket, last ?? (await resolving), opts);
    if (kept === "absent") opts.keep.absent();
    else if (kept) {
      const lent = await same.then(
        (unchanged) => last === undefined || unchanged,
        () => false,
      );
      if (lent) return kept;
      kept.close();
    }
  }
  // (a proxy is a process of its own: started only once ssh -G has named it)
  const guess = last && !last.proxyCommand && !last.proxyJump;
  // the handshake goes first, the worker's sshd starting while ssh -G runs here; it
  // authenticates once ssh -G has said the same (`same`)
  const confirmed = Promise.withResolvers<boolean>();
  confirmed.promise.catch(() => {});
  same.then(confirmed.resolve, confirmed.reject);
  const guessed = guess ? handshake(last, opts, confirmed.promise) : undefined;
  if (guessed) {
    try {
      return await guessed;
    } catch (err) {
      // with the settings as they are now, a failure is the answer; else they are tried
      if (err !== STALE && (await same)) throw err;
    }
  }
  return handshake(await resolving, opts);
}

/**
 * A connection with settings `s` that asks nothing and records nothing: a host key not
 * known already is refused (the keeper's, for a later run; see keep.ts).
 */
export const connectKnown = (s: SshSettings, sshCommand?: string) =>
  handshake(s, { ...(sshCommand !== undefined && { sshCommand }) }, Promise.resolve(true));

/**
 * The SSH handshake with settings `s`. With `confirmed`, the settings are a guess:
 * authentication waits for it, and a host key that is not known already is not taken.
 */
function handshake(s: SshSettings, opts: ConnectOptions, confirmed?: Promise<boolean>): Promise<Connection> {
  const name = knownHostName(s.hostKeyAlias ?? s.hostname, s.port);
  const known = readKnownHosts(s.knownHostsFiles);
  const timeoutMs = opts.timeoutMs ?? (s.connectTimeoutS ? s.connectTimeoutS * 1000 : 15000);
  const methods = authMethods(s);
  let refusal: Error | undefined;

  const hostVerifier = (blob: Buffer): boolean => {
    const keyType = keyTypeOf(blob);
    const key = blob.toString("base64");
    const fp = fingerprint(blob);
    const verdict = checkHostKey(known, name, keyType, key);
    if (verdict.kind === "match") return true;
    if (confirmed) {
      refusal = STALE;
      return false;
    }
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
    authHandler: confirmedFirst(methods.length ? methods : ["none"], confirmed, (err) => {
      refusal = err;
      client.end();
      fail?.(err);
    }),
    algorithms: { serverHostKey: hostKeyOrder(knownKeyTypes(known, name)) as never },
  };
  const client = new Client();
  const sock = proxySocket(s, opts.sshCommand);
  if (sock) config.sock = sock;

  let fail: ((err: Error) => void) | undefined;
  return new Promise((resolve, reject) => {
    fail = reject;
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
