import type { RemoteState } from "@p/exec";
import { defineCommand } from "citty";
import { jsonArg } from "../../_args.ts";
import { EXIT } from "../../_errors.ts";
import { withWorker } from "../../lib/control.ts";
import { parseJobArgs, targetAndId } from "./_job.ts";

const args = { ...targetAndId, ...jsonArg } as const;

const stateText = (s: RemoteState) =>
  s.state === "exited"
    ? `${s.skipped ? "skipped" : s.stopped ? "stopped" : s.timedOut ? "timeout" : "exited"} ${s.exitCode ?? "-"}`
    : s.state === "queued"
      ? `queued (${s.waitingFor})`
      : s.state;

export default defineCommand({
  meta: {
    name: "status",
    description:
      "Report jobs' state in one round trip: running, exited (with code), lost or gone. " +
      "Example: p-exec status beefy <id>",
  },
  args,
  async run({ rawArgs }) {
    const { values, worker, ids } = parseJobArgs(args, rawArgs, "p-exec status");
    const states = await withWorker(worker, (backend) => backend.status(ids));
    const rows = ids.map((id) => ({ id, ...(states.get(id) ?? ({ state: "gone" } as RemoteState)) }));
    if (values.json) process.stdout.write(`${JSON.stringify(rows)}\n`);
    else for (const r of rows) process.stdout.write(`${r.id} ${stateText(r)}\n`);
    return EXIT.ok;
  },
});
