import type { Readable } from "node:stream";
import { commandLine, type OutputSink, PError, type SlurmSubmit, type WorkerBackend, workDir } from "@p/exec";
import type { JobRecord, JobStore, Worker } from "@p/store";
import { checkoutOf, gitProvenance, type Provenance, type SyncProgress } from "@p/sync";
import { v4 as uuid } from "uuid";
import { type Followed, followJob, type Retry } from "./follow.ts";
import { applyState, failedRecord, newRecord } from "./records.ts";
import { prepareSync, sharedWhileRunning, syncedBefore, syncJob } from "./sync.ts";
import { openWorker } from "./workers.ts";

export interface RunRequest {
  worker: Worker;
  /** The command's words (one word is a shell command line). */
  argv: string[];
  /** The client directory: synced with `sync`, recorded either way. */
  cwd: string;
  /** Send `cwd` into the job's fresh work dir first. */
  sync: boolean;
  /** Run in this existing directory on the worker instead of a fresh work dir. */
  dir?: string;
  /** Start and return; else follow the job to its end. */
  detach: boolean;
  /** Variables set in the job's environment (see jobSurroundings). */
  env?: Record<string, string>;
  /** Run the job under a pseudo-terminal of this size. */
  tty?: { cols: number; rows: number };
  /**
   * What the job reads on its stdin (p's own, where it is a pipe or a file), as it reads
   * it: where it is followed, on a worker that runs its jobs itself. Else (detached, on
   * Slurm, under a terminal) it reads nothing, as any job.
   */
  input?: Readable;
  /** Variables for the job that no argv, file or record may show; only their names are recorded. */
  secrets?: Record<string, string>;
  /** End the job after this many seconds (status timeout, exit code 124). */
  timeoutS?: number;
  /** Take the whole worker: nothing else of p's runs beside it. */
  exclusive?: boolean;
  /** Wait for this many of the worker's GPUs. */
  gpus?: number;
  /** Start once these jobs (of the same worker) have ended: with exit 0 (else it is skipped), or `any` way. */
  after?: { ids: string[]; any?: boolean };
  /** On a Slurm worker: what the job asks Slurm for beside GPUs and exclusivity. */
  slurm?: Pick<SlurmSubmit, "cpus" | "mem" | "args">;
  /** What the record keeps besides: name, tags, the --env flags as given, the job re-run. */
  record?: Pick<
    JobRecord,
    "name" | "tags" | "env_args" | "env_files" | "rerun_of" | "group" | "group_index" | "each" | "pull" | "pull_to"
  >;
  /** Where records are kept (p), or none (p-exec). */
  store?: JobStore;
  /** Where a followed job's output goes. */
  out: OutputSink;
  /** Before the launch, cancels (nothing runs); after it, detaches (the job keeps running). */
  signal?: AbortSignal;
  /** The command that resumes following a job, for messages. */
  resume: (id: string) => string;
  /** How a lost connection is retried while following. */
  retry?: Retry;
  /** Called just before a job that is followed starts. */
  onFollow?: (job: JobRecord) => void;
  /** Told that a followed job waits in the worker's queue, and for what. */
  onQueued?: (waitingFor: string) => void;
  /** Told how the run goes: the sync's progress, and when each phase ends. */
  watch?: RunWatch;
}

/** What a run tells as it goes (see progress.ts): the sync's progress, and the end of each phase. */
export interface RunWatch {
  progress(p: SyncProgress): void;
  mark(phase: "resolve" | "sync" | "launch"): void;
}

/** What a job asks of Slurm on a Slurm worker (the worker's partition and account, then the job's own). */
function slurmSubmit(req: RunRequest): SlurmSubmit | undefined {
  const { worker } = req;
  if (worker.slurm) return { ...worker.slurm, ...req.slurm };
  const asked =
    req.slurm && Object.entries(req.slurm).find(([, v]) => v !== undefined && (!Array.isArray(v) || v.length));
  if (asked) {
    const flag = { cpus: "--cpus", mem: "--mem", args: "--sbatch-arg" }[asked[0]] ?? asked[0];
    throw new PError(
      "invalid_argument",
      `${flag} is for Slurm workers, and worker ${worker.name} runs jobs itself; ` +
        "register a Slurm login node with p worker register <host> --slurm",
    );
  }
  return undefined;
}

