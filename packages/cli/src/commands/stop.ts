import { JobStore } from "@p/store";
import { defineCommand } from "citty";
import { jsonArg, strictArgs } from "../_args.ts";
import { EXIT, usage } from "../_errors.ts";
import { jobJson } from "../_format.ts";
import { stopJob } from "../lib/control.ts";
import { isActive, workerOf } from "../lib/records.ts";

const args = {
  id: { type: "positional", required: false, description: "Job id or a unique prefix of it" },
  ...jsonArg,
} as const;

export default defineCommand({
  meta: {
    name: "stop",
    description:
      "Stop a running job and all its processes (TERM, then KILL after 10s), or a queued one. Example: p stop a3f2",
  },
  args,
  async run({ rawArgs }) {
    const { values, positionals } = strictArgs(args, rawArgs, "stop");
    if (positionals.length !== 1) throw usage("usage: p stop <job-id>");
    const store = new JobStore();
    const job = store.find(positionals[0]!);
    const short = job.id.slice(0, 8);
    if (!isActive(job)) {
      if (values.json) process.stdout.write(`${JSON.stringify({ ...jobJson(job), stopped: false })}\n`);
      else process.stdout.write(`Job ${short} is not running (${job.status}); nothing to stop\n`);
      return EXIT.ok;
    }
    const r = await stopJob(workerOf(job), job.id, store);
    const now = r.job ?? job;
    if (values.json) process.stdout.write(`${JSON.stringify({ ...jobJson(now), stopped: r.stopped })}\n`);
    else if (r.stopped) process.stdout.write(`Stopped job ${short}\n`);
    else
      process.stdout.write(
        `Job ${short} had already finished (${now.status}${now.exit_code === null ? "" : ` [${now.exit_code}]`})\n`,
      );
    return EXIT.ok;
  },
});
