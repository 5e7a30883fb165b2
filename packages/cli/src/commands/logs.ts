import { followScript, remoteSh } from "@p/exec";
import { JobStore } from "@p/store";
import { defineCommand } from "citty";
import pc from "picocolors";
import { strictArgs } from "../_args.ts";
import { EXIT, UsageError } from "../_errors.ts";
import { streamStatus } from "../_follow.ts";
import { doneLine } from "../_format.ts";
import { applyState } from "../_reconcile.ts";
import { connectWorker } from "../_ssh.ts";

const args = {
  id: { type: "positional", required: false, description: "Job id or a unique prefix of it" },
  follow: { type: "boolean", alias: "f", description: "Follow the output until the job ends (Ctrl+C detaches)" },
} as const;

export default defineCommand({
  meta: { name: "logs", description: "Print a job's output; -f follows it. Example: p logs -f a3f2" },
  args,
  async run({ rawArgs }) {
    const { values, positionals } = strictArgs(args, rawArgs, "logs");
    if (positionals.length !== 1) throw new UsageError("usage: p logs [-f] <job-id>");
    const store = new JobStore();
    const job = store.find(positionals[0]!);
    const short = job.id.slice(0, 8);
    const conn = await connectWorker({ name: job.worker, connection: job.connection });
    const follow = Boolean(values.follow);
    if (follow)
      process.on("SIGINT", () => {
        process.stderr.write(`\n${pc.dim(`Detached; job ${short} keeps running. Follow it again with: p logs -f ${short}`)}\n`);
        conn.close();
        process.exit(EXIT.interrupted);
      });
    try {
      const s = await streamStatus(conn, remoteSh(followScript(job.id, 0, follow)), job.id);
      if (!follow) return 0;
      if (job.status === "running" || job.status === "unknown") {
        const next = applyState(job, s.exitCode === null ? { state: "lost" } : { state: "exited", exitCode: s.exitCode, endedAt: s.endedAt, stopped: false });
        store.save(next);
      }
      process.stderr.write(`${doneLine(s.exitCode)}\n`);
      return s.exitCode ?? EXIT.failure;
    } finally {
      conn.close();
    }
  },
});
