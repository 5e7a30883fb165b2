import { parseStatusReport, remoteSh, statusScript, stopScript } from "@p/exec";
import { JobStore } from "@p/store";
import { defineCommand } from "citty";
import { jsonArg, strictArgs } from "../_args.ts";
import { jobJson } from "../_format.ts";
import { UsageError } from "../_errors.ts";
import { applyState } from "../_reconcile.ts";
import { connectWorker } from "../_ssh.ts";

const args = {
  id: { type: "positional", required: false, description: "Job id or a unique prefix of it" },
  ...jsonArg,
} as const;

export default defineCommand({
  meta: { name: "stop", description: "Stop a running job and all its processes (TERM, then KILL after 10s). Example: p stop a3f2" },
  args,
  async run({ rawArgs }) {
    const { values, positionals } = strictArgs(args, rawArgs, "stop");
    if (positionals.length !== 1) throw new UsageError("usage: p stop <job-id>");
    const store = new JobStore();
    const job = store.find(positionals[0]!);
    const short = job.id.slice(0, 8);
    if (job.status !== "running") {
      if (values.json) process.stdout.write(`${JSON.stringify({ ...jobJson(job), stopped: false })}\n`);
      else process.stdout.write(`Job ${short} is not running (${job.status}); nothing to stop\n`);
      return 0;
    }
    const conn = await connectWorker({ name: job.worker, connection: job.connection });
    try {
      const r = await conn.run(remoteSh(`${stopScript(job.id)}\n${statusScript([job.id])}`));
      const state = parseStatusReport(r.stdout.split("\n").slice(1).join("\n")).get(job.id);
      if (r.code === 3) throw Object.assign(new Error(`job ${short} is no longer on worker ${job.worker}`), { code: "job_not_found" });
      const next = (state && store.update(job.id, (current) => applyState(current, state))) || job;
      const stopped = r.stdout.startsWith("stopped");
      if (values.json) process.stdout.write(`${JSON.stringify({ ...jobJson(next), stopped })}\n`);
      else process.stdout.write(stopped ? `Stopped job ${short}\n` : `Job ${short} had already finished\n`);
      return 0;
    } finally {
      conn.close();
    }
  },
});
