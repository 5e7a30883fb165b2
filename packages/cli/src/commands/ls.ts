import { type JobRecord, JobStore } from "@p/store";
import { defineCommand } from "citty";
import { jsonArg, strictArgs } from "../_args.ts";
import { clock, durationS, jobJson, statusText, table, tilde } from "../_format.ts";
import { log } from "../_log.ts";
import { isActive, reconcile } from "../lib/records.ts";

const args = {
  all: {
    type: "boolean",
    alias: "a",
    description: "Also show finished jobs (done, failed, stopped, timeout, skipped, unknown)",
  },
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
    const shown = values.all ? jobs : jobs.filter(isActive);
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
    const rows = shown.map((j) => [
      j.id.slice(0, 8),
      j.worker,
      tilde(j.cwd),
      j.command.replace(/\s+/g, " "),
      statusText(j, unverified(j)),
      clock(durationS(j)),
    ]);
    const fit = process.stdout.isTTY ? { width: process.stdout.columns || 80, shrink: 3 } : undefined;
    process.stdout.write(`${table(["ID", "WORKER", "CWD", "COMMAND", "STATUS", "DURATION"], rows, fit)}\n`);
    return 0;
  },
});
