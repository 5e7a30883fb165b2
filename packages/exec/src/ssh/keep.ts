import { createHash } from "node:crypto";
import { lstatSync, mkdirSync, rmSync, statSync } from "node:fs";
import { createServer, connect as netConnect, type Socket } from "node:net";
import { dirname } from "node:path";
import { Client, type ClientChannel, type Connection as LocalClient, Server, type ServerChannel, utils } from "ssh2";
import { Connection, connectKnown, type RemoteCommand } from "./connect.ts";
import type { SshSettings } from "./resolve.ts";

/**
 * Connections kept open between runs, as OpenSSH's ControlPersist keeps them: a process
 * of p's own (the keeper) holds one SSH connection per worker for a while after its last
 * use, and lends it, whole, to one p at a time over a unix socket in a directory only the
 * user can enter. A run that borrows one makes no TCP or SSH handshake with the worker,
 * which then starts no sshd for it: one round trip says the connection still answers.
 *
 * The socket speaks SSH too (ssh2's server, with a key made at the keeper's start, and the
 * worker's settings as the "password"), so a borrowed connection is an ssh2 Client like
 * any other, its channels forwarded one for one: exec, data both ways with backpressure,
 * stderr, EOF, exit status or signal, close.
 *
 * The keeper only ever lends connections that worked. One it has not got yet, or has lent
 * already, or that does not answer within ANSWER_MS, it declines, and p connects as it
 * would without it (which is where every error is said); for one it has not got, it
 * connects meanwhile, for the next run, trusting only host keys already known and
 * recording nothing. A kept connection that goes (a cut link, once ssh2's keepalives give
 * up; the worker's sshd restarted) ends the run borrowing it as its own connection's
 * loss would.
 */

/**
 * How long a kept connection may take to answer before a run connects on its own (half
 * the run's own limit, where that is less: it may still connect within it).
 */
const ANSWER_MS = 3000;
const answerMs = (timeoutMs?: number) => Math.min(ANSWER_MS, (timeoutMs ?? Infinity) / 2);
const LOCAL_USER = "p";

/** What names a kept connection: all that made it (how ssh resolved the worker, the ssh command). */
export const keptKey = (settings: SshSettings, sshCommand?: string) =>
  createHash("sha256")
    .update(JSON.stringify([settings, sshCommand ?? ""]))
    .digest("hex");

interface Request {
  settings: SshSettings;
  sshCommand?: string;
  answerMs: number;
}

/**
 * Whether `dir` is safe to hold the keeper's socket: a directory of this user's that no
 * one else may enter (made so if it is not there).
 */
export function privateDir(dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    return st.isDirectory() && st.uid === process.getuid?.() && (st.mode & 0o077) === 0;
  } catch {
    return false;
  }
}

/**
 * The connection the keeper at `socket` keeps for `settings`, borrowed; "absent" if no
 * keeper listens there; undefined if it declines (none kept yet, lent, or not answering).
 */
export function borrowKept(
  socket: string,
  settings: SshSettings,
  opts: { sshCommand?: string; timeoutMs?: number } = {},
): Promise<Connection | "absent" | undefined> {
  const { sshCommand } = opts;
  if (!privateDir(dirname(socket))) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const sock = netConnect(socket);
    sock.once("error", (err: NodeJS.ErrnoException) =>
      resolve(err.code === "ENOENT" || err.code === "ECONNREFUSED" ? "absent" : undefined),
    );
    sock.once("connect", () => {
      sock.removeAllListeners("error");
      const client = new Client();
      client.once("ready", () => {
        client.removeAllListeners("error");
        client.on("error", () => {}); // (later faults surface on the channels that use them)
        resolve(new Connection(client, settings));
      });
      client.on("error", () => {
        client.end();
        resolve(undefined);
      });
      const request: Request = {
        settings,
        ...(sshCommand !== undefined && { sshCommand }),
        answerMs: answerMs(opts.timeoutMs),
      };
      client.connect({
        sock,
        username: LOCAL_USER,
        authHandler: ["password"],
        password: JSON.stringify(request),
        // (only this user can reach the socket: privateDir)
        hostVerifier: () => true,
        readyTimeout: request.answerMs + 2000,
        algorithms: {
          kex: ["curve25519-sha256", "curve25519-sha256@libssh.org"],
          serverHostKey: ["ssh-ed25519"],
          cipher: ["aes128-gcm@openssh.com"],
        },
      });
    });
  });
}

/** A kept connection (none yet while it is being made), and the run it is lent to. */
interface Kept {
  conn?: Connection;
  lentTo?: LocalClient;
}

/**
 * Serve kept connections at `socket` until no run has used the keeper for `idleMs`, or
 * another keeper took the socket. Resolves once it has let everything go.
 */
