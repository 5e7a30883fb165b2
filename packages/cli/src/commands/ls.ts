import { JobStore, type JobRecord } from "@p/store";
import { defineCommand } from "citty";
import { log } from "../_log.ts";
import { homedir } from "node:os";
import { jsonArg, strictArgs } from "../_args.ts";
import { table } from "../_format.ts";
import { reconcile } from "../_reconcile.ts";

const args = {
  all: { type: "boolean", alias: "a", description: "Also show finished jobs (done, failed, stopped, unknown)" },
  ...jsonArg,
} as const;

const now = () => Math.floor(Date.now() / 1000);

export function durationS(j: JobRecord): number {
  return Math.max(0, (j.ended_at ?? (j.status === "running" ? now() : j.started_at)) - j.started_at);
}

const clock = (s: number) => `${Math.floor(s / 3600)}:${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
const tilde = (p: string) => {
  const home = homedir();
  return p === home || p.startsWith(`${home}/`) ? `~${p.slice(home.length)}` : p;
};
const status = (j: JobRecord, unverified: boolean) =>
  `${j.status}${j.exit_code !== null && j.status !== "running" ? ` [${j.exit_code}]` : ""}${unverified ? "?" : ""}`;

export function jobJson(j: JobRecord, unverified = false) {
  return {
    id: j.id,
    short_id: j.id.slice(0, 8),
    worker: j.worker,
    cwd: j.cwd,
    command: j.command,
    status: j.status,
    exit_code: j.exit_code,
    started_at: j.started_at,
    ended_at: j.ended_at,
    duration_s: durationS(j),
    ...(unverified && { unverified: true }),
  };
}

export default defineCommand({
  meta: { name: "ls", description: "List running jobs (-a: all jobs). Example: p ls -a --json | jq '.[].id'" },
  args,
  async run({ rawArgs }) {
    const { values } = strictArgs(args, rawArgs, "ls");
    const store = new JobStore();
    const all = store.list((file, why) => log.warn(`skipped ${file} (${why})`));
    const { jobs, unreachable } = await reconcile(store, all);
    for (const why of unreachable.values()) log.warn(`${why}; its jobs show their last known status (marked ?)`);
    const shown = values.all ? jobs : jobs.filter((j) => j.status === "running");
    const unverified = (j: JobRecord) => j.status === "running" && unreachable.has(j.worker);
    if (values.json) {
      process.stdout.write(`${JSON.stringify(shown.map((j) => jobJson(j, unverified(j))), null, 2)}\n`);
      return 0;
    }
    const rows = shown.map((j) => [j.id.slice(0, 8), j.worker, tilde(j.cwd), j.command.replace(/\s+/g, " "), status(j, unverified(j)), clock(durationS(j))]);
    const fit = process.stdout.isTTY ? { width: process.stdout.columns || 80, shrink: 3 } : undefined;
    process.stdout.write(`${table(["ID", "WORKER", "CWD", "COMMAND", "STATUS", "DURATION"], rows, fit)}\n`);
    return 0;
  },
});
