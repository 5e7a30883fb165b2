import type { Readable } from "node:stream";
import { type FollowResult, type LaunchSpec, type OutputSink, PError, StreamCut, type WorkerBackend } from "@p/exec";
import type { JobRecord, JobStore } from "@p/store";
import { applyState, stateOfFollow } from "./records.ts";

/** What is followed, where its record lives (p keeps one, p-exec does not), and how to resume. */
export interface Watch {
  id: string;
  worker: string;
  store?: JobStore;
  /** The command that resumes following, for messages. */
  resume: string;
}

/** How a lost connection is retried: exponential backoff with jitter, until `giveUpMs` have passed. */
export interface Retry {
  /** A new connection to the worker, tried within `timeoutMs`. */
  connect: (timeoutMs: number) => Promise<WorkerBackend>;
  /** The first delay (later ones double, up to 8 s); each is jittered by ±50%. */
  firstMs: number;
  giveUpMs: number;
  /** Said once per loss, before the first retry: why, and the job followed. */
  onRetry?: (why: string, id: string) => void;
}

export interface FollowJobOptions {
  out: OutputSink;
  /** The byte of the log to start at. */
  offset?: number;
  /** Start the job first, in the same round trip. */
  launch?: LaunchSpec;
  /** Aborted: detach (the job keeps running). */
  signal?: AbortSignal;
  /** Retry a lost connection and resume at the byte where it stopped; without it, a loss ends the follow. */
  retry?: Retry;
  /** Told that the job launched waits in the worker's queue, and for what (its record says so too). */
  onQueued?: (waitingFor: string) => void;
  /** Told that the worker found the job (after a launch: that it has started). */
  onFound?: () => void;
  /** What the job launched reads on its stdin (see WorkerBackend.start). */
  input?: Readable;
}

export type Followed =
  | { kind: "ended"; status: FollowResult; job?: JobRecord }
  /** Detached on request; `shown` bytes of the log were shown, counting the offset. */
  | { kind: "detached"; shown: number };

/**
 * Why a follow detached when its output went nowhere (stdout's reader left, as `| head`
 * does): what it wrote was not seen, and the next follow starts from the beginning.
 */
export const OUTPUT_UNSEEN = new Error("the output's reader went away");

/** The delay before retry `n` (from 0): doubling from `firstMs`, at most 8 s, jittered by ±50%. */
export const backoffMs = (firstMs: number, n: number, random = Math.random) =>
  Math.min(8000, firstMs * 2 ** n) * (0.5 + random());

/**
 * Follow a job to its end, as `p -- cmd` and `p logs -f` do, and record how it ended. A
 * lost connection is retried (see Retry) and the stream resumes at the byte where it
 * stopped. A detach, or a loss that retries cannot mend, keeps the count of bytes shown so
 * that `p logs -f` resumes without losing or repeating a byte; the loss is an error that
 * says how to resume.
 */
export async function followJob(first: WorkerBackend, w: Watch, opts: FollowJobOptions): Promise<Followed> {
  const offset = opts.offset ?? 0;
  let shown = 0; // bytes shown by streams that have ended
  let stream = { bytes: 0 }; // the stream under way
  const total = () => offset + shown + stream.bytes;
  const keepOffset = () =>
    w.store?.update(w.id, {
      follow_offset: opts.signal?.reason === OUTPUT_UNSEEN ? undefined : total(),
      client_pid: undefined,
    });
  let backend = first;
  const opened: WorkerBackend[] = [];
  const detach = () => backend.close();
  opts.signal?.addEventListener("abort", detach);
  try {
    for (let launch = opts.launch; ; launch = undefined) {
      stream = { bytes: 0 };
      try {
        const onQueued = (waitingFor: string) => {
          w.store?.update(w.id, (current) => applyState(current, { state: "queued", waitingFor }));
          opts.onQueued?.(waitingFor);
        };
        const onSubmitted = (jobId: string) =>
          w.store?.update(w.id, (current) => ({ ...current, slurm: { job_id: jobId } }));
        const follow = {
          out: opts.out,
          offset: offset + shown,
          progress: stream,
          onQueued,
          onSubmitted,
          ...(opts.onFound && { onFound: opts.onFound }),
          ...(launch && opts.input && { input: opts.input }),
        };
        const status = await (launch ? backend.start(launch, follow) : backend.follow(w.id, follow));
        // a record another p removed meanwhile (p rm) stays removed
        const job = w.store?.update(w.id, (current) => applyState(current, stateOfFollow(status)));
        return { kind: "ended", status, ...(job && { job }) };
      } catch (err) {
        if (!(err instanceof StreamCut)) throw err;
        if (opts.signal?.aborted) {
          keepOffset();
          return { kind: "detached", shown: total() };
        }
        // a launch cut short may or may not have started the job: that is said, not retried
        const next = err.confirmed || !launch ? await reconnect(opts, err.message, w.id) : undefined;
        if (!next) {
          keepOffset();
          if (opts.signal?.aborted) return { kind: "detached", shown: total() };
          throw lost(w, err);
        }
        shown += stream.bytes;
        stream = { bytes: 0 };
        opened.push((backend = next));
      }
    }
  } finally {
    opts.signal?.removeEventListener("abort", detach);
    for (const b of opened) b.close();
  }
}

/** A new connection, retried with backoff until the retry gives up (or a detach): undefined then. */
async function reconnect(opts: FollowJobOptions, why: string, id: string): Promise<WorkerBackend | undefined> {
  const retry = opts.retry;
  if (!retry || retry.giveUpMs <= 0) return undefined;
  retry.onRetry?.(why, id);
  // a detach (Ctrl+C) ends the waiting at once, not after the delay or the attempt under way
  const detached = new Promise<undefined>((resolve) => {
    if (opts.signal?.aborted) resolve(undefined);
    opts.signal?.addEventListener("abort", () => resolve(undefined), { once: true });
  });
  const t0 = Date.now();
  for (let n = 0; ; n++) {
    const left = retry.giveUpMs - (Date.now() - t0);
    const delay = backoffMs(retry.firstMs, n);
    if (left <= delay || opts.signal?.aborted) return undefined;
    await Promise.race([Bun.sleep(delay), detached]);
    if (opts.signal?.aborted) return undefined;
    const attempt = retry.connect(Math.max(1000, Math.min(5000, left - delay)));
    attempt.catch(() => {});
    const next = await Promise.race([attempt, detached]).catch(() => null);
    if (next) return next;
    // a connection made after the detach is not used
    if (opts.signal?.aborted)
      return void attempt.then(
        (late) => late.close(),
        () => {},
      );
  }
}

function lost(w: Watch, cut: StreamCut): PError {
  const short = w.id.slice(0, 8);
  return new PError(
    "connection_lost",
    cut.confirmed
      ? `lost the connection while following job ${short}; it keeps running on the worker. Resume with: ${w.resume}`
      : `lost the connection before job ${short} could be confirmed running; ` +
          `p ls shows what the worker says, and ${w.resume} follows it`,
    { cause: cut },
  );
}
