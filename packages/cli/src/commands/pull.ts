import { mkdirSync } from "node:fs";
import { type JobRecord, JobStore } from "@p/store";
import { defineCommand } from "citty";
import { jsonArg, strictArgs } from "../_args.ts";
import { codeOf, EXIT, exitCodeFor, usage } from "../_errors.ts";
import { firstLine, pullDirFor, pulledLine, pullPath } from "../lib/after.ts";
import { memberLabel } from "../lib/group.ts";
import { byWorker } from "../lib/records.ts";

const args = {
  id: {
    type: "positional",
    required: false,
    description: "Job id (or a unique prefix), or a group id: a dir per job in DEST",
  },
  path: { type: "positional", required: false, description: "File or directory inside the job's work dir" },
  dest: { type: "positional", required: false, description: "Where to put it (default: the current directory)" },
  ...jsonArg,
} as const;

/** What p pull did for one of a group's jobs: where its copy went, or why it did not. */
interface Pulled {
  job: JobRecord;
  dest: string;
  error?: unknown;
}

/**
 * `path` out of each of a group's jobs, into a directory of its own under `dest`, named
 * as --pull names it (its worker and values): the workers at once, one job after another
 * on each. A job that fails to give it never stops the others.
 */
async function pullGroup(jobs: JobRecord[], path: string, dest: string): Promise<Pulled[]> {
  const pulled = new Map<string, Pulled>();
  await Promise.all(
    byWorker(jobs).map(async (same) => {
      for (const job of same) {
        const to = pullDirFor(dest, memberLabel(job));
        try {
          if (job.status === "failed") throw usage(`job ${job.id.slice(0, 8)} never started on ${job.worker}`);
          mkdirSync(to, { recursive: true });
          await pullPath(job, path, to);
          pulled.set(job.id, { job, dest: to });
        } catch (error) {
          pulled.set(job.id, { job, dest: to, error });
        }
      }
    }),
  );
  return jobs.map((j) => pulled.get(j.id)!);
}

export default defineCommand({
  meta: {
    name: "pull",
    description:
      "Copy a file or directory from a job's work dir (rsync, incremental). " +
      "Example: p pull a3f2 target/release/app ./bin/",
  },
  args,
  async run({ rawArgs }) {
    const { values, positionals } = strictArgs(args, rawArgs, "pull");
    if (positionals.length < 2 || positionals.length > 3)
      throw usage("usage: p pull <job-id> <remote-path> [<local-dest>]");
    const [id, path, dest = "."] = positionals as [string, string, string?];
    const { jobs, group } = new JobStore().named(id);
    if (!group) {
      const job = jobs[0]!;
      await pullPath(job, path, dest);
      if (values.json) process.stdout.write(`${JSON.stringify({ id: job.id, path, dest })}\n`);
      else process.stderr.write(`${pulledLine(job, path, dest)}\n`);
      return EXIT.ok;
    }
    const pulled = await pullGroup(jobs, path, dest);
    if (values.json)
      process.stdout.write(
        `${JSON.stringify({
          group,
          path,
          jobs: pulled.map((r) => ({
            id: r.job.id,
            dest: r.dest,
            ...(r.error !== undefined && { error: { code: codeOf(r.error), message: firstLine(r.error) } }),
          })),
        })}\n`,
      );
    else for (const r of pulled) process.stderr.write(`${pulledLine(r.job, path, r.dest, r.error)}\n`);
    // as p wait exits: 0 if every job gave it, else as the first (in the group's order) that did not
    const failed = pulled.find((r) => r.error !== undefined);
    return failed ? exitCodeFor(failed.error) : EXIT.ok;
  },
});
