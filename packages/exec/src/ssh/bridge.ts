import { connect, type Socket } from "node:net";
import { StringDecoder } from "node:string_decoder";
import type { Connection } from "./connect.ts";

/**
 * rsync's remote shell over an SSH connection p already has, so that rsync makes no
 * handshake of its own. rsync starts with RELAY_FDS sockets (socket pairs whose other
 * ends p holds) as its fds 3, 4 and 5, and RELAY_RSH as its remote shell: a line of sh
 * that costs two `cat`s, not a program's start.
 *
 * On fd 4 it writes ssh's arguments (their count, then each, every one NUL-ended); rsync's
 * stdin goes to fd 5 (whose end is the command's stdin's end), and the command's stdout
 * comes back on fd 3 until its end. Then it reads fd 4 for the command's stderr, a line
 * at a time ("e" before each), until the command's exit status ("x" and the status).
 *
 * The shell rsync started exits at once, leaving that work to a shell of its own: rsync,
 * once done, looks for its remote shell's end only every 20 ms (and the command's status
 * comes after the last of what rsync waits for), so a remote shell that lived as long as
 * the command cost each sync up to 20 ms. The command's status is p's to know instead
 * (serveRelay's `ended`); rsync's stderr still ends only with the relay.
 */
export const RELAY_FDS = 3;

const SCRIPT = [
  'printf "%s\\0" $# "$@" >&4',
  // (an asynchronous command's stdin is /dev/null unless it says otherwise: rsync's is
  // kept as fd 6; and only the first cat holds fd 5, so that its end is the stdin's end)
  "exec 6<&0",
  "{ cat <&6 >&5 & i=$!",
  "exec 6<&- 5>&-",
  "cat <&3",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the shell's ${l#e}
  'while IFS= read -r l <&4; do case $l in x*) break ;; e*) printf "%s\\n" "${l#e}" >&2 ;; esac; done',
  "kill $i 2>/dev/null; } &",
].join("; ");

/** rsync's `-e` for the relay (rsync splits it at spaces, keeping what is single-quoted whole). */
export const RELAY_RSH = `sh -c '${SCRIPT}' p-rsh`;

/** The command in ssh's arguments `[options] host command...`, its words joined as ssh joins them. */
export function remoteCommand(args: readonly string[]): string {
  let i = 0;
  // (rsync may pass -l USER, or other options, before the host)
  while (i < args.length && args[i]!.startsWith("-")) i += /^-[lpoiFJ]$/.test(args[i]!) ? 2 : 1;
  return args.slice(i + 1).join(" ");
}

/** ssh's arguments as the relay's sh writes them ("<count>\0<arg>\0..."), once all have come; else undefined. */
export function relayArgs(bytes: Buffer): string[] | undefined {
  const words = bytes.toString().split("\0");
  const count = Number(words[0]);
  if (!Number.isInteger(count) || words.length < count + 2) return undefined;
  return words.slice(1, count + 1);
}

/**
 * A remote shell served: `ended` says its command's exit status as ssh gives it (255:
 * killed, lost or never started), or undefined if the shell went before naming one.
 */
export interface ServedRelay {
  ended: Promise<number | undefined>;
  close(): void;
}

/**
 * Serve one remote shell started with RELAY_RSH, given p's ends of its sockets: its
 * command runs on `connection` as ssh would run it. A remote shell that goes away (rsync
 * killed) closes the command's channel, leaving nothing running on the worker.
 */
export function serveRelay(fds: readonly number[], connection: Promise<Connection>): ServedRelay {
  const [out, control, input] = fds.map((fd) => connect({ fd, allowHalfOpen: true } as never) as Socket) as [
    Socket,
    Socket,
    Socket,
  ];
  input.pause();
  let header = Buffer.alloc(0);
  let closeChannel = () => {};
  // (its status once known; else undefined once the shell is gone: all that holds its end has
  // ended, and it named no command, or p let go of it)
  const ended = Promise.withResolvers<number | undefined>();
  for (const gone of ["end", "close"]) control.on(gone, () => ended.resolve(undefined));
  const sockets = [out, control, input];
  for (const s of sockets) s.on("error", () => s.destroy());
  const fail = (why: string) => {
    ended.resolve(255);
    if (control.destroyed) return;
    out.end();
    control.end(`ep: ${why}\nx255\n`);
  };
  const onHeader = (chunk: Buffer) => {
    header = Buffer.concat([header, chunk]);
    const args = relayArgs(header);
    if (!args) return;
    control.off("data", onHeader);
    run(remoteCommand(args)).catch((err: Error) => fail(err.message));
  };
  control.on("data", onHeader);

  const run = async (command: string) => {
    const conn = await connection;
    const { channel, ended: commandEnded } = await conn.exec(command);
    // (a remote shell gone meanwhile, rsync killed, leaves nothing running on the worker)
    if (control.destroyed || control.readableEnded) return channel.close();
    closeChannel = () => channel.close();
    control.on("close", closeChannel);
    // rsync's stdin to the command, and the command's stdout back, with backpressure both ways
    input.on("data", (d: Buffer) => {
      if (!channel.write(d)) {
        input.pause();
        channel.once("drain", () => input.resume());
      }
    });
    input.on("end", () => channel.end());
    input.resume();
    channel.on("data", (d: Buffer) => {
      if (!out.write(d)) {
        channel.pause();
        out.once("drain", () => channel.resume());
      }
    });
    channel.on("end", () => out.end());
    // stderr a line at a time, each whole (what a last line lacks, its newline is added;
    // a character cut between two chunks is joined again)
    let line = "";
    const text = new StringDecoder("utf8");
    channel.stderr.on("data", (d: Buffer) => {
      const lines = (line + text.write(d)).split("\n");
      line = lines.pop()!;
      for (const l of lines) control.write(`e${l}\n`);
    });
    const status = (await commandEnded).code ?? 255;
    ended.resolve(status);
    out.end();
    control.end(`${line ? `e${line}\n` : ""}x${status}\n`);
  };

  return {
    ended: ended.promise,
    close() {
      control.off("close", closeChannel);
      for (const s of sockets) s.destroy();
    },
  };
}
