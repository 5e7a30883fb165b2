import {
  appendFileSync,
  type BigIntStats,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
} from "node:fs";
import { join } from "node:path";
import { isJobId, PError } from "@p/exec/protocol";
import { writeFileAtomic } from "./atomic.ts";
import { NAME } from "./config.ts";
import { dataDir } from "./paths.ts";

export function assertJobName(name: string, what = "job name"): string {
  if (!NAME.test(name))
    throw new PError(
      "invalid_argument",
      `${what} ${JSON.stringify(name)} is not valid: use letters, digits, '.', '_' and '-' (at most 64)`,
    );
  return name;
}

export type JobStatus = "queued" | "running" | "done" | "failed" | "stopped" | "timeout" | "skipped" | "unknown";

/** A job as the client remembers it: `$XDG_DATA_HOME/p/jobs/<id>.json`. */
export interface JobRecord {
  id: string;
  worker: string;
  /** The worker's connection string when the job started (the worker may be renamed later). */
  connection: string;
  /** The command line as the worker's shell runs it. */
  command: string;
  argv: string[];
  cwd: string;
  status: JobStatus;
  exit_code: number | null;
  /** Unix seconds: when p started it (before its sync). */
  started_at: number;
  /**
   * Unix seconds, by the worker's clock (as ended_at is): when it began to run, after its
   * sync and any wait in the queue; once the worker has said.
   */
  run_started_at?: number;
  /** Unix milliseconds at creation: orders jobs started within the same second. */
  created_ms?: number;
  ended_at: number | null;
  synced: boolean;
  /** The job's time limit in seconds (`--timeout`), if it has one. */
  timeout_s?: number;
  /** While queued: what it waits for (slot, gpu, exclusive, after <id>). */
  waiting_for?: string;
  /** Its name (`--name`): any job-id argument accepts it. */
  name?: string;
  /** Its tags (`--tag`), for p ls --tag and p wait --tag. */
  tags?: string[];
  /** The git commit, branch and whether the files synced differ from it, in a git work tree. */
  git?: { commit: string; branch: string | null; dirty: boolean };
  /** `--env` as given (KEY=VALUE, or KEY for the value here) and `--env-file` paths: what p rerun reads again. */
  env_args?: string[];
  env_files?: string[];
  /** The job (or the group, for a group run again) this one re-runs (p rerun). */
  rerun_of?: string;
  /** The names of the variables given with `--secret` (never their values). */
  secrets?: string[];
  /** Takes the whole worker (`--exclusive`). */
  exclusive?: boolean;
  /** GPUs it takes (`--gpus N`). */
  gpus?: number;
  /** Jobs it runs after (`--after`, or `--after-any` with after_any). */
  after?: string[];
  after_any?: boolean;
  /** Where the worker keeps p's files, if not ~/.p (see Worker.root). */
  root?: string;
  /**
   * Where in its work dir it ran, when started below the top of a git checkout (which was
   * synced whole): cwd's place in the checkout, as `src/app`.
   */
  subdir?: string;
  /** A Slurm worker's job: Slurm's job id, and its state, reason and node as last seen. */
  slurm?: { job_id: string; state?: string; reason?: string; node?: string };
  /** What it asked Slurm for beside GPUs and exclusivity: `--cpus`, `--mem`, `--sbatch-arg`s. */
  cpus?: number;
  mem?: string;
  sbatch_args?: string[];
  /** What to pull from its work dir once it ends (--pull), into pull_to; pulled once done. */
  pull?: string[];
  pull_to?: string;
  pulled?: boolean;
  /** The group it was started in (p --on, --each): any job-id argument takes the group's id for all of them. */
  group?: string;
  /** Its place in the group (the order of --on, then of --each). */
  group_index?: number;
  /** A sweep's values for this job (--each KEY=...), which its environment has. */
  each?: Record<string, string>;
  /** Why the job failed to start, for `failed`. */
  error?: string;
  /** Bytes of output already shown when a stream was cut (Ctrl+C, lost connection): `logs -f` resumes there. */
  follow_offset?: number;
  /** The local `p` streaming the job it started; `prune` leaves the job to it while it lives. */
  client_pid?: number;
}

