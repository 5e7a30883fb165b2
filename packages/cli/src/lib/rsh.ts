import { createConnection } from "node:net";
import { join } from "node:path";
import { commandFrame, FRAME, Frames } from "@p/exec/bridge";

/** The first argument that makes a binary of p rsync's remote shell over p's own connection. */
export const RSH_ARG = "__rsh";

/**
 * rsync's `-e` that runs this binary as the client of an RshBridge at `socket`: the
 * compiled binary itself, or from source, bun and the p entry. rsync splits `-e` at
 * spaces and keeps what is quoted; undefined where a path could not be said that way.
 */
export function bridgeRsh(socket: string): string | undefined {
  const compiled = import.meta.dir.startsWith("/$bunfs");
  const self = compiled ? [process.execPath] : [process.execPath, join(import.meta.dir, "..", "bin", "p.ts")];
  const words = [...self, RSH_ARG, socket];
  if (words.some((w) => w.includes('"') || w.includes("'") || w.includes("\\"))) return undefined;
  return words.map((w) => (/\s/.test(w) ? `"${w}"` : w)).join(" ");
}

/** The command in ssh's arguments `[options] host command...`, its words joined as ssh joins them. */
export function remoteCommand(args: string[]): string {
  let i = 0;
  // (rsync may pass -l USER, or other options, before the host)
  while (i < args.length && args[i]!.startsWith("-")) i += /^-[lpoiFJ]$/.test(args[i]!) ? 2 : 1;
  return args.slice(i + 1).join(" ");
}

/**
 * The client: `<socket> [ssh options] host command...`, as rsync runs its remote shell.
 * The command's words are joined with spaces, as ssh joins them; the host is the one the
 * bridge's connection already reaches. Returns the exit status, as ssh's.
 */
export function rshClient(args: string[]): Promise<number> {
  const [socket, ...rest] = args;
  const command = remoteCommand(rest);
  return new Promise((resolve) => {
    let status = 255;
    const conn = createConnection({ path: socket ?? "", allowHalfOpen: true });
    conn.on("error", (err) => {
      process.stderr.write(`p: lost p's connection to the worker (${err.message})\n`);
      resolve(255);
    });
    conn.on("connect", () => {
      conn.write(commandFrame(command));
      process.stdin.on("data", (d: Buffer) => {
        if (!conn.write(d)) {
          process.stdin.pause();
          conn.once("drain", () => process.stdin.resume());
        }
      });
      process.stdin.on("end", () => conn.end());
    });
    // (each write is waited for before the exit: what rsync reads last must all arrive)
    const frames = new Frames(true);
    let pending = 0;
    let closed = false;
    const done = () => closed && pending === 0 && resolve(status);
    conn.on("data", (chunk: Buffer) => {
      for (const { type, data } of frames.take(chunk)) {
        if (type === FRAME.exit) {
          status = Number(data.toString()) || 0;
          continue;
        }
        const out = type === FRAME.stdout ? process.stdout : process.stderr;
        pending++;
        const flowing = out.write(data, () => {
          pending--;
          done();
        });
        if (!flowing) {
          conn.pause();
          out.once("drain", () => conn.resume());
        }
      }
    });
    // (the end of what comes back is the end: rsync keeps its side open until this exits)
    const ended = () => {
      closed = true;
      done();
    };
    conn.on("end", ended);
    conn.on("close", ended);
  });
}