export async function serveKeeper(socket: string, idleMs: number): Promise<void> {
  if (!privateDir(dirname(socket))) return;
  const kept = new Map<string, Kept>();
  const ssh = new Server({ hostKeys: [utils.generateKeyPairSync("ed25519").private] });
  const done = Promise.withResolvers<void>();
  let clients = 0;
  let idle: ReturnType<typeof setTimeout> | undefined;
  let watch: ReturnType<typeof setInterval> | undefined;
  let inode: number | undefined;

  const stop = () => {
    clearInterval(watch);
    clearTimeout(idle);
    for (const k of kept.values()) k.conn?.close();
    kept.clear();
    listener.close();
    // (the socket only if it is still this keeper's)
    try {
      if (statSync(socket).ino === inode) rmSync(socket);
    } catch {}
    done.resolve();
  };
  const rest = () => {
    clearTimeout(idle);
    if (clients === 0) idle = setTimeout(stop, idleMs);
  };

  const drop = (key: string, k: Kept) => {
    if (kept.get(key) === k) kept.delete(key);
    k.conn?.close();
    k.lentTo?.end();
  };

  /** Connect for a later run: quietly (a run that finds none connects and speaks for itself). */
  const make = (key: string, req: Request) => {
    const k: Kept = {};
    kept.set(key, k);
    connectKnown(req.settings, req.sshCommand).then(
      (conn) => {
        if (kept.get(key) !== k) return conn.close();
        k.conn = conn;
        conn.client.on("close", () => drop(key, k));
      },
      () => {
        if (kept.get(key) === k) kept.delete(key);
      },
    );
  };

  ssh.on("connection", (client) => {
    clients++;
    clearTimeout(idle);
    let lease: Kept | undefined;
    let gone = false;
    const channels = new Set<ClientChannel>();
    client.on("error", () => {});
    client.on("close", () => {
      gone = true;
      clients--;
      for (const c of channels) c.close();
      // (what it borrowed goes back; so does one it went away from while it was asking)
      for (const k of kept.values()) if (k.lentTo === client) k.lentTo = undefined;
      rest();
    });
    client.on("authentication", (ctx) => {
      if (ctx.method !== "password") return ctx.reject(["password"]);
      let req: Request;
      try {
        req = JSON.parse(ctx.password);
      } catch {
        return ctx.reject();
      }
      const key = keptKey(req.settings, req.sshCommand);
      const k = kept.get(key);
      if (!k) {
        make(key, req);
        return ctx.reject();
      }
      const conn = k.conn;
      if (!conn || k.lentTo) return ctx.reject();
      k.lentTo = client;
      void answers(conn, Number(req.answerMs) || ANSWER_MS).then((ok) => {
        if (ok && !gone && k.lentTo === client && kept.get(key) === k) {
          lease = k;
          return ctx.accept();
        }
        if (k.lentTo === client) k.lentTo = undefined;
        if (!ok) drop(key, k);
        if (!gone) ctx.reject();
      });
    });
    client.on("ready", () => {
      client.on("session", (accept) => {
        accept().on("exec", (acceptExec, rejectExec, info) => {
          const conn = lease?.conn;
          if (!conn) return rejectExec();
          conn.exec(info.command).then(
            (remote) => {
              channels.add(remote.channel);
              void remote.ended.then(() => channels.delete(remote.channel));
              forward(remote, acceptExec());
            },
            () => rejectExec(),
          );
        });
      });
    });
  });

  const listener = createServer((sock: Socket) => ssh.injectSocket(sock));
  const listen = () =>
    new Promise<boolean>((resolve) => {
      listener.once("error", () => resolve(false));
      listener.listen(socket, () => resolve(true));
    });
  // (a socket left by a keeper that was killed is taken over; a live keeper's is not)
  if (!(await listen())) {
    if (await keeperAt(socket)) return;
    rmSync(socket, { force: true });
    if (!(await listen())) return;
  }
  inode = statSync(socket).ino;
  // (a keeper whose socket another took, or removed, has no runs left to serve)
  watch = setInterval(() => {
    try {
      if (statSync(socket).ino === inode) return;
    } catch {}
    stop();
  }, 10_000);
  rest();
  await done.promise;
}

/** Whether the connection still answers: one global request, which sshd answers at once. */
function answers(conn: Connection, withinMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), withinMs);
    try {
      // (cancelling a forwarding never asked for: sshd says no, and does nothing)
      conn.client.unforwardIn("127.0.0.1", 1, () => {
        clearTimeout(timer);
        resolve(true);
      });
    } catch {
      clearTimeout(timer);
      resolve(false);
    }
  });
}

/** Whether a keeper answers at `socket` (else nothing listens there, or nothing is there). */
function keeperAt(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = netConnect(socket);
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("error", () => resolve(false));
  });
}

/** One channel lent: the worker's command and the borrowing run's channel, joined. */
function forward({ channel, ended }: RemoteCommand, local: ServerChannel | undefined) {
  if (!local) return channel.close();
  // (stream.pipe holds each side while the other is full; the run's EOF is the command's)
  local.pipe(channel);
  local.on("close", () => channel.close());
  channel.pipe(local, { end: false });
  channel.stderr.pipe(local.stderr, { end: false });
  // the status once all the command wrote to stderr has gone (none where the connection went)
  void ended.then(({ code, signal }) => {
    local.stderr.end(() => {
      if (code !== null) local.exit(code);
      else if (signal !== undefined) local.exit(signal, false, "");
      local.end();
    });
  });
}
