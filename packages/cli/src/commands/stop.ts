import { type JobRecord, JobStore } from "@p/store";
import { defineCommand } from "citty";
import { jsonArg, strictArgs } from "../_args.ts";
import { EXIT, usage } from "../_errors.ts";
import { jobJson } from "../_format.ts";
import { stopJob } from "../lib/control.ts";
import { isActive, workerOf } from "../lib/records.ts";

const args = {
  id: { type: "positional", required: false, description: "Job id or a unique prefix of it, a name, or a group id" },
  ...jsonArg,
} as const;

/** Stop one job (if it is running or queued): its record now, and the line that says what came of it. */
async function stopOne(job: JobRecord, store: JobStore) {
  const short = job.id.slice(0, 8);
  if (!isActive(job))
    return { job, stopped: false, line: `Job ${short} is not running (${job.status}); nothing to stop` };
  const r = await stopJob(workerOf(job), job.id, store);
  const now = r.job ?? job;
  const line = r.stopped
    ? `Stopped job ${short}`
    : `Job ${short} had already finished (${now.status}${now.exit_code === null ? "" : ` [${now.exit_code}]`})`;
  return { job: now, stopped: r.stopped, line };
}

export default defineCommand({
  meta: {
    name: "stop",
    description:
      "Stop a running job and all its processes (TERM, then KILL after 10s), or a queued one. Example: p stop a3f2",
  },
  args,
  async run({ rawArgs }) {
    const { values, positionals } = strictArgs(args, rawArgs, "stop");
    if (positionals.length !== 1) throw usage("usage: p stop <job-id|group-id>");
    const store = new JobStore();
    const { jobs, group } = store.named(positionals[0]!);
    // a group's jobs all at once; the answer for one job is as it always was
    const answers = await Promise.all(jobs.map((job) => stopOne(job, store)));
    if (values.json) {
      const objects = answers.map((a) => ({ ...jobJson(a.job), stopped: a.stopped }));
      process.stdout.write(`${JSON.stringify(group ? objects : objects[0])}\n`);
    } else for (const a of answers) process.stdout.write(`${a.line}\n`);
    return EXIT.ok;
  },
});
