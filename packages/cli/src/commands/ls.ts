import { type JobRecord, JobStore } from "@p/store";
import { defineCommand } from "citty";
import { jsonArg, strictArgs } from "../_args.ts";
import { usage } from "../_errors.ts";
import { clock, durationS, gitText, jobJson, statusText, table, tilde } from "../_format.ts";
import { log } from "../_log.ts";
import { isActive, reconcile } from "../lib/records.ts";

const args = {
  ids: {
    type: "positional",
    required: false,
    description: "Only these jobs or groups (id, prefix or name), finished too; a group gets a tally",
  },
  all: {
    type: "boolean",
    alias: "a",
    description: "Also show finished jobs (done, failed, stopped, timeout, skipped, unknown)",
  },
  long: { type: "boolean", alias: "l", description: "Also show each job's name, tags and git commit (* if dirty)" },
  tag: { type: "string", description: "Only the jobs with this tag" },
  "no-trunc": { type: "boolean", description: "Show long commands whole on a terminal too" },
  commit: {
    type: "string",
    description: "Every run of this git commit (a prefix), finished or not, on any worker, with a tally",
  },
  ...jsonArg,
} as const;

const eachText = (j: JobRecord) =>
  Object.entries(j.each ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(" ") || "-";

/** How many of a commit's failed runs its tally names. */
const NAMED_FAILURES = 5;

/** "3 runs: 2 succeeded, 1 failed (b: exit 2)": how the runs of a commit, or a group's jobs, fared. */
export function runsTally(jobs: JobRecord[]): string {
  const ok = jobs.filter((j) => j.status === "done" && j.exit_code === 0).length;
  const active = jobs.filter(isActive).length;
  const bad = jobs.filter((j) => !isActive(j) && !(j.status === "done" && j.exit_code === 0));
  const why = (j: JobRecord) =>
    `${j.worker}: ${j.status === "done" ? `exit ${j.exit_code}` : j.status}${j.each ? ` ${eachText(j)}` : ""}`;
  const parts = [
    `${ok} succeeded`,
    // (the first few by name: every one is in the table above)
    ...(bad.length
      ? [
          `${bad.length} failed (${bad.slice(0, NAMED_FAILURES).map(why).join(", ")}` +
            `${bad.length > NAMED_FAILURES ? `, and ${bad.length - NAMED_FAILURES} more` : ""})`,
        ]
      : []),
    ...(active ? [`${active} not ended`] : []),
  ];
  return `${jobs.length} run${jobs.length === 1 ? "" : "s"}: ${parts.join(", ")}`;
}

export default defineCommand({
  meta: {
    name: "ls",
    description: "List running and queued jobs (-a: all jobs; ids: just those). Example: p ls -a --json | jq '.[].id'",
  },
  args,
  async run({ rawArgs }) {
    const { values, positionals } = strictArgs(args, rawArgs, "ls");
    const store = new JobStore();
    // the jobs and groups named (an unknown one is refused before any worker is asked)
    const named = positionals.map((p) => store.named(p));
    const ids = named.length ? new Set(named.flatMap((n) => n.jobs.map((j) => j.id))) : undefined;
    const all = store.list((file, why) => log.warn(`skipped ${file} (${why})`));
    const { jobs, unreachable } = await reconcile(store, ids ? all.filter((j) => ids.has(j.id)) : all);
    for (const why of unreachable.values()) log.warn(`${why}; its jobs show their last known status (marked ?)`);
    const tag = values.tag as string | undefined;
    const commit = (values.commit as string | undefined)?.toLowerCase();
    if (commit !== undefined && !/^[0-9a-f]{4,40}$/.test(commit))
      throw usage(`--commit ${JSON.stringify(values.commit)} is not a commit: give at least 4 of its hex digits`);
    const shown = (values.all || commit || ids ? jobs : jobs.filter(isActive))
      .filter((j) => !tag || j.tags?.includes(tag))
      .filter((j) => !commit || j.git?.commit.startsWith(commit));
    const unverified = (j: JobRecord) => isActive(j) && unreachable.has(j.worker);
    if (values.json) {
      process.stdout.write(
        `${JSON.stringify(
          shown.map((j) => jobJson(j, unverified(j))),
          null,
          2,
        )}\n`,
      );
      return 0;
    }
    const long = Boolean(values.long);
    // Slurm's job ids, groups and a sweep's values, once some job shown has them
    const slurm = shown.some((j) => j.slurm);
    const grouped = shown.some((j) => j.group);
    const swept = shown.some((j) => j.each);
    const rows = shown.map((j) => [
      j.id.slice(0, 8),
      ...(long ? [j.name ?? "-"] : []),
      j.worker,
      ...(slurm ? [j.slurm?.job_id ?? "-"] : []),
      ...(grouped ? [j.group?.slice(0, 8) ?? "-"] : []),
      ...(swept ? [eachText(j)] : []),
      tilde(j.cwd),
      j.command.replace(/\s+/g, " "),
      statusText(j, unverified(j)),
      clock(durationS(j)),
      ...(long ? [gitText(j), j.tags?.join(",") || "-"] : []),
    ]);
    const header = ["ID", ...(long ? ["NAME"] : []), "WORKER", ...(slurm ? ["SLURM"] : [])];
    header.push(...(grouped ? ["GROUP"] : []), ...(swept ? ["VALUES"] : []), "CWD", "COMMAND");
    header.push("STATUS", "DURATION");
    if (long) header.push("GIT", "TAGS");
    // on a terminal the command is cut to fit (docker ps's way), then its dir and values;
    // --no-trunc or a pipe keeps them whole
    const fit =
      process.stdout.isTTY && !values["no-trunc"]
        ? {
            width: process.stdout.columns || 80,
            shrink: [header.indexOf("COMMAND"), header.indexOf("CWD"), header.indexOf("VALUES")],
          }
        : undefined;
    process.stdout.write(`${table(header, rows, fit)}\n`);
    if (commit !== undefined || named.some((n) => n.group)) process.stdout.write(`${runsTally(shown)}\n`);
    return 0;
  },
});
