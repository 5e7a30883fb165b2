import { describe, expect, test } from "bun:test";
import { Duplex, PassThrough } from "node:stream";
import { RELAY_FDS, RELAY_RSH, relayArgs, remoteCommand, serveRelay } from "../src/ssh/bridge.ts";
import type { Connection } from "../src/ssh/connect.ts";

/**
 * A connection whose one command is played here: it upper-cases its stdin to stdout, says
 * `err` on stderr and exits with `code` once its stdin ends, or at once with `early`.
 */
function fakeConnection(opts: { err: string; code: number | null; early?: boolean; exitAfterMs?: number }) {
  const seen: { command?: string; closed: boolean } = { closed: false };
  const conn = {
    exec(command: string) {
      seen.command = command;
      let done: (r: { code: number | null }) => void = () => {};
      const ended = new Promise<{ code: number | null }>((resolve) => (done = resolve));
      const stderr = new PassThrough();
      const channel = new Duplex({
        read() {},
        write(chunk, _enc, next) {
          channel.push(Buffer.from(chunk.toString().toUpperCase()));
          next();
        },
        final(next) {
          finish();
          next();
        },
      });
      const finish = () => {
        // (a byte at a time: a character may come in pieces)
        for (const b of Buffer.from(opts.err)) stderr.write(Buffer.from([b]));
        stderr.end();
        channel.push(null);
        setTimeout(() => done({ code: opts.code }), opts.exitAfterMs ?? 20);
      };
      Object.assign(channel, { stderr, close: () => (seen.closed = true) });
      if (opts.early) setTimeout(finish, 10);
      return Promise.resolve({ channel, ended });
    },
  };
  return { conn: conn as unknown as Connection, seen };
}

/**
 * Run the relay's remote shell as rsync would: `host command...`, with this stdin. What
 * it printed, its command's status as p knows it (`code`), and how the shell itself
 * exited, and when (ms from its start).
 */
async function relay(conn: Promise<Connection>, args: string[], input: string) {
  // (rsync splits -e at spaces and keeps single-quoted text whole: the argv it would run)
  const m = /^sh -c '(.*)' (p-rsh)$/s.exec(RELAY_RSH);
  expect(m).not.toBeNull();
  const sockets = Array.from({ length: RELAY_FDS }, () => "socket-fd" as const);
  const t0 = performance.now();
  const proc = Bun.spawn(["sh", "-c", m![1]!, m![2]!, ...args], { stdio: ["pipe", "pipe", "pipe", ...sockets] });
  const served = serveRelay(proc.stdio.slice(3) as number[], conn);
  proc.stdin.write(input);
  proc.stdin.end();
  const shell = proc.exited.then((code) => ({ code, ms: performance.now() - t0 }));
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    served.ended,
  ]);
  served.close();
  return { out, err, code, shell: await shell };
}

describe("rsync's remote shell over p's connection", () => {
  test.each([
    [["host", "rsync", "--server", "-e.Lsf", "."], "rsync --server -e.Lsf ."],
    [["-l", "me", "host", "sh -c 'x'", "--server"], "sh -c 'x' --server"],
    [["-oBatchMode=yes", "-p", "2222", "host", "true"], "true"],
    [["host"], ""],
  ])("ssh's arguments %p run %p", (args, command) => {
    expect(remoteCommand(args)).toBe(command);
  });

  test.each([
    ["", undefined],
    ["2\0a\0", undefined],
    ["2\0a\0b c\0", ["a", "b c"]],
    ["3\0h\0\0x\0", ["h", "", "x"]],
    ["0\0", []],
  ])("the words %j, as they arrive, are %p", (bytes, words) => {
    expect(relayArgs(Buffer.from(bytes))).toEqual(words as string[] | undefined);
  });

  test("the command runs on the connection: stdin there, stdout and stderr back, its exit status p's", async () => {
    const { conn, seen } = fakeConnection({ err: "warn: ünï ✓\nlast line without newline", code: 23 });
    const r = await relay(Promise.resolve(conn), ["-l", "me", "host", "rsync --server", "-x y", "it's"], "abc\ndef");
    expect(seen.command).toBe("rsync --server -x y it's");
    expect(r).toMatchObject({ out: "ABC\nDEF", err: "warn: ünï ✓\nlast line without newline\n", code: 23 });
  });

  test("a command that ends before its stdin does still gives its status; a lost one gives 255", async () => {
    const early = fakeConnection({ err: "", code: 0, early: true });
    expect((await relay(Promise.resolve(early.conn), ["h", "true"], "")).code).toBe(0);
    const lost = fakeConnection({ err: "", code: null });
    expect((await relay(Promise.resolve(lost.conn), ["h", "cat"], "x")).code).toBe(255);
  });

  test("a connection that failed is said on stderr, with ssh's 255", async () => {
    const failed = Promise.reject(new Error("worker w1 is unreachable"));
    failed.catch(() => {});
    expect(await relay(failed, ["h", "true"], "data")).toMatchObject({
      out: "",
      err: "p: worker w1 is unreachable\n",
      code: 255,
    });
  });

  test("the shell rsync started ends at once, with 0, long before its command: rsync, once done, looks for its end only every 20 ms", async () => {
    const { conn } = fakeConnection({ err: "late\n", code: 3, exitAfterMs: 600 });
    const r = await relay(Promise.resolve(conn), ["h", "cat"], "abc");
    // (what the command printed still all comes, through the shell's own relay)
    expect(r).toMatchObject({ out: "ABC", err: "late\n", code: 3, shell: { code: 0 } });
    expect(r.shell.ms).toBeLessThan(400);
  });

  test("a remote shell that goes before it names a command leaves p waiting for nothing", async () => {
    const sockets = Array.from({ length: RELAY_FDS }, () => "socket-fd" as const);
    const proc = Bun.spawn(["sh", "-c", "exit 0"], { stdio: ["ignore", "ignore", "ignore", ...sockets] });
    const { conn, seen } = fakeConnection({ err: "", code: 0 });
    const served = serveRelay(proc.stdio.slice(3) as number[], Promise.resolve(conn));
    expect(await served.ended).toBeUndefined();
    expect(seen.command).toBeUndefined();
    served.close();
  });
});
