import { defineCommand } from "citty";
import { jsonArg } from "../../_args.ts";
import { EXIT, usage } from "../../_errors.ts";
import { stopJob } from "../../lib/control.ts";
import { parseJobArgs, targetAndId } from "./_job.ts";

const args = { ...targetAndId, ...jsonArg } as const;

export default defineCommand({
  meta: {
    name: "stop",
    description: "Stop a job's whole process group (TERM, then KILL after 10 s). Example: p-exec stop beefy <id>",
  },
  args,
  async run({ rawArgs }) {
    const { values, worker, ids } = parseJobArgs(args, rawArgs, "p-exec stop");
    if (ids.length !== 1) throw usage("usage: p-exec stop <worker|ssh-target> <job-id>");
    const id = ids[0]!;
    const { stopped, state } = await stopJob(worker, id);
    if (values.json) process.stdout.write(`${JSON.stringify({ id, stopped, ...state })}\n`);
    else process.stdout.write(stopped ? `Stopped job ${id}\n` : `Job ${id} had already finished\n`);
    return EXIT.ok;
  },
});
