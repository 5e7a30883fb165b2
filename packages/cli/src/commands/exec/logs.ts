import { followScript, remoteSh } from "@p/exec";
import { defineCommand } from "citty";
import { UsageError } from "../../_errors.ts";
import { streamStatus, watchJob } from "../../_follow.ts";
import { connectWorker } from "../../_ssh.ts";
import { parseJobArgs, targetAndId } from "./_job.ts";

const args = {
  ...targetAndId,
  follow: { type: "boolean", alias: "f", description: "Follow until the job ends; exit with its code" },
  offset: { type: "string", description: "Start at this byte of the log (resume without repeating)" },
} as const;

export default defineCommand({
  meta: { name: "logs", description: "Print a job's output; -f follows it. Example: p-exec logs -f beefy 3f2a…" },
  args,
  async run({ rawArgs }) {
    const { values, worker, target, ids } = parseJobArgs(args, rawArgs, "p-exec logs");
    if (ids.length !== 1) throw new UsageError("usage: p-exec logs [-f] <worker|ssh-target> <job-id>");
    const id = ids[0]!;
    const offset = Number(values.offset ?? 0);
    if (!Number.isInteger(offset) || offset < 0) throw new UsageError("--offset takes a byte count");
    const conn = await connectWorker(worker);
    try {
      if (!values.follow) {
        await streamStatus(conn, remoteSh(followScript(id, offset, false)), id, `p-exec logs ${target} ${id}`);
        return 0;
      }
      return await watchJob(conn, remoteSh(followScript(id, offset)), { id, worker: worker.name, resume: `p-exec logs -f ${target} ${id}` }, offset);
    } finally {
      conn.close();
    }
  },
});
