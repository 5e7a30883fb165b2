import { type JobRecord, JobStore, loadConfig } from "@p/store";
import { defineCommand } from "citty";
import { strictArgs } from "../_args.ts";
import { pc } from "../_color.ts";
import { EXIT, usage } from "../_errors.ts";
import { endDetached, endOfOutput, interruptSignal, sayReconnecting, stdoutSink } from "../_io.ts";
import { printLog, withWorker } from "../lib/control.ts";
import { followJob } from "../lib/follow.ts";
import { memberLabel, prefixedSink } from "../lib/group.ts";
import { workerOf } from "../lib/records.ts";
import { retryFor } from "../lib/workers.ts";
import { afterEnd, endFollow } from "./_run.ts";

const args = {
  id: { type: "positional", required: false, description: "Job id or a unique prefix of it, a name, or a group id" },
  follow: { type: "boolean", alias: "f", description: "Follow the output until the job ends (Ctrl+C detaches)" },
  "from-start": { type: "boolean", description: "With -f, start from the beginning even after an interrupted stream" },
  notify: { type: "boolean", description: "With -f, say when it has ended, as notify: in config.yaml says" },
} as const;

/**
 * A group's logs: each job's lines behind its label, as p --on showed them; with follow,
 * all at once to their ends, exiting as the group did.
 */
async function groupLogs(
  jobs: JobRecord[],
  store: JobStore,
  out: ReturnType<typeof stdoutSink>,
  values: Record<string, unknown>,
) {
  const label = (j: JobRecord) => `[${memberLabel(j)}] `;
  if (!values.follow) {
    for (const job of jobs) {
      const sink = prefixedSink(label(job), out);
      await printLog(workerOf(job), job.id, sink);
      sink.flush();
    }
    return EXIT.ok;
  }
  const interrupt = interruptSignal();
  try {
    const followed = await Promise.all(
      jobs.map(async (job) => {
        const sink = prefixedSink(label(job), out);
        const watch = { id: job.id, worker: job.worker, store, resume: `p logs -f ${job.group!.slice(0, 8)}` };
        const offset = values["from-start"] ? 0 : (job.follow_offset ?? 0);
        try {
          return await withWorker(workerOf(job), (backend) =>
            followJob(backend, watch, {
              out: sink,
              offset,
              signal: interrupt.signal,
              retry: retryFor(workerOf(job), sayReconnecting),
            }),
          );
        } finally {
          sink.flush();
        }
      }),
    );
    if (followed.some((f) => f.kind === "detached")) {
      const short = jobs[0]!.group!.slice(0, 8);
      return endDetached(`group ${short} keeps running`, `p logs -f ${short}`);
    }
    const ended = followed.flatMap((f) => (f.kind === "ended" && f.job ? [f.job] : []));
    await afterEnd(ended, store, values.notify ? loadConfig() : undefined);
    const codes = followed.map((f) => (f.kind === "ended" ? (f.status.exitCode ?? EXIT.failure) : EXIT.failure));
    return codes.find((c) => c !== 0) ?? EXIT.ok;
  } finally {
    interrupt.dispose();
  }
}

export default defineCommand({
  meta: {
    name: "logs",
    description: "Print a job's output; -f follows it to the end and exits with its code. Example: p logs -f a3f2",
  },
  args,
  async run({ rawArgs }) {
    const { values, positionals } = strictArgs(args, rawArgs, "logs");
    if (positionals.length !== 1) throw usage("usage: p logs [-f] <job-id>");
    const store = new JobStore();
    const { jobs, group } = store.named(positionals[0]!);
    const out = stdoutSink();
    if (group) return groupLogs(jobs, store, out, values);
    const job = jobs[0]!;
    if (!values.follow) {
      endOfOutput(out, await printLog(workerOf(job), job.id, out));
      return EXIT.ok;
    }
    // after Ctrl+C or a lost connection, carry on from the last byte shown
    const offset = values["from-start"] ? 0 : (job.follow_offset ?? 0);
    if (offset > 0)
      process.stderr.write(`${pc.dim(`(resuming after the ${offset} bytes already shown; --from-start for all)`)}\n`);
    const watch = { id: job.id, worker: job.worker, store, resume: `p logs -f ${job.id.slice(0, 8)}` };
    const interrupt = interruptSignal();
    try {
      const followed = await withWorker(workerOf(job), (backend) =>
        followJob(backend, watch, {
          out,
          offset,
          signal: interrupt.signal,
          retry: retryFor(workerOf(job), sayReconnecting),
        }),
      );
      const code = endFollow(followed, out, watch);
      if (followed.kind === "ended" && followed.job)
        await afterEnd([followed.job], store, values.notify ? loadConfig() : undefined);
      return code;
    } finally {
      interrupt.dispose();
    }
  },
});
