import { JobStore } from "@p/store";
import { defineCommand } from "citty";
import { strictArgs } from "../_args.ts";
import { pc } from "../_color.ts";
import { EXIT, usage } from "../_errors.ts";
import { endOfOutput, interruptSignal, sayReconnecting, stdoutSink } from "../_io.ts";
import { printLog, withWorker } from "../lib/control.ts";
import { followJob } from "../lib/follow.ts";
import { workerOf } from "../lib/records.ts";
import { retryFor } from "../lib/workers.ts";
import { endFollow } from "./_run.ts";

const args = {
  id: { type: "positional", required: false, description: "Job id or a unique prefix of it" },
  follow: { type: "boolean", alias: "f", description: "Follow the output until the job ends (Ctrl+C detaches)" },
  "from-start": { type: "boolean", description: "With -f, start from the beginning even after an interrupted stream" },
} as const;

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
    const job = store.find(positionals[0]!);
    const out = stdoutSink();
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
      return endFollow(followed, out, watch);
    } finally {
      interrupt.dispose();
    }
  },
});
