import { type JobRecord, JobStore } from "@p/store";
import { defineCommand } from "citty";
import { jsonArg, strictArgs } from "../_args.ts";
import { EXIT } from "../_errors.ts";
import { bytes } from "../_format.ts";
import { log } from "../_log.ts";
import { withWorker } from "../lib/control.ts";
import { byWorker, reconcile, workerOf } from "../lib/records.ts";

const shortIds = (jobs: JobRecord[]) => jobs.map((j) => j.id.slice(0, 8)).join(", ");
const sum = (items: { bytes: number }[]) => items.reduce((n, l) => n + l.bytes, 0);

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** A mirror no sync has used for this long is swept by prune (the next run from its directory is a first run again). */
const SWEEP_DAYS = 14;

const args = {
  force: { type: "boolean", alias: "f", description: "Also remove jobs whose status is unknown" },
  "dry-run": { type: "boolean", description: "List what would be removed, and the space it holds, without removing" },
  ...jsonArg,
} as const;

export default defineCommand({
  meta: {
    name: "prune",
    description:
      "Remove finished jobs (done, failed, stopped, timeout, skipped) and their dirs on the workers. " +
      "Example: p prune --dry-run",
  },
  args,
  async run({ rawArgs }) {
    const { values } = strictArgs(args, rawArgs, "prune");
    const dryRun = Boolean(values["dry-run"]);
    const store = new JobStore();
    const { jobs, unreachable } = await reconcile(
      store,
      store.list((f, why) => log.warn(`skipped ${f} (${why})`)),
    );
    const finished = new Set(["done", "failed", "stopped", "timeout", "skipped", ...(values.force ? ["unknown"] : [])]);
    // a job that ended while the p that started it is still printing its output is left to it
    const streaming = jobs.filter(
      (j) => finished.has(j.status) && j.client_pid && j.client_pid !== process.pid && isAlive(j.client_pid),
    );
    if (streaming.length)
      log.info(`left ${streaming.length} job(s) whose output p is still streaming: ${shortIds(streaming)}`);
    const doomed = jobs.filter((j) => finished.has(j.status) && !streaming.includes(j));
    const workers: {
      worker: string;
      jobs: string[];
      bytes: number;
      leftovers: { path: string; bytes: number }[];
      error?: string;
    }[] = [];
    await Promise.all(
      byWorker(doomed).map(async (group: JobRecord[]) => {
        const worker = group[0]!.worker;
        const entry = { worker, jobs: [] as string[], bytes: 0, leftovers: [] as { path: string; bytes: number }[] };
        workers.push(entry);
        if (unreachable.has(worker)) return void Object.assign(entry, { error: unreachable.get(worker) });
        try {
          // in the same round trip: what no job owns (half-made work dirs, mirrors unused for SWEEP_DAYS)
          const { sizes, leftovers } = await withWorker(
            workerOf(group[0]!),
            (backend) =>
              backend.remove(
                group.map((j) => j.id),
                { dryRun, sweepDays: SWEEP_DAYS },
              ),
            5000,
          );
          entry.leftovers = leftovers;
          for (const j of group.filter((j) => sizes.has(j.id))) {
            if (!dryRun) store.remove(j.id);
            entry.jobs.push(j.id);
            entry.bytes += sizes.get(j.id)!;
          }
        } catch (err) {
          Object.assign(entry, { error: (err as Error).message });
        }
      }),
    );
    workers.sort((a, b) => a.worker.localeCompare(b.worker));
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ dry_run: dryRun, workers }, null, 2)}\n`);
    } else {
      if (workers.length === 0) process.stderr.write("Nothing to prune\n");
      const verb = dryRun ? "Would remove" : "Removed";
      for (const w of workers) {
        if (w.error) log.warn(`${w.error}; its jobs were left alone`);
        else {
          const left = w.leftovers.length
            ? ` and ${w.leftovers.length} leftover(s) no job owns (${bytes(sum(w.leftovers))})`
            : "";
          const held = `${dryRun ? "holding" : "freeing"} ${bytes(w.bytes)}`;
          process.stdout.write(`${verb} ${w.jobs.length} job(s) from ${w.worker}, ${held}${left}\n`);
        }
        if (dryRun)
          for (const id of w.jobs)
            process.stdout.write(`  ${id.slice(0, 8)}  ${jobs.find((j) => j.id === id)!.command}\n`);
        if (dryRun) for (const l of w.leftovers) process.stdout.write(`  ${l.path}\n`);
      }
    }
    return workers.some((w) => w.error) ? EXIT.failure : EXIT.ok;
  },
});
