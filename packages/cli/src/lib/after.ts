import { mkdirSync } from "node:fs";
import { join, posix } from "node:path";
import { PError, parseConnection, workDir } from "@p/exec";
import type { Config, JobRecord, JobStore } from "@p/store";
import { planPull, runSync } from "@p/sync";
import { jobJson } from "../_format.ts";
import { rshFor } from "./workers.ts";

/**
 * What p does once it sees a job end (p -- cmd, p wait, p logs -f): pull the results the
 * job was started with (--pull), once, and say so (--notify, notify: in config.yaml).
 */

/** Copy `path` out of a job's work dir to `dest`, as p pull does; an error names the path and the job. */
export async function pullPath(job: JobRecord, path: string, dest: string): Promise<void> {
  const target = parseConnection(job.connection);
  // (a path is the job's own: relative to where in its work dir it ran, and it may reach
  // above that, as ../shared does, but not out of the work dir)
  const inJob = job.subdir && !posix.isAbsolute(path.trim()) ? posix.join(job.subdir, path) : path;
  const plan = planPull({
    host: target.host,
    rsh: rshFor(target),
    workDir: workDir(job.id, job.root),
    path: inJob,
    dest,
  });
  try {
    await runSync(plan);
  } catch (err) {
    if (err instanceof PError && /No such file|change_dir.*failed|link_stat/.test(err.message))
      throw new PError("invalid_argument", `${path} is not in job ${job.id.slice(0, 8)}'s work dir on ${job.worker}`);
    throw err;
  }
}

/**
 * Pull what a job that has ended was started with (--pull) into the directory it was
 * started from (for a job of a group, a directory of its own there), whatever its exit
 * code, once: the record says it is done. Each path's outcome is one line.
 */
export async function pullResults(job: JobRecord, store?: JobStore): Promise<string[]> {
  if (!job.pull?.length || job.pulled || job.status === "failed") return [];
  store?.update(job.id, { pulled: true });
  const dest = job.pull_to ?? job.cwd;
  return Promise.all(
    job.pull.map(async (path) => {
      try {
        mkdirSync(dest, { recursive: true });
        await pullPath(job, path, dest);
        return pulledLine(job, path, dest);
      } catch (err) {
        return pulledLine(job, path, dest, err);
      }
    }),
  );
}

/** What a pull of `path` out of `job` into `dest` came to, in one line: done, or why not. */
export const pulledLine = (job: JobRecord, path: string, dest: string, err?: unknown) =>
  err === undefined
    ? `Pulled ${path} from job ${job.id.slice(0, 8)} into ${dest}`
    : `Could not pull ${path} from job ${job.id.slice(0, 8)}: ${firstLine(err)}`;

/** An error's message, its first line only. */
export const firstLine = (err: unknown) => (err as Error).message.split("\n")[0]!;

/** Where a group's job puts what it pulls: a directory named after its worker and values. */
export const pullDirFor = (cwd: string, label: string) => join(cwd, label.replace(/[^A-Za-z0-9._=-]+/g, "_"));

/**
 * Say that jobs have ended, as config.yaml's `notify:` says: its command, with the jobs'
 * JSON on stdin (one object, or a list for several), and/or a desktop notification where
 * notify-send is. p waits for the command, and no longer. Without `notify:`, a desktop
 * notification if there is a desktop, else nothing to do: says why.
 */
export async function notifyEnd(config: Config, jobs: JobRecord[]): Promise<string | undefined> {
  if (jobs.length === 0) return undefined;
  const how = config.notify ?? { desktop: true };
  const said: Promise<void>[] = [];
  if (how.command) {
    const payload = JSON.stringify(jobs.length === 1 ? jobJson(jobs[0]!) : jobs.map((j) => jobJson(j)));
    const proc = Bun.spawn(["sh", "-c", how.command], { stdin: new Blob([`${payload}\n`]), stdout: "inherit" });
    said.push(
      proc.exited.then((code) => {
        if (code !== 0) throw new Error(`the notify command exited with ${code}`);
      }),
    );
  }
  if (how.desktop) {
    const send = Bun.which("notify-send");
    if (!send && !how.command) return "--notify: no notify command in config.yaml, and no notify-send here";
    if (send) {
      const ok = jobs.filter((j) => j.status === "done" && j.exit_code === 0).length;
      const title =
        jobs.length === 1 ? `p: job ${jobs[0]!.id.slice(0, 8)} ${jobs[0]!.status}` : `p: ${jobs.length} jobs ended`;
      const body = jobs.length === 1 ? jobs[0]!.command : `${ok} of ${jobs.length} succeeded`;
      said.push(Bun.spawn([send, title, body], { stdout: "ignore", stderr: "ignore" }).exited.then(() => {}));
    }
  }
  const results = await Promise.allSettled(said);
  const failed = results.find((r) => r.status === "rejected");
  return failed ? `--notify: ${(failed as PromiseRejectedResult).reason.message}` : undefined;
}
