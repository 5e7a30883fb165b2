import { JobStore, loadConfig } from "@p/store";
import { defineCommand } from "citty";
import { jsonArg, strictArgs } from "../../_args.ts";
import { EXIT } from "../../_errors.ts";
import { table } from "../../_format.ts";
import { log } from "../../_log.ts";
import { checkWorker, workerRows } from "../../lib/control.ts";

const args = {
  check: {
    type: "boolean",
    alias: "c",
    description: "Probe each worker over SSH: reachable, rsync present, round-trip time",
  },
  "no-trunc": { type: "boolean", description: "Show long connections whole on a terminal too" },
  ...jsonArg,
} as const;

export default defineCommand({
  meta: { name: "ls", description: "List registered workers; -c probes them. Example: p worker ls --check" },
  args,
  async run({ rawArgs }) {
    const { values } = strictArgs(args, rawArgs, "worker ls");
    const config = loadConfig();
    const checks = values.check ? await Promise.all(config.workers.map((w) => checkWorker(w))) : [];
    const rows = workerRows(config, new JobStore().list(), checks);
    if (values.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    else if (rows.length === 0)
      process.stderr.write("No workers registered; add one with: p worker register user@host\n");
    else {
      // capacity columns once some worker has a capacity
      const capacity = rows.some((w) => w.slots !== undefined || w.gpus !== undefined);
      const header = [
        "NAME",
        "KIND",
        "CONNECTION",
        "DEFAULT",
        ...(values.check ? ["STATUS", "RSYNC", "RTT"] : []),
        ...(capacity ? ["SLOTS", "GPUS"] : []),
      ];
      const cells = rows.map((w) => [
        w.name,
        w.kind,
        w.connection,
        w.default ? "*" : "",
        ...(w.check
          ? [
              w.check.reachable ? "ok" : "unreachable",
              w.check.reachable ? (w.check.rsync ? "yes" : "MISSING") : "-",
              w.check.rtt_ms !== undefined ? `${w.check.rtt_ms}ms` : "-",
            ]
          : []),
        ...(capacity
          ? [w.slots === undefined ? "-" : `${w.slots_in_use ?? 0}/${w.slots}`, w.gpus?.join(",") ?? "-"]
          : []),
      ]);
      const fit =
        process.stdout.isTTY && !values["no-trunc"]
          ? { width: process.stdout.columns || 80, shrink: header.indexOf("CONNECTION") }
          : undefined;
      process.stdout.write(`${table(header, cells, fit)}\n`);
      for (const w of rows) if (w.check?.error) log.warn(w.check.error);
    }
    return rows.some((w) => w.check && !w.check.reachable) ? EXIT.unreachable : EXIT.ok;
  },
});
