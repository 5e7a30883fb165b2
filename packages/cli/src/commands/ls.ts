import { type JobRecord, JobStore } from "@p/store";
import { defineCommand } from "citty";
import { jsonArg, strictArgs } from "../_args.ts";
import { clock, durationS, gitText, jobJson, statusText, table, tilde } from "../_format.ts";
import { log } from "../_log.ts";
import { isActive, reconcile } from "../lib/records.ts";

const args = {
  all: {
    type: "boolean",
    alias: "a",
    description: "Also show finished jobs (done, failed, stopped, timeout, skipped, unknown)",
  },
  long: { type: "boolean", alias: "l", description: "Also show each job's name, tags and git commit (* if dirty)" },
  tag: { type: "string", description: "Only the jobs with this tag" },
  ...jsonArg,
} as const;

export default defineCommand({
  meta: {
    name: "ls",
    description: "List running and queued jobs (-a: all jobs). Example: p ls -a --json | jq '.[].id'",
  },
  args,
  async run({ rawArgs }) {
    const { values } = strictArgs(args, rawArgs, "ls");
    const store = new JobStore();
    const all = store.list((file, why) => log.warn(`skipped ${file} (${why})`));
    const { jobs, unreachable } = await reconcile(store, all);
    for (const why of unreachable.values()) log.warn(`${why}; its jobs show their last known status (marked ?)`);
    const tag = values.tag as string | undefined;
    const shown = (values.all ? jobs : jobs.filter(isActive)).filter((j) => !tag || j.tags?.includes(tag));
    const unverified = (j: JobRecord) => isActive(j) && unreachable.has(j.worker);
    if (values.json) {
      process.stdout.write(
        `${JSON.stringify(
          shown.map((j) => jobJson(j, unverified(j))),
          null,
          2,
        )}\n`,
      );
      return 0;
    }
    const long = Boolean(values.long);
    // Slurm's job ids, once some job shown has one
    const slurm = shown.some((j) => j.slurm);
    const rows = shown.map((j) => [
      j.id.slice(0, 8),
      ...(long ? [j.name ?? "-"] : []),
      j.worker,
      ...(slurm ? [j.slurm?.job_id ?? "-"] : []),
      tilde(j.cwd),
      j.command.replace(/\s+/g, " "),
      statusText(j, unverified(j)),
      clock(durationS(j)),
      ...(long ? [gitText(j), j.tags?.join(",") || "-"] : []),
    ]);
    const header = ["ID", ...(long ? ["NAME"] : []), "WORKER", ...(slurm ? ["SLURM"] : []), "CWD", "COMMAND"];
    header.push("STATUS", "DURATION");
    if (long) header.push("GIT", "TAGS");
    const fit = process.stdout.isTTY ? { width: process.stdout.columns || 80, shrink: long ? 4 : 3 } : undefined;
    process.stdout.write(`${table(header, rows, fit)}\n`);
    return 0;
  },
});
