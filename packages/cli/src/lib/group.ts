import type { OutputSink } from "@p/exec";
import { ENV_NAME, PError, type Probe } from "@p/exec/protocol";
import { type Config, type JobRecord, pickWorker, type Worker } from "@p/store";
import { v4 as uuid } from "uuid";
import { pullDirFor } from "./after.ts";
import type { runWatch } from "./progress.ts";
import { type RunOutcome, type RunRequest, runJob } from "./run.ts";
import { openWorker } from "./workers.ts";

/** One job of a group: where it runs, and a sweep's values for it. */
export interface Member {
  worker: Worker;
  each?: Record<string, string>;
}

/** `--on a,b,c` or `--on all`: the workers, in the order given, each once. */
export function parseOn(value: string, config: Config): Worker[] {
  if (value.trim() === "all") {
    if (config.workers.length === 0)
      throw new PError(
        "worker_not_found",
        "--on all: no worker is registered; add one with: p worker register user@host",
      );
    return config.workers;
  }
  const names = value
    .split(",")
    .map((n) => n.trim())
    .filter(Boolean);
  if (names.length === 0) throw new PError("invalid_argument", "--on needs workers, e.g. --on a,b or --on all");
  return [...new Set(names)].map((n) => pickWorker(config, n));
}

/**
 * `--each KEY=v1,v2,...` (repeatable): every combination of the values, the first key
 * changing slowest, as nested loops would give them.
 */
export function sweep(specs: readonly string[]): Record<string, string>[] {
  let combos: Record<string, string>[] = [{}];
  const seen = new Set<string>();
  for (const spec of specs) {
    const eq = spec.indexOf("=");
    const key = eq > 0 ? spec.slice(0, eq) : "";
    const values = spec
      .slice(eq + 1)
      .split(",")
      .filter((v) => v !== "");
    if (!ENV_NAME.test(key) || values.length === 0)
      throw new PError(
        "invalid_argument",
        `--each ${JSON.stringify(spec)} is not KEY=v1,v2,...; e.g. --each SEED=1,2,3`,
      );
    if (seen.has(key)) throw new PError("invalid_argument", `--each ${key} is given twice; give its values once`);
    seen.add(key);
    combos = combos.flatMap((c) => values.map((v) => ({ ...c, [key]: v })));
  }
  return combos;
}

/** The jobs of a group: one per worker, or each combination of a sweep, spread over the workers in turn. */
export function planGroup(workers: readonly Worker[], combos?: readonly Record<string, string>[]): Member[] {
  if (!combos) return workers.map((worker) => ({ worker }));
  return combos.map((each, i) => ({ worker: workers[i % workers.length]!, each }));
}

/** A member's name in prefixes and the summary: its worker, and a sweep's values. */
export const memberLabel = (m: { worker: string; each?: Record<string, string> }) =>
  [m.worker, ...Object.entries(m.each ?? {}).map(([k, v]) => `${k}=${v}`)].join(" ");

/**
 * Several jobs' output on one stream: each whole line once, prefixed, so that no line holds
 * two jobs' bytes. An unfinished last line is written, ended, by flush.
 */
export function prefixedSink(prefix: string, to: OutputSink): OutputSink & { flush(): void } {
  let partial = Buffer.alloc(0);
  // (a line without an end is cut here rather than held without limit)
  const LONGEST = 1 << 20;
  const emit = (line: Buffer) => to.write(Buffer.concat([Buffer.from(prefix), line, Buffer.from("\n")]));
  return {
    write(chunk: Uint8Array) {
      let data = partial.length ? Buffer.concat([partial, chunk]) : Buffer.from(chunk);
      let ok = true;
      for (let nl = data.indexOf(10); nl >= 0; nl = data.indexOf(10)) {
        ok = emit(data.subarray(0, nl)) && ok;
        data = data.subarray(nl + 1);
      }
      if (data.length > LONGEST) {
        ok = emit(data) && ok;
        data = Buffer.alloc(0);
      }
      partial = Buffer.from(data);
      return ok;
    },
    once: (event, listener) => to.once(event, listener),
    flush() {
      if (partial.length) emit(partial);
      partial = Buffer.alloc(0);
    },
  };
}

/** How one job of a group went: its outcome, or why it never started. */
export type MemberResult = { member: Member; label: string } & (
  | { outcome: RunOutcome; error?: undefined }
  | { outcome?: undefined; error: Error }
);

export type GroupRequest = Omit<RunRequest, "worker" | "out" | "resume" | "retry"> & {
  out: OutputSink;
  retry?: (worker: Worker) => RunRequest["retry"];
  /** Each job's output goes to `out` behind this prefix (its label, coloured on a terminal). */
  prefix: (label: string, index: number) => string;
  onError?: (label: string, err: Error) => void;
  /** What watches each job's run (see progress.ts: -v's timings), told its label at the end. */
  watchFor?: (index: number) => WatchedRun | undefined;
};

