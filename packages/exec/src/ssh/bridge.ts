import { createServer, type Server, type Socket } from "node:net";
import type { Connection } from "./connect.ts";

/**
 * A local program's way onto an SSH connection p already has, so that rsync needs no
 * handshake of its own: rsync's remote shell is a small client (p itself, see the cli's
 * rsh.ts) that hands the remote command to this process over a unix socket in a private
 * directory; it runs on the connection as ssh would run it, and its stdout, stderr and
 * exit status come back.
 *
 * The client sends the command (a 4-byte length, then its bytes), then its stdin as it
 * comes, and half-closes at its end. Back come frames: a type byte (stdout, stderr, exit),
 * a 4-byte length, the bytes; the exit frame holds the status as ssh gives it (255 if the
 * command was killed or the connection lost).
 */
export const FRAME = { stdout: 1, stderr: 2, exit: 3 } as const;

export function frame(type: number, data: Uint8Array): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(type, 0);
  head.writeUInt32BE(data.length, 1);
  return Buffer.concat([head, data]);
}

/** What a client sends first: the command, length-prefixed. */
export function commandFrame(command: string): Buffer {
  return frame(0, Buffer.from(command)).subarray(1);
}

/** Splits a byte stream into length-prefixed records: `take` what arrived, get the whole records so far. */
export class Frames {
  private buf = Buffer.alloc(0);
  constructor(private readonly typed: boolean) {}

  take(chunk: Uint8Array): { type: number; data: Buffer }[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : Buffer.from(chunk);
    const out: { type: number; data: Buffer }[] = [];
    const head = this.typed ? 5 : 4;
    while (this.buf.length >= head) {
      const len = this.buf.readUInt32BE(head - 4);
      if (this.buf.length < head + len) break;
      out.push({ type: this.typed ? this.buf[0]! : 0, data: this.buf.subarray(head, head + len) });
      this.buf = this.buf.subarray(head + len);
    }
    return out;
  }

  /** What arrived after the last whole record. */
  rest(): Buffer {
    const r = this.buf;
    this.buf = Buffer.alloc(0);
    return r;
  }
}

/** Serves one connection's commands on a unix socket (see above); each accepted client runs one command. */
export class RshBridge {
  private readonly server: Server;

  private constructor(
    readonly socket: string,
    connection: Promise<Connection>,
  ) {
    this.server = createServer({ allowHalfOpen: true }, (client) => serve(client, connection));
  }

  /** Listening at `socket` (a path in a directory only this user can enter). */
  static listen(socket: string, connection: Promise<Connection>): Promise<RshBridge> {
    const bridge = new RshBridge(socket, connection);
    return new Promise((resolve, reject) => {
      bridge.server.once("error", reject);
      bridge.server.listen(socket, () => resolve(bridge));
    });
  }

  close(): void {
    this.server.close();
  }
}

function serve(client: Socket, connection: Promise<Connection>): void {
  const header = new Frames(false);
  let started = false;
  const early: Buffer[] = [];
  let clientEnded = false;
  const fail = (why: string) => {
    client.write(frame(FRAME.stderr, Buffer.from(`p: ${why}\n`)));
    client.end(frame(FRAME.exit, Buffer.from("255")));
  };
  const onData = (chunk: Buffer) => {
    if (started) return early.push(chunk);
    const [command] = header.take(chunk);
    if (!command) return;
    started = true;
    early.push(header.rest());
    client.pause();
    run(command.data.toString()).catch((err: Error) => fail(err.message));
  };
  client.on("data", onData);
  client.on("end", () => {
    clientEnded = true;
  });
  client.on("error", () => client.destroy());

  const run = async (command: string) => {
    const conn = await connection;
    const { channel, ended } = await conn.exec(command);
    // (a client gone meanwhile, rsync killed, leaves nothing running on the worker)
    if (client.destroyed) return channel.close();
    // the client's stdin: what came early, then the rest, with backpressure both ways
    client.off("data", onData);
    for (const b of early) if (b.length) channel.write(b);
    client.on("data", (d: Buffer) => {
      if (!channel.write(d)) {
        client.pause();
        channel.once("drain", () => client.resume());
      }
    });
    if (clientEnded) channel.end();
    else client.on("end", () => channel.end());
    client.on("close", () => channel.close());
    client.resume();
    const back = (type: number) => (d: Buffer) => {
      if (!client.write(frame(type, d))) {
        channel.pause();
        client.once("drain", () => channel.resume());
      }
    };
    channel.on("data", back(FRAME.stdout));
    channel.stderr.on("data", back(FRAME.stderr));
    const { code } = await ended;
    if (!client.destroyed) client.end(frame(FRAME.exit, Buffer.from(String(code ?? 255))));
  };
}
