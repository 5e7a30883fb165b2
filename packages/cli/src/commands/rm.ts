import { PError } from "@p/exec/protocol";
import { JobStore } from "@p/store";
import { defineCommand } from "citty";
import { jsonArg, strictArgs } from "../_args.ts";
import { EXIT, usage } from "../_errors.ts";
import { bytes } from "../_format.ts";
import { withWorker } from "../lib/control.ts";
import { byWorker, isActive, reconcile, workerOf } from "../lib/records.ts";

const args = {
  ids: { type: "positional", required: false, description: "Job ids (or unique prefixes), names or group ids" },
  force: { type: "boolean", alias: "f", description: "Stop running jobs first instead of refusing" },
  ...jsonArg,
} as const;

export default defineCommand({
  meta: { name: "rm", description: "Remove jobs: their records and their dirs on the worker. Example: p rm a3f2 7c91" },
  args,
  async run({ rawArgs }) {
    const { values, positionals } = strictArgs(args, rawArgs, "rm");
    if (positionals.length === 0) throw usage("usage: p rm [--force] <job-id>...");
    const store = new JobStore();
    const found = [...new Map(positionals.flatMap((p) => store.findMany(p)).map((j) => [j.id, j])).values()];
    const { jobs, unreachable } = await reconcile(store, found);
    if (unreachable.size)
      throw new PError("worker_unreachable", `${[...unreachable.values()][0]}; nothing was removed`);
    const running = jobs.filter(isActive);
    if (running.length && !values.force)
      throw usage(
        `job ${running.map((j) => j.id.slice(0, 8)).join(", ")} is running or queued; ` +
          "stop it first (p stop) or use --force",
      );
    const removed: { id: string; worker: string; bytes: number }[] = [];
    await Promise.all(
      byWorker(jobs).map((group) =>
        withWorker(workerOf(group[0]!), async (backend) => {
          // in one round trip: a job still running (or that ended just now) is stopped, then removed
          const { sizes } = await backend.remove(
            group.map((j) => j.id),
            { stop: Boolean(values.force) },
          );
          for (const j of group) {
            if (!sizes.has(j.id)) continue;
            store.remove(j.id);
            removed.push({ id: j.id, worker: j.worker, bytes: sizes.get(j.id)! });
          }
        }),
      ),
    );
    if (values.json) process.stdout.write(`${JSON.stringify(removed, null, 2)}\n`);
    else
      for (const r of removed)
        process.stdout.write(`Removed job ${r.id.slice(0, 8)} from ${r.worker} (freed ${bytes(r.bytes)})\n`);
    return EXIT.ok;
  },
});