/** A run watched (runWatch): the watch, its view of the output, and what it says at the end. */
type WatchedRun = Pick<ReturnType<typeof runWatch>, "watch" | "out" | "finish">;

/**
 * Start a group's jobs together (their syncs in parallel), each recorded with the group's
 * id and its place in it, and follow them all unless detached. One that cannot be reached
 * or fails to start never stops the others: it is recorded failed, with why.
 */
export async function runGroup(members: readonly Member[], req: GroupRequest) {
  const { retry, prefix, onError, onQueued, watchFor, out: to, ...base } = req;
  const group = uuid();
  const results = await Promise.all(
    members.map(async (member, i): Promise<MemberResult> => {
      const label = memberLabel({ worker: member.worker.name, ...(member.each && { each: member.each }) });
      const out = prefixedSink(prefix(label, i), to);
      const watched = watchFor?.(i);
      const again = retry?.(member.worker);
      try {
        const outcome = await runJob({
          ...base,
          worker: member.worker,
          ...((base.env || member.each) && { env: { ...base.env, ...member.each } }),
          record: {
            ...base.record,
            group,
            group_index: i,
            ...(member.each && { each: member.each }),
            // (what each job pulls goes to a directory of its own)
            ...(base.record?.pull && { pull_to: pullDirFor(base.record.pull_to ?? base.cwd, label) }),
          },
          out: watched ? watched.out(out) : out,
          ...(watched && { watch: watched.watch }),
          resume: () => `p logs -f ${group.slice(0, 8)}`,
          ...(again && { retry: again }),
          ...(onQueued && { onQueued: (why: string) => onQueued(`${label}: ${why}`) }),
        });
        watched?.finish(`[${label}] `);
        return { member, label, outcome };
      } catch (err) {
        onError?.(label, err as Error);
        return { member, label, error: err as Error };
      } finally {
        out.flush();
      }
    }),
  );
  return { group, results };
}

/** The job a member's result names, as its record has it now. */
export const resultJob = (r: MemberResult): JobRecord | undefined =>
  r.outcome && r.outcome.kind !== "cancelled" ? r.outcome.job : undefined;

/** A candidate for --any: the worker, and what its probe said (none: unreachable). */
export interface Candidate {
  worker: Worker;
  probe?: Probe;
}

/** A worker's room for `--any`: free slots (unlimited without slots), then load per core. */
function room(c: Candidate, assigned: number) {
  const active = (c.probe?.active ?? 0) + assigned;
  const free = c.worker.slots === undefined ? Number.POSITIVE_INFINITY : c.worker.slots - active;
  const load = (c.probe?.load1 ?? 0) / Math.max(1, c.probe?.cores ?? 1);
  return { free, load };
}

/**
 * Where `count` jobs go for `--any`: each to the reachable worker with the most free
 * slots, then the fewest jobs of this group, then the least load per core; jobs beyond
 * the free slots queue on the workers in the same turn. Pure: given what the probes said.
 */
export function placeByCapacity(candidates: readonly Candidate[], count: number): Worker[] {
  const reachable = candidates.filter((c) => c.probe);
  if (reachable.length === 0) throw new PError("worker_unreachable", "--any: no candidate worker could be reached");
  const assigned = new Map<Candidate, number>(reachable.map((c) => [c, 0]));
  const placed: Worker[] = [];
  for (let i = 0; i < count; i++) {
    const best = [...reachable].sort((a, b) => {
      const [ra, rb] = [room(a, assigned.get(a)!), room(b, assigned.get(b)!)];
      const byFree = Math.max(0, rb.free) - Math.max(0, ra.free);
      return (Number.isNaN(byFree) ? 0 : byFree) || assigned.get(a)! - assigned.get(b)! || ra.load - rb.load;
    })[0]!;
    assigned.set(best, assigned.get(best)! + 1);
    placed.push(best.worker);
  }
  return placed;
}

/** What --any says of its choice: "w2 (3 of 4 slots free, load 0.10 per core)". */
export function roomText(c: Candidate): string {
  const { free, load } = room(c, 0);
  const slots = c.worker.slots === undefined ? "no slot limit" : `${Math.max(0, free)} of ${c.worker.slots} slots free`;
  return `${c.worker.name} (${slots}, load ${load.toFixed(2)} per core)`;
}

/**
 * Ask each candidate what it has, all at once, one round trip each; one that does not
 * answer within `timeoutMs` is left without a probe, with why.
 */
export async function probeCandidates(
  workers: readonly Worker[],
  timeoutMs = 2000,
): Promise<(Candidate & { error?: string })[]> {
  return Promise.all(
    workers.map(async (worker) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
      });
      const asking = (async () => {
        const backend = await openWorker(worker, { timeoutMs });
        try {
          return await backend.probe();
        } finally {
          backend.close();
        }
      })();
      asking.catch(() => {});
      try {
        return { worker, probe: await Promise.race([asking, late]) };
      } catch (err) {
        return { worker, error: ((err as Error).message ?? "").split("\n")[0]! };
      } finally {
        clearTimeout(timer);
      }
    }),
  );
}
