import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "./atomic.ts";
import { StoreError } from "./errors.ts";
import { dataDir } from "./paths.ts";

export type JobStatus = "running" | "done" | "failed" | "stopped" | "unknown";

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
  /** Unix seconds. */
  started_at: number;
  /** Unix milliseconds at creation: orders jobs started within the same second. */
  created_ms?: number;
  ended_at: number | null;
  synced: boolean;
  /** Why the job failed to start, for `failed`. */
  error?: string;
  /** Bytes of output already shown when a stream was cut (Ctrl+C, lost connection): `logs -f` resumes there. */
  follow_offset?: number;
}

const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class JobStore {
  constructor(readonly dir = join(dataDir(), "jobs")) {}

  private path(id: string): string {
    if (!ID.test(id)) throw new StoreError("invalid_argument", `job id ${JSON.stringify(id)} is not a UUID`);
    return join(this.dir, `${id}.json`);
  }

  save(job: JobRecord): void {
    writeFileAtomic(this.path(job.id), `${JSON.stringify(job, null, 2)}\n`);
  }

  get(id: string): JobRecord | undefined {
    const p = this.path(id);
    return existsSync(p) ? (JSON.parse(readFileSync(p, "utf8")) as JobRecord) : undefined;
  }

  remove(id: string): void {
    rmSync(this.path(id), { force: true });
  }

  update(id: string, patch: Partial<JobRecord>): JobRecord {
    const job = this.get(id);
    if (!job) throw new StoreError("job_not_found", `no job ${id}`);
    const next = { ...job, ...patch };
    this.save(next);
    return next;
  }

  /** Every readable record, oldest first; `onSkip` hears of files that are not records. */
  list(onSkip?: (file: string, why: string) => void): JobRecord[] {
    if (!existsSync(this.dir)) return [];
    const jobs: JobRecord[] = [];
    for (const f of readdirSync(this.dir)) {
      if (!f.endsWith(".json")) continue;
      try {
        const job = JSON.parse(readFileSync(join(this.dir, f), "utf8")) as JobRecord;
        if (!ID.test(job.id) || `${job.id}.json` !== f) throw new Error("not a job record");
        jobs.push(job);
      } catch (err) {
        onSkip?.(join(this.dir, f), (err as Error).message);
      }
    }
    return jobs.sort((a, b) => a.started_at - b.started_at || (a.created_ms ?? 0) - (b.created_ms ?? 0) || a.id.localeCompare(b.id));
  }

  /** The one job whose id starts with `prefix`, as docker resolves ids. */
  find(prefix: string): JobRecord {
    const p = prefix.toLowerCase();
    if (!/^[0-9a-f-]+$/.test(p)) throw new StoreError("invalid_argument", `job id ${JSON.stringify(prefix)} is not valid: use the id (or a prefix) from p ls`);
    const matches = this.list().filter((j) => j.id.startsWith(p));
    if (matches.length === 1) return matches[0]!;
    if (matches.length === 0) throw new StoreError("job_not_found", `no job matches ${JSON.stringify(prefix)}; see p ls -a`);
    throw new StoreError(
      "ambiguous_job_id",
      `job id ${JSON.stringify(prefix)} is ambiguous: it matches ${matches.map((j) => j.id.slice(0, 12)).join(", ")}; give more characters`,
    );
  }
}
