import { describe, expect, test } from "bun:test";
import { type FollowOptions, type FollowResult, StreamCut, type WorkerBackend } from "@p/exec";
import { backoffMs, followJob } from "../src/lib/follow.ts";

const ID = "00000000-0000-4000-8000-000000000001";
const LOG = "one\ntwo\nthree\nfour\n";

/** A worker whose stream of LOG is cut after `cutAt` bytes (each connection once, if given). */
function worker(cutAt: number | undefined, calls: { offset: number }[]): WorkerBackend {
  const follow = async (_id: string, opts: FollowOptions): Promise<FollowResult> => {
    const offset = opts.offset ?? 0;
    calls.push({ offset });
    const progress = opts.progress ?? { bytes: 0 };
    const end = cutAt === undefined ? LOG.length : Math.min(LOG.length, cutAt);
    const chunk = Buffer.from(LOG.slice(offset, Math.max(offset, end)));
    opts.out.write(chunk);
    progress.bytes += chunk.length;
    if (cutAt !== undefined && end < LOG.length) throw new StreamCut(true, progress.bytes, "lost the connection to w");
    return {
      exitCode: 0,
      endedAt: 1,
      startedAt: 1,
      stopped: false,
      timedOut: false,
      skipped: false,
      ran: true,
      size: LOG.length,
      bytes: progress.bytes,
      diagnostics: [],
    };
  };
  const no = () => Promise.reject(new Error("not used"));
  return { follow, start: no, launch: no, status: no, stop: no, remove: no, probe: no, close() {} };
}

const sink = () => {
  let text = "";
  return {
    write: (c: Uint8Array) => {
      text += Buffer.from(c).toString();
      return true;
    },
    once: () => undefined,
    text: () => text,
  };
};

describe("followJob", () => {
  test("a cut stream is resumed on a new connection at the byte where it stopped", async () => {
    const calls: { offset: number }[] = [];
    const out = sink();
    const said: string[] = [];
    let connections = 0;
    const retry = {
      connect: async () => (++connections === 1 ? worker(9, calls) : worker(undefined, calls)),
      firstMs: 1,
      giveUpMs: 5000,
      onRetry: (why: string) => said.push(why),
    };
    const r = await followJob(worker(4, calls), { id: ID, worker: "w", resume: "p logs -f x" }, { out, retry });
    expect(r.kind).toBe("ended");
    expect(out.text()).toBe(LOG);
    expect(calls.map((c) => c.offset)).toEqual([0, 4, 9]);
    expect(said).toEqual(["lost the connection to w", "lost the connection to w"]);
  });

  test("without retrying, or when it gives up, the cut is an error that names the job and how to resume", async () => {
    const w = { id: ID, worker: "w", resume: "p logs -f 00000000" };
    const expected = { code: "connection_lost", message: expect.stringContaining("Resume with: p logs -f 00000000") };
    await expect(followJob(worker(4, []), w, { out: sink() })).rejects.toMatchObject(expected);
    const failing = { connect: () => Promise.reject(new Error("down")), firstMs: 1, giveUpMs: 30 };
    await expect(followJob(worker(4, []), w, { out: sink(), retry: failing })).rejects.toMatchObject(expected);
  });

  test("a detach while waiting to reconnect returns at once, with the bytes shown", async () => {
    const abort = new AbortController();
    const slow = { connect: () => new Promise<WorkerBackend>(() => {}), firstMs: 10, giveUpMs: 60_000 };
    setTimeout(() => abort.abort(), 50);
    const t0 = Date.now();
    const r = await followJob(
      worker(4, []),
      { id: ID, worker: "w", resume: "x" },
      {
        out: sink(),
        offset: 10,
        signal: abort.signal,
        retry: slow,
      },
    );
    expect(r).toEqual({ kind: "detached", shown: 10 });
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});

describe("backoffMs", () => {
  test.each([
    [0, 0, 250],
    [0, 0.999, 749.5],
    [1, 0.5, 1000],
    [3, 0.5, 4000],
    [10, 0.5, 8000],
    [10, 0.999, 11992],
  ])("retry %p with jitter %p waits %p ms", (n, jitter, ms) => {
    expect(backoffMs(500, n, () => jitter)).toBeCloseTo(ms, 0);
  });
});
