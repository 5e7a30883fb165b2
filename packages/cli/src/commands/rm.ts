import { parseSizes, remoteSh, removeScript, SshError, stopScript } from "@p/exec";
import { JobStore, type JobRecord } from "@p/store";
import { defineCommand } from "citty";
import { jsonArg, strictArgs } from "../_args.ts";
import { UsageError } from "../_errors.ts";
import { bytes } from "../_format.ts";
import { byWorker, reconcile } from "../_reconcile.ts";
import { connectWorker } from "../_ssh.ts";

const args = {
  ids: { type: "positional", required: false, description: "Job ids (or unique prefixes)" },
  force: { type: "boolean", alias: "f", description: "Stop running jobs first instead of refusing" },
  ...jsonArg,
} as const;

export default defineCommand({
  meta: { name: "rm", description: "Remove jobs: their records and their dirs on the worker. Example: p rm a3f2 7c91" },
  args,
  async run({ rawArgs }) {
    const { values, positionals } = strictArgs(args, rawArgs, "rm");
    if (positionals.length === 0) throw new UsageError("usage: p rm [--force] <job-id>...");
    const store = new JobStore();
    const found = [...new Map(positionals.map((p) => store.find(p)).map((j) => [j.id, j])).values()];
    const { jobs, unreachable } = await reconcile(store, found);
    const running = jobs.filter((j) => j.status === "running");
    if (unreachable.size) throw new SshError("worker_unreachable", `${[...unreachable.values()][0]}; nothing was removed`);
    if (running.length && !values.force)
      throw new UsageError(`job ${running.map((j) => j.id.slice(0, 8)).join(", ")} is running; stop it first (p stop) or use --force`);
    const removed: { id: string; worker: string; bytes: number }[] = [];
    await Promise.all(
      byWorker(jobs).map(async (group: JobRecord[]) => {
        const conn = await connectWorker({ name: group[0]!.worker, connection: group[0]!.connection });
        try {
          const stops = group.filter((j) => j.status === "running").map((j) => `${stopScript(j.id)}\n`).join("");
          const r = await conn.run(remoteSh(`${stops}${removeScript(group.map((j) => j.id), true)}`));
          const sizes = parseSizes(r.stdout);
          for (const j of group) {
            if (!sizes.has(j.id)) continue;
            store.remove(j.id);
            removed.push({ id: j.id, worker: j.worker, bytes: sizes.get(j.id)! });
          }
        } finally {
          conn.close();
        }
      }),
    );
    if (values.json) process.stdout.write(`${JSON.stringify(removed, null, 2)}\n`);
    else for (const r of removed) process.stdout.write(`Removed job ${r.id.slice(0, 8)} from ${r.worker} (freed ${bytes(r.bytes)})\n`);
    return 0;
  },
});
