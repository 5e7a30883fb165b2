import { parseStatusReport, remoteSh, statusScript, stopScript } from "@p/exec";
import { defineCommand } from "citty";
import { jsonArg } from "../../_args.ts";
import { UsageError } from "../../_errors.ts";
import { connectWorker } from "../../_ssh.ts";
import { parseJobArgs, targetAndId } from "./_job.ts";

const args = { ...targetAndId, ...jsonArg } as const;

export default defineCommand({
  meta: { name: "stop", description: "Stop a job's whole process group (TERM, then KILL after 10 s). Example: p-exec stop beefy <id>" },
  args,
  async run({ rawArgs }) {
    const { values, worker, ids } = parseJobArgs(args, rawArgs, "p-exec stop");
    if (ids.length !== 1) throw new UsageError("usage: p-exec stop <worker|ssh-target> <job-id>");
    const id = ids[0]!;
    const conn = await connectWorker(worker);
    try {
      const r = await conn.run(remoteSh(`${stopScript(id)}\n${statusScript([id])}`));
      if (r.code === 3) throw Object.assign(new Error(`no job ${id} on ${worker.name}`), { code: "job_not_found" });
      const state = parseStatusReport(r.stdout).get(id);
      const stopped = r.stdout.startsWith("stopped");
      if (values.json) process.stdout.write(`${JSON.stringify({ id, stopped, ...state })}\n`);
      else process.stdout.write(stopped ? `Stopped job ${id}\n` : `Job ${id} had already finished\n`);
      return 0;
    } finally {
      conn.close();
    }
  },
});