/**
 * What list() keeps of its last scan: the records, in list() order, each with its file's
 * stamp (inode, mtime, size: a rewrite, always a rename, changes it), and the files that
 * are not records (name, stamp, why). `dir_mtime_ns` is the directory's mtime if it and
 * every file in it had been still for a while (see INDEX_SETTLE_MS), else null.
 * `journal` is how far the journal of changes had got (its inode, or "-" where there was
 * none, and its size) before the scan began: every change it names after that is read
 * again (see list).
 */
interface JobIndex {
  dir_mtime_ns: string | null;
  records: JobRecord[];
  stamps: string[];
  skipped: [string, string, string][];
  journal?: JournalMark;
}

interface JournalMark {
  ino: string;
  size: number;
}

/** A record file's stamp in the index: a rewrite (always a rename) changes it. */
const stampOf = (st: { ino: number; mtimeMs: number; size: number }) => `${st.ino}:${st.mtimeMs}:${st.size}`;

/** The stamp of a file read while it may still change: it matches no file's. */
const UNSURE = "-";

/**
 * After this many changes since its index, a listing keeps what it read as the new index
 * (the journal is then read from there), though the directory is not still yet.
 */
const JOURNAL_KEPT_AFTER = 32;

/**
 * Timestamps move in ticks of the kernel's coarse clock (milliseconds), so a change made
 * in the same tick as a scan may leave a file's or the directory's stamp as it was: only
 * what has been still for this long is trusted from the index (git treats its "racy"
 * index entries alike).
 */
const INDEX_SETTLE_MS = 2000;

/** A lock older than this was left by a process that died holding it. */
const STALE_LOCK_MS = 10_000;

/**
 * Oldest first: by start, then creation, then (a group's jobs may be made in the same ms)
 * the group's own order, then id.
 */
const byAge = (a: JobRecord, b: JobRecord) =>
  a.started_at - b.started_at ||
  (a.created_ms ?? 0) - (b.created_ms ?? 0) ||
  (a.group ?? a.id).localeCompare(b.group ?? b.id) ||
  (a.group_index ?? 0) - (b.group_index ?? 0) ||
  a.id.localeCompare(b.id);

const inOrder = (jobs: JobRecord[]) => jobs.every((j, i) => i === 0 || byAge(jobs[i - 1]!, j) <= 0);

/** What a record file holds: a job, or why it is not one. */
interface RecordFile {
  job?: JobRecord;
  skip?: string;
}

/** Put what a record file holds in an index, with its stamp. */
function keepIn(index: JobIndex, file: string, stamp: string, r: RecordFile) {
  if (r.job) {
    index.records.push(r.job);
    index.stamps.push(stamp);
  } else index.skipped.push([file, stamp, r.skip ?? "not a job record"]);
}

/** Sort an index's records (with their stamps) oldest first, where they are not already. */
function inListOrder(index: JobIndex) {
  if (inOrder(index.records)) return;
  const order = index.records.map((_, i) => i).sort((i, j) => byAge(index.records[i]!, index.records[j]!));
  [index.records, index.stamps] = [order.map((i) => index.records[i]!), order.map((i) => index.stamps[i]!)];
}

/** Read a record file. */
function readRecord(path: string, file: string): RecordFile {
  try {
    const job = JSON.parse(readFileSync(path, "utf8")) as JobRecord;
    if (!isJobId(job.id) || `${job.id}.json` !== file) throw new Error("not a job record");
    return { job };
  } catch (err) {
    return { skip: (err as Error).message };
  }
}

export class JobStore {
  constructor(readonly dir = join(dataDir(), "jobs")) {}

  private path(id: string): string {
    if (!isJobId(id)) throw new PError("invalid_argument", `job id ${JSON.stringify(id)} is not a UUID`);
    return join(this.dir, `${id}.json`);
  }

  save(job: JobRecord): void {
    this.write(job);
    this.noteChange(job.id);
  }

  private write(job: JobRecord): void {
    writeFileAtomic(this.path(job.id), `${JSON.stringify(job, null, 2)}\n`);
  }

