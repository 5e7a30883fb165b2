import { parseStatusReport, remoteSh, statusScript, type RemoteState } from "@p/exec";
import { defineCommand } from "citty";
import { jsonArg } from "../../_args.ts";
import { connectWorker } from "../../_ssh.ts";
import { parseJobArgs, targetAndId } from "./_job.ts";

const args = { ...targetAndId, ...jsonArg } as const;

export default defineCommand({
  meta: { name: "status", description: "Report jobs' state in one round trip: running, exited (with code), lost or gone. Example: p-exec status beefy <id>" },
  args,
  async run({ rawArgs }) {
    const { values, worker, ids } = parseJobArgs(args, rawArgs, "p-exec status");
    const conn = await connectWorker(worker);
    try {
      const states = parseStatusReport((await conn.run(remoteSh(statusScript(ids)))).stdout);
      const rows = ids.map((id) => ({ id, ...(states.get(id) ?? ({ state: "gone" } as RemoteState)) }));
      if (values.json) process.stdout.write(`${JSON.stringify(rows)}\n`);
      else
        for (const r of rows)
          process.stdout.write(`${r.id} ${r.state === "exited" ? `${r.stopped ? "stopped" : "exited"} ${r.exitCode}` : r.state}\n`);
      return 0;
    } finally {
      conn.close();
    }
  },
});
