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

export interface FollowJobOptions {
  out: OutputSink;
  /** The byte of the log to start at. */
  offset?: number;
  /** Start the job first, in the same round trip. */
  launch?: LaunchSpec;
  /** Aborted: detach (the job keeps running). */
  signal?: AbortSignal;
}

export type Followed =
  | { kind: "ended"; status: FollowResult; job?: JobRecord }
  /** Detached on request; `shown` bytes of the log were shown, counting the offset. */
  | { kind: "detached"; shown: number };

/**
 * Follow a job to its end, as `p -- cmd` and `p logs -f` do, and record how it ended. A
 * detach or a lost connection keeps the count of bytes shown, so that `p logs -f` resumes
 * without losing or repeating a byte; a lost connection is an error that says how to resume.
 */
export async function followJob(backend: WorkerBackend, w: Watch, opts: FollowJobOptions): Promise<Followed> {
  const offset = opts.offset ?? 0;
  const progress = { bytes: 0 };
  const keepOffset = () => w.store?.update(w.id, { follow_offset: offset + progress.bytes, client_pid: undefined });
  const detach = () => backend.close();
  opts.signal?.addEventListener("abort", detach);
  try {
    const follow = { out: opts.out, offset, progress };
    const status = await (opts.launch ? backend.start(opts.launch, follow) : backend.follow(w.id, follow));
    // a record another p removed meanwhile (p rm) stays removed
    const job = w.store?.update(w.id, (current) => applyState(current, stateOfFollow(status)));
    return { kind: "ended", status, ...(job && { job }) };
  } catch (err) {
    if (!(err instanceof StreamCut)) throw err;
    keepOffset();
    if (opts.signal?.aborted) return { kind: "detached", shown: offset + progress.bytes };
    const short = w.id.slice(0, 8);
    throw new PError(
      "connection_lost",
      err.confirmed
        ? `lost the connection while following job ${short}; it keeps running on the worker. Resume with: ${w.resume}`
        : `lost the connection before job ${short} could be confirmed running; ` +
            `p ls shows what the worker says, and ${w.resume} follows it`,
      { cause: err },
    );
  } finally {
    opts.signal?.removeEventListener("abort", detach);
  }
}