  /**
   * Beside the records, the id of each one p changed, a line each, appended once the
   * change (and all it did in the directory: its lock, its temporary file) is done. So the
   * journal is never older than the directory while only p changes it, and a listing after
   * a change reads only what the journal names since its index (see list). It only grows,
   * by 37 bytes a change: some 150 bytes a job.
   */
  private noteChange(id: string): void {
    try {
      appendFileSync(this.journalPath, `${id}\n`, { mode: 0o600 });
    } catch {} // (without it, a listing reads the whole directory: slower, as right)
  }

  get(id: string): JobRecord | undefined {
    const p = this.path(id);
    return existsSync(p) ? (JSON.parse(readFileSync(p, "utf8")) as JobRecord) : undefined;
  }

  remove(id: string): void {
    this.locked(id, () => rmSync(this.path(id), { force: true }));
  }

  /**
   * Change a record that another `p` may be changing or removing at the same time: the
   * read, the change and the write happen under the record's lock, and a record removed
   * meanwhile stays removed (undefined is returned). `change` gets the current record
   * and returns the next one (or a patch to merge into it).
   */
  update(id: string, change: Partial<JobRecord> | ((job: JobRecord) => JobRecord)): JobRecord | undefined {
    return this.locked(id, () => {
      const job = this.get(id);
      if (!job) return undefined;
      const next = typeof change === "function" ? change(job) : { ...job, ...change };
      this.write(next);
      return next;
    });
  }

  /** Run `fn` holding the record's lock file (`<id>.lock`, created exclusively). */
  private locked<T>(id: string, fn: () => T): T {
    const lock = `${this.path(id).slice(0, -".json".length)}.lock`;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    for (let waited = 0; ; waited += 5) {
      try {
        closeSync(openSync(lock, "wx", 0o600));
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
        try {
          if (Date.now() - statSync(lock).mtimeMs > STALE_LOCK_MS) rmSync(lock, { force: true });
        } catch {}
        if (waited > 2 * STALE_LOCK_MS)
          throw new PError(
            "store_busy",
            `job record ${id} stays locked by ${lock}; remove that file if no p is running`,
          );
        Bun.sleepSync(5);
      }
    }
    try {
      return fn();
    } finally {
      rmSync(lock, { force: true });
      this.noteChange(id);
    }
  }

  /**
   * Every readable record, oldest first; `onSkip` hears of files that are not records.
   * Reading thousands of small files is most of `p ls -a`, so what was read is kept in one
   * file beside the records (see INDEX_SETTLE_MS): while the directory is unchanged it is
   * the whole answer, and after a change only the files whose stamp moved are read again.
   */
  list(onSkip?: (file: string, why: string) => void): JobRecord[] {
    if (!existsSync(this.dir)) return [];
    // every write is a rename in this directory, so its mtime changes with any record
    const dirMtime = statSync(this.dir, { bigint: true }).mtimeNs;
    // (how far the journal has got, before anything is read)
    const journal = statSync(this.journalPath, { bigint: true, throwIfNoEntry: false });
    const index = this.readIndex();
    if (index?.dir_mtime_ns === String(dirMtime)) {
      for (const [file, , why] of index.skipped) onSkip?.(join(this.dir, file), why);
      return index.records;
    }
    const mark: JournalMark = { ino: journal ? String(journal.ino) : "-", size: Number(journal?.size ?? 0) };
    const changed = index && this.changedSince(index, journal, dirMtime);
    if (index && changed) return this.listChanged(index, changed, mark, dirMtime, onSkip);
    const now = Date.now();
    const settled = (mtimeMs: number) => now - mtimeMs > INDEX_SETTLE_MS;
    // what is there now: each file's stamp, and whether it has been still for a while
    const present = new Map<string, { stamp: string; still: boolean }>();
    for (const f of readdirSync(this.dir)) {
      if (!f.endsWith(".json")) continue;
      const st = statSync(`${this.dir}/${f}`, { throwIfNoEntry: false });
      if (st) present.set(f, { stamp: stampOf(st), still: settled(st.mtimeMs) });
    }
    // the answer, and what the index will hold: in the index's order, so that a listing
    // with nothing new needs no sorting
    const jobs: JobRecord[] = [];
    const skipped: [string, string][] = [];
    const next: JobIndex = { dir_mtime_ns: null, records: [], stamps: [], skipped: [] };
    let learnt = false;
    let gone = false;
    let still = settled(Number(dirMtime / 1_000_000n));
    const visit = (f: string, known?: RecordFile & { stamp: string }) => {
      const cur = present.get(f);
      if (!cur) return void (gone ||= Boolean(known));
      present.delete(f);
      const r = known?.stamp === cur.stamp ? known : readRecord(`${this.dir}/${f}`, f);
      if (r.job) jobs.push(r.job);
      else skipped.push([f, r.skip ?? "not a job record"]);
      // (a file still changing is kept with no stamp: the next whole read reads it again;
      // the journal, meanwhile, names it if p changes it)
      if (r !== known && !cur.still) still = false;
      keepIn(next, f, r === known || cur.still ? cur.stamp : UNSURE, r);
      learnt ||= r !== known;
    };
    for (const [i, job] of (index?.records ?? []).entries()) visit(`${job.id}.json`, { stamp: index!.stamps[i]!, job });
    for (const [f, stamp, skip] of index?.skipped ?? []) visit(f, { stamp, skip });
    for (const f of [...present.keys()]) visit(f);
    for (const [f, why] of skipped) onSkip?.(join(this.dir, f), why);
    // write down what was learnt, what went, or that the directory is still
    if (learnt || gone || still) {
      next.dir_mtime_ns = still ? String(dirMtime) : null;
      next.journal = mark;
      this.writeIndex(next);
    }
    return inOrder(jobs) ? jobs : jobs.sort(byAge);
  }

