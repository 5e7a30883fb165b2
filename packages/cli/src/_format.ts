import { homedir } from "node:os";
import type { JobRecord, Worker } from "@p/store";
import { pc } from "./_color.ts";

/**
 * `[Job done: exit N]`, as the spec prints it when a job ends; for a job that never ran,
 * why (stopped while queued, or skipped).
 */
export function doneLine(
  exitCode: number | null,
  how: { timedOut?: boolean; ran?: boolean; stopped?: boolean; skipped?: boolean } = {},
): string {
  const { timedOut = false } = how;
  if (how.ran === false && how.skipped) return pc.yellow("[Job skipped: a job it runs after did not succeed]");
  if (how.ran === false && how.stopped) return pc.yellow("[Job stopped before it started]");
  if (exitCode === null) return pc.yellow("[Job ended without an exit code: status unknown]");
  const line = timedOut
    ? `[Job timed out: exit ${exitCode}]`
    : how.stopped
      ? `[Job stopped: exit ${exitCode}]`
      : `[Job done: exit ${exitCode}]`;
  return exitCode === 0 ? pc.green(line) : pc.red(line);
}

const clip = (s: string, n: number) => (s.length <= n ? s : `${s.slice(0, Math.max(1, n - 1))}…`);

/**
 * Columns padded to their widest cell, like `docker ps`. Given a `width` (a terminal's),
 * the `shrink` columns are clipped, in turn and no narrower than 12, so that lines fit;
 * where that is not enough, in turn again, no narrower than 8 (or their header). Without
 * one, nothing is cut.
 */
export function table(header: string[], rows: string[][], fit?: { width: number; shrink: number | number[] }): string {
  const widthOf = (i: number) => Math.max(header[i]!.length, ...rows.map((r) => r[i]!.length));
  const total = () => header.reduce((sum, _, i) => sum + widthOf(i) + (i < header.length - 1 ? 2 : 0), 0);
  const columns = fit ? [fit.shrink].flat().filter((i) => i >= 0) : [];
  for (const floor of [12, 8])
    for (const col of columns) {
      const over = total() - fit!.width;
      if (over <= 0) break;
      const room = Math.max(header[col]!.length, floor, widthOf(col) - over);
      rows = rows.map((r) => r.map((c, i) => (i === col ? clip(c, room) : c)));
    }
  const widths = header.map((_, i) => widthOf(i));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** 1536 -> "1.5 KB", as du -h would say it. */
export function bytes(n: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

const now = () => Math.floor(Date.now() / 1000);

/** How long a job ran: from when it began to run (else from when p started it), to its end or now. */
export function durationS(j: JobRecord): number {
  const from = j.run_started_at ?? j.started_at;
  return Math.max(0, (j.ended_at ?? (j.status === "running" ? now() : from)) - from);
}

export const clock = (s: number) =>
  `${Math.floor(s / 3600)}:${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
export const tilde = (p: string) => {
  const home = homedir();
  return p === home || p.startsWith(`${home}/`) ? `~${p.slice(home.length)}` : p;
};
/** A job's commit, short, with `*` when the files synced differed from it; - outside git. */
export const gitText = (j: JobRecord) => (j.git ? `${j.git.commit.slice(0, 8)}${j.git.dirty ? "*" : ""}` : "-");

export const statusText = (j: JobRecord, unverified: boolean) =>
  `${j.status}${j.status === "queued" && j.waiting_for ? ` (${j.waiting_for})` : ""}${
    j.status === "running" && j.slurm?.node ? ` (${j.slurm.node})` : ""
  }${j.exit_code !== null && j.status !== "running" ? ` [${j.exit_code}]` : ""}${unverified ? "?" : ""}`;

/** "Slurm, partition gpu, account lab". */
export const slurmText = (w: Worker) =>
  ["Slurm", w.slurm?.partition && `partition ${w.slurm.partition}`, w.slurm?.account && `account ${w.slurm.account}`]
    .filter(Boolean)
    .join(", ");

/** A worker's capacity, in words: "3 slots, GPUs 0,1", "no slot limit". */
export const capacityText = (w: Worker) =>
  `${w.slots === undefined ? "no slot limit" : `${w.slots} slot${w.slots === 1 ? "" : "s"}`}${
    w.gpus?.length ? `, GPUs ${w.gpus.join(",")}` : ""
  }`;

export function jobJson(j: JobRecord, unverified = false) {
  return {
    id: j.id,
    short_id: j.id.slice(0, 8),
    ...(j.name && { name: j.name }),
    ...(j.tags?.length && { tags: j.tags }),
    worker: j.worker,
    cwd: j.cwd,
    command: j.command,
    status: j.status,
    ...(j.status === "queued" && { waiting_for: j.waiting_for ?? null }),
    exit_code: j.exit_code,
    started_at: j.started_at,
    ...(j.run_started_at && { run_started_at: j.run_started_at }),
    ended_at: j.ended_at,
    duration_s: durationS(j),
    ...(j.error && { error: j.error }),
    ...(j.git && { git: j.git }),
    ...(j.rerun_of && { rerun_of: j.rerun_of }),
    ...(j.secrets?.length && { secrets: j.secrets }),
    ...(j.exclusive && { exclusive: true }),
    ...(j.gpus && { gpus: j.gpus }),
    ...(j.after?.length && { after: j.after, after_any: j.after_any === true }),
    ...(j.group && { group: j.group }),
    ...(j.each && { each: j.each }),
    ...(j.slurm && {
      slurm: {
        job_id: j.slurm.job_id,
        state: j.slurm.state ?? null,
        reason: j.slurm.reason ?? null,
        node: j.slurm.node ?? null,
      },
    }),
    ...(j.cpus && { cpus: j.cpus }),
    ...(j.mem && { mem: j.mem }),
    ...(j.sbatch_args?.length && { sbatch_args: j.sbatch_args }),
    ...(unverified && { unverified: true }),
  };
}
