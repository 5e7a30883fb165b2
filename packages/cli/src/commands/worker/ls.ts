import { JobStore, loadConfig, type Worker, workerKind } from "@p/store";
import { defineCommand } from "citty";
import { jsonArg, strictArgs } from "../../_args.ts";
import { EXIT } from "../../_errors.ts";
import { table } from "../../_format.ts";
import { log } from "../../_log.ts";
import { withWorker } from "../../lib/control.ts";

const args = {
  check: {
    type: "boolean",
    alias: "c",
    description: "Probe each worker over SSH: reachable, rsync present, round-trip time",
  },
  "no-trunc": { type: "boolean", description: "Show long connections whole on a terminal too" },
  ...jsonArg,
} as const;

interface Check {
  reachable: boolean;
  rsync?: boolean;
  rtt_ms?: number;
  error?: string;
}

/** Connect and time one round trip (the probe); all workers are probed at once. */
async function check(w: Worker): Promise<Check> {
  try {
    return await withWorker(
      w,
      async (backend) => {
        const t0 = performance.now();
        const probe = await backend.probe();
        return { reachable: true, rsync: probe.rsync, rtt_ms: Math.round(performance.now() - t0) };
      },
      5000,
    );
  } catch (err) {
    return { reachable: false, error: (err as Error).message };
  }
}

export default defineCommand({
  meta: { name: "ls", description: "List registered workers; -c probes them. Example: p worker ls --check" },
  args,
  async run({ rawArgs }) {
    const { values } = strictArgs(args, rawArgs, "worker ls");
    const config = loadConfig();
    const checks = values.check ? await Promise.all(config.workers.map(check)) : [];
    // slots in use: this machine's jobs running there, as last known
    const running = new JobStore().list().filter((j) => j.status === "running");
    const rows = config.workers.map((w, i) => ({
      ...w,
      kind: workerKind(w),
      default: w.name === config.default_worker,
      ...(w.slots !== undefined && { slots_in_use: running.filter((j) => j.worker === w.name).length }),
      ...(checks[i] && { check: checks[i] }),
    }));
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