  /**
   * The ids the journal names since the index was made, where it can be trusted for
   * every change since: it is the one the index read (or the first, where there was none),
   * and it changed no earlier than the directory did (else something other than p
   * changed the directory, or a p is between its change and its journal line). Else
   * undefined: the whole directory is read.
   */
  private changedSince(index: JobIndex, journal: BigIntStats | undefined, dirMtime: bigint) {
    const at = index.journal;
    if (!at || !journal) return undefined;
    const size = Number(journal.size);
    const from = at.ino === "-" ? 0 : at.ino === String(journal.ino) && at.size <= size ? at.size : -1;
    if (from < 0 || journal.mtimeNs < dirMtime) return undefined;
    const bytes = Buffer.alloc(size - from);
    const fd = openSync(this.journalPath, "r");
    try {
      if (readSync(fd, bytes, 0, bytes.length, from) !== bytes.length) return undefined;
    } finally {
      closeSync(fd);
    }
    const lines = bytes.toString("latin1").split("\n");
    // (a line, a job id, is written whole, in one write: anything else means the journal is not p's)
    if (lines.pop() !== "" || lines.some((l) => !isJobId(l))) return undefined;
    return new Set(lines);
  }

  /**
   * The index's records with those the journal names read again. Kept as the new index
   * once all is still (see INDEX_SETTLE_MS), or once the journal names many: else the
   * journal is read from where the index says, each time.
   */
  private listChanged(
    index: JobIndex,
    changed: Set<string>,
    mark: JournalMark,
    dirMtime: bigint,
    onSkip?: (file: string, why: string) => void,
  ): JobRecord[] {
    const files = new Set([...changed].map((id) => `${id}.json`));
    const next: JobIndex = { dir_mtime_ns: null, records: [], stamps: [], skipped: [], journal: mark };
    for (const [i, job] of index.records.entries())
      if (!changed.has(job.id)) {
        next.records.push(job);
        next.stamps.push(index.stamps[i]!);
      }
    next.skipped = index.skipped.filter(([f]) => !files.has(f));
    const now = Date.now();
    let still = now - Number(dirMtime / 1_000_000n) > INDEX_SETTLE_MS;
    for (const f of files) {
      const st = statSync(`${this.dir}/${f}`, { throwIfNoEntry: false });
      if (!st) continue;
      const settled = now - st.mtimeMs > INDEX_SETTLE_MS;
      still &&= settled;
      keepIn(next, f, settled ? stampOf(st) : UNSURE, readRecord(`${this.dir}/${f}`, f));
    }
    for (const [file, , why] of next.skipped) onSkip?.(join(this.dir, file), why);
    if (still || changed.size > JOURNAL_KEPT_AFTER) {
      next.dir_mtime_ns = still ? String(dirMtime) : null;
      this.writeIndex(next);
    } else inListOrder(next);
    return next.records;
  }