/**
 * What a run from a directory syncs, and where in it the job runs: asked once for the jobs
 * started together (a group's), and afresh for any started later (the dashboard's reruns).
 */
const checkouts = new Map<string, ReturnType<typeof checkoutOf>>();
function checkoutOnce(cwd: string) {
  let found = checkouts.get(cwd);
  if (!found) {
    checkouts.set(cwd, (found = checkoutOf(cwd)));
    setImmediate(() => checkouts.delete(cwd));
  }
  return found;
}

/**
 * A directory's git provenance, shared by the jobs that ask while git is being asked (a
 * group's), and asked afresh after: a p that lives on (the dashboard's) reruns jobs after
 * new commits.
 */
const provenanceOnce = sharedWhileRunning((cwd) => gitProvenance(cwd).catch(() => undefined));

/**
 * The directories and workers the store's jobs have synced (`<dir>\0<worker>`), listed once
 * for the jobs started together (a group's: a listing of many records is not free), and
 * afresh for any started later.
 */
const syncedPairs = new Map<JobStore, Set<string>>();

/**
 * No job of this store has synced `cwd` to `worker` yet: its mirror there, if any, is not
 * known to be this tree's. (What p keeps of the last sync there says no at once.)
 */
function firstSyncHere(store: JobStore, cwd: string, worker: Worker): boolean {
  if (syncedBefore(cwd, worker)) return false;
  let pairs = syncedPairs.get(store);
  if (!pairs) {
    const synced = store.list().filter((j) => j.synced && j.status !== "failed");
    pairs = new Set(synced.map((j) => `${j.cwd}\0${j.worker}`));
    syncedPairs.set(store, pairs);
    setImmediate(() => syncedPairs.delete(store));
  }
  return !pairs.has(`${cwd}\0${worker.name}`);
}

export type RunOutcome = { kind: "cancelled" } | { kind: "launched"; job: JobRecord } | (Followed & { job: JobRecord });

/**
 * Run a job: its record, the sync and the connection (overlapped), the launch, following
 * it to its end, and the record of how it ended. What p, p-exec and everything that starts
 * jobs call. A sync or launch that fails records the job `failed` and throws.
 */
