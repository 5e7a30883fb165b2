import { defineCommand } from "citty";
import { EXIT, usage } from "../../_errors.ts";
import { endOfOutput, interruptSignal, sayReconnecting, stdoutSink } from "../../_io.ts";
import { printLog, withWorker } from "../../lib/control.ts";
import { followJob } from "../../lib/follow.ts";
import { retryFor } from "../../lib/workers.ts";
import { endFollow } from "../_run.ts";
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
    if (ids.length !== 1) throw usage("usage: p-exec logs [-f] <worker|ssh-target> <job-id>");
    const id = ids[0]!;
    const offset = Number(values.offset ?? 0);
    if (!Number.isInteger(offset) || offset < 0) throw usage("--offset takes a byte count");
    const out = stdoutSink();
    if (!values.follow) {
      endOfOutput(out, await printLog(worker, id, out, offset));
      return EXIT.ok;
    }
    const resume = `p-exec logs -f ${target} ${id}`;
    const interrupt = interruptSignal();
    try {
      const watch = { id, worker: worker.name, resume };
      const followed = await withWorker(worker, (backend) =>
        followJob(backend, watch, { out, offset, signal: interrupt.signal, retry: retryFor(worker, sayReconnecting) }),
      );
      return endFollow(followed, out, watch);
    } finally {
      interrupt.dispose();
    }
  },
});