  /** Keep a listing as the index, in list() order (a listing with nothing new then needs no sorting). */
  private writeIndex(index: JobIndex): void {
    inListOrder(index);
    try {
      writeFileAtomic(this.indexPath, JSON.stringify(index));
    } catch {} // a read-only store still lists
  }

  /** The listing kept by list(), beside the records directory. */
  private get indexPath(): string {
    return `${this.dir}.index.json`;
  }

  /** The journal of changes (see noteChange), beside the records directory. */
  private get journalPath(): string {
    return `${this.dir}.changed`;
  }

  private readIndex(): JobIndex | undefined {
    try {
      const index = JSON.parse(readFileSync(this.indexPath, "utf8")) as JobIndex;
      const ok =
        (index.dir_mtime_ns === null || typeof index.dir_mtime_ns === "string") &&
        Array.isArray(index.records) &&
        Array.isArray(index.skipped);
      return ok && index.stamps?.length === index.records.length ? index : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * One job by its id, a unique prefix of it, or its name. A group's id (or prefix) names
   * several jobs: find refuses it, saying so; findMany takes it.
   */
  find(prefix: string): JobRecord {
    const found = this.findMany(prefix);
    if (found.length === 1) return found[0]!;
    throw new PError(
      "invalid_argument",
      `${JSON.stringify(prefix)} is group ${found[0]!.group!.slice(0, 8)} of ${found.length} jobs; ` +
        "give one job's id (p ls -a)",
    );
  }

  /**
   * What an id argument names: one job, or a group's jobs with the group's id (a group of
   * one job is still a group when its id is what was given).
   */
  named(prefix: string): { jobs: JobRecord[]; group?: string } {
    const jobs = this.findMany(prefix);
    const first = jobs[0]!;
    const p = prefix.toLowerCase();
    const group = jobs.length > 1 || (first.id !== p && first.group?.startsWith(p)) ? first.group : undefined;
    return { jobs, ...(group && { group }) };
  }

  /**
   * The jobs an id argument names: one job (by id, prefix or name), or every job of a
   * group (by its id or prefix), in the group's order.
   */
  findMany(prefix: string): JobRecord[] {
    const p = prefix.toLowerCase();
    const jobs = this.list();
    const named = NAME.test(prefix) ? jobs.filter((j) => j.name === prefix) : [];
    if (named.length > 1)
      throw new PError(
        "ambiguous_job_id",
        `job name ${JSON.stringify(prefix)} is ambiguous: ` +
          `${named.length} jobs have it (${named.map((j) => j.id.slice(0, 8)).join(", ")}); give an id`,
      );
    if (named.length === 1) return named;
    if (!/^[0-9a-f-]+$/.test(p) && NAME.test(prefix))
      throw new PError("job_not_found", `no job is named ${JSON.stringify(prefix)}; see p ls -a`);
    if (!/^[0-9a-f-]+$/.test(p))
      throw new PError(
        "invalid_argument",
        `job ${JSON.stringify(prefix)} is not valid: use an id (or a prefix) or a name from p ls -a`,
      );
    const matches = jobs.filter((j) => j.id.startsWith(p));
    const groups = [...new Set(jobs.flatMap((j) => (j.group?.startsWith(p) ? [j.group] : [])))];
    if (matches.length + groups.length === 1)
      return matches.length
        ? matches
        : jobs.filter((j) => j.group === groups[0]).sort((a, b) => (a.group_index ?? 0) - (b.group_index ?? 0));
    if (matches.length + groups.length === 0)
      throw new PError("job_not_found", `no job matches ${JSON.stringify(prefix)}; see p ls -a`);
    // (a prefix is never empty: it would match everything)
    const names = [...matches.map((j) => j.id.slice(0, 12)), ...groups.map((g) => `group ${g.slice(0, 12)}`)];
    throw new PError(
      "ambiguous_job_id",
      `job id ${JSON.stringify(prefix)} is ambiguous: it matches ${names.join(", ")}; give more characters`,
    );
  }
}