export async function runJob(req: RunRequest): Promise<RunOutcome> {
  const slurm = slurmSubmit(req);
  const id = uuid();
  // below the top of a git checkout, the whole checkout goes, and the job runs in the same
  // place within it (see checkoutOf)
  const { top: source, sub } = req.sync && req.dir === undefined ? checkoutOnce(req.cwd) : { top: req.cwd, sub: "" };
  const job = {
    ...newRecord(id, req.worker, req.argv, commandLine(req.argv), req.cwd, req.sync),
    ...(sub && { subdir: sub }),
    ...(req.timeoutS !== undefined && { timeout_s: req.timeoutS }),
    ...req.record,
    ...(req.secrets && { secrets: Object.keys(req.secrets) }),
    ...(req.exclusive && { exclusive: true }),
    ...(req.gpus && { gpus: req.gpus }),
    ...(req.after?.ids.length && { after: req.after.ids, ...(req.after.any && { after_any: true }) }),
    ...(req.slurm?.cpus && { cpus: req.slurm.cpus }),
    ...(req.slurm?.mem && { mem: req.slurm.mem }),
    ...(req.slurm?.args?.length && { sbatch_args: req.slurm.args }),
  };
  const record: JobRecord = req.detach ? job : { ...job, client_pid: process.pid };
  const spec = {
    id,
    command: job.command,
    cwd: req.cwd,
    worker: req.worker.name,
    ...(req.dir !== undefined && { dir: req.dir }),
    ...(sub && { dir: `${workDir(id, req.worker.root)}/${sub}` }),
    ...(req.env && { env: req.env }),
    ...(req.secrets && { secrets: req.secrets }),
    ...(req.tty && { tty: req.tty }),
    ...(req.timeoutS !== undefined && { timeoutS: req.timeoutS }),
    // (the worker's slots and GPUs, as its config says; a Slurm worker's are Slurm's)
    ...(slurm ? { slurm } : { capacity: req.worker }),
    ...(req.exclusive && { exclusive: true }),
    ...(req.gpus && { gpus: req.gpus }),
    ...(req.after && { after: req.after }),
    ...(req.input && !req.detach && !slurm && !req.tty && { input: true }),
  };
  const cancelled = () => req.signal?.aborted === true;

  // the sync and the connection overlap: what git must say before rsync can start is
  // asked first of all, and rsync rides the connection once it is up
  const connecting = openWorker(req.worker);
  if (req.sync) prepareSync(source);
  const sync = new AbortController();
  req.signal?.addEventListener("abort", () => sync.abort(), { once: true });
  // (a connection that fails is said once, below: not again by the sync that waits for it)
  const via = connecting.then((backend) => backend.conn);
  via.catch(() => {});
  req.watch?.mark("resolve");
  // where the synced files come from in git, recorded with the job (p only: p-exec keeps
  // no record; and a job that syncs nothing has no files to come from anywhere). Asked
  // once rsync runs: before, it would only slow what rsync waits for.
  let provenance: Promise<Provenance | undefined> = Promise.resolve(undefined);
  const askProvenance = () => {
    if (!req.store) return;
    provenance = provenanceOnce(req.cwd);
    // (the job's as soon as it is known: by the time its record is first written, mostly)
    provenance.then((git) => {
      if (git) job.git = git;
    });
  };
  const syncing = req.sync
    ? syncJob(source, req.worker, id, {
        signal: sync.signal,
        first: req.store !== undefined && firstSyncHere(req.store, source, req.worker),
        onStart: askProvenance,
        via,
        ...(req.watch && { onProgress: (p: SyncProgress) => req.watch!.progress(p) }),
      }).finally(() => req.watch?.mark("sync"))
    : Promise.resolve();
  syncing.catch(() => {});
  let backend: WorkerBackend;
  try {
    backend = await connecting;
  } catch (err) {
    sync.abort();
    // a group's job is recorded whatever becomes of it: the group says how each went
    if (req.record?.group) req.store?.save(failedRecord(job, (err as Error).message));
    throw err;
  }
  // the launch goes to the worker while the sync runs, and waits there for its word
  if (req.sync) backend.sendAhead?.(spec, !req.detach);
  try {
    try {
      await syncing;
    } catch (err) {
      backend.withdraw?.(id);
      // a half-synced work dir must never run a command: remove it
      await backend.remove([id]).catch(() => {});
      if ((err as PError).code === "sync_cancelled") return { kind: "cancelled" };
      req.store?.save(failedRecord(job, (err as Error).message));
      // git's refusal keeps its own code: the fix is on this side, not the worker's
      const code = (err as PError).code === "repository_refused" ? "repository_refused" : "sync_failed";
      throw new PError(code, `sync to worker ${req.worker.name} failed: ${(err as Error).message}`, { cause: err });
    }
    if (cancelled()) {
      backend.withdraw?.(id);
      return { kind: "cancelled" };
    }

    // the provenance joins the record once known: the launch never waits for git (known
    // by now, it is written with the record, in one write)
    const known = job.git
      ? Promise.resolve()
      : provenance.then((git) => {
          if (git) req.store?.update(id, { git });
        });
    req.store?.save(job.git ? { ...record, git: job.git } : record);
    try {
      if (req.detach) {
        const state = await backend.launch(spec);
        await known;
        if (!state || (state.state === "running" && !state.slurm)) return { kind: "launched", job };
        return { kind: "launched", job: req.store?.update(id, (j) => applyState(j, state)) ?? applyState(job, state) };
      }
      const watch = { id, worker: req.worker.name, store: req.store, resume: req.resume(id) };
      req.onFollow?.(job);
      const followed = await followJob(backend, watch, {
        out: req.out,
        launch: spec,
        ...(req.signal && { signal: req.signal }),
        ...(req.retry && { retry: req.retry }),
        ...(req.onQueued && { onQueued: req.onQueued }),
        ...(req.watch && { onFound: () => req.watch!.mark("launch") }),
        ...(spec.input && { input: req.input }),
      });
      await known;
      const ended =
        followed.kind === "ended" ? followed.job && { ...followed.job, ...(job.git && { git: job.git }) } : undefined;
      return { ...followed, job: ended ?? job };
    } catch (err) {
      if ((err as PError).code !== "remote_failed") throw err;
      req.store?.update(id, (current) => failedRecord(current, (err as Error).message));
      throw new PError("remote_failed", `job could not start on worker ${req.worker.name}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  } finally {
    backend.close();
    // (the job has ended, or goes on without p: it reads no more of it)
    if (spec.input) req.input?.destroy();
  }
}
