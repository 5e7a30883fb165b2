import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Duplex, PassThrough } from "node:stream";
import { Connection, type RemoteCommand } from "../src/ssh/connect.ts";
import { SshWorker } from "../src/ssh/worker.ts";
import { localWorker } from "./_local.ts";

const { home, env, newId } = localWorker("ahead", "b000");

/** A Connection whose commands run in the local sh (HOME the scratch home): each one started is kept. */
function localConnection() {
  const started: { command: string; exited: Promise<number> }[] = [];
  const conn = Object.create(Connection.prototype) as Connection;
  conn.exec = async (command: string): Promise<RemoteCommand> => {
    const proc = Bun.spawn(["sh", "-c", command], { env, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
    const stderr = new PassThrough();
    const channel = new Duplex({
      read() {},
      write(chunk, _enc, next) {
        proc.stdin.write(chunk);
        proc.stdin.flush();
        next();
      },
      final(next) {
        proc.stdin.end();
        next();
      },
    });
    const pump = async (from: ReadableStream<Uint8Array>, to: (b: Buffer | null) => void) => {
      for await (const b of from) to(Buffer.from(b));
      to(null);
    };
    const out = pump(proc.stdout, (b) => channel.push(b));
    const err = pump(proc.stderr, (b) => (b ? stderr.write(b) : stderr.end()));
    Object.assign(channel, { stderr, close: () => proc.kill() });
    started.push({ command, exited: proc.exited });
    const ended = Promise.all([proc.exited, out, err]).then(([code]) => ({ code }));
    return { channel: channel as unknown as RemoteCommand["channel"], ended };
  };
  return { conn, started };
}

describe("a launch sent ahead", () => {
  test("taken up as it was sent: one command on the worker, the job started by its word", async () => {
    const { conn, started } = localConnection();
    const worker = new SshWorker(conn, "w");
    const spec = { id: newId(), command: "true", cwd: "/", worker: "w" };
    worker.sendAhead(spec, false);
    const state = await worker.launch(spec);
    expect(state?.state).toMatch(/^(running|exited)$/);
    expect(started).toHaveLength(1);
    expect(existsSync(join(home, ".p/jobs", spec.id))).toBe(true);
  });

  test("taken up otherwise (followed, not detached): it is called off, and the launch made afresh", async () => {
    const { conn, started } = localConnection();
    const worker = new SshWorker(conn, "w");
    const spec = { id: newId(), command: "true", cwd: "/", worker: "w" };
    worker.sendAhead(spec, true);
    const state = await worker.launch(spec);
    expect(state?.state).toMatch(/^(running|exited)$/);
    expect(started).toHaveLength(2);
    // (the one sent ahead left having done nothing, rather than wait for a word never sent)
    expect(await started[0]!.exited).toBe(4);
  });

  test("withdrawn: nothing of it happens on the worker", async () => {
    const { conn, started } = localConnection();
    const worker = new SshWorker(conn, "w");
    const spec = { id: newId(), command: "touch ~/ran", cwd: "/", worker: "w" };
    worker.sendAhead(spec, false);
    worker.withdraw(spec.id);
    expect(await started[0]!.exited).toBe(4);
    expect(existsSync(join(home, ".p/jobs", spec.id))).toBe(false);
    expect(existsSync(join(home, "ran"))).toBe(false);
  });
});
