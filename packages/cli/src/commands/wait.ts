import { PError } from "@p/exec/protocol";
import { type JobRecord, JobStore, loadConfig } from "@p/store";
import { defineCommand } from "citty";
import { jsonArg, strictArgs } from "../_args.ts";
import { pc } from "../_color.ts";
import { EXIT, usage } from "../_errors.ts";
import { jobJson, statusText } from "../_format.ts";
import { log } from "../_log.ts";
import { parseDuration } from "../lib/duration.ts";
import { isActive, KeptConnections, reconcile } from "../lib/records.ts";
import { afterEnd } from "./_run.ts";

const args = {
  all: { type: "boolean", alias: "a", description: "Wait for every running and queued job" },
  tag: { type: "string", description: "Wait for every job with this tag" },
  timeout: { type: "string", description: "Give up after this long (90s, 30m, 2h): exit 124" },
  "fail-fast": { type: "boolean", description: "Stop waiting as soon as one job does not succeed" },
  notify: {
    type: "boolean",
    description: "Say when they have ended, as notify: in config.yaml says (default: desktop)",
  },
  ...jsonArg,
} as const;

/** A job that ended and did not succeed: its exit code, or 1 if it has none (skipped, stopped while queued, lost). */
const failureCode = (j: JobRecord) => (j.status === "done" && j.exit_code === 0 ? 0 : j.exit_code || 1);

/** Jobs are asked about at most once a second per worker (one round trip each). */
const POLL_MS = 1000;

export default defineCommand({
  meta: {
    name: "wait",
    description:
      "Wait for jobs to end; exit 0 if all succeeded, else the first failure's code. Example: p wait a3f2 b71c",
  },
  args,
  async run({ rawArgs }) {
    const { values, positionals } = strictArgs(args, rawArgs, "wait");
    if (positionals.length === 0 && !values.all && values.tag === undefined)
      throw usage("usage: p wait <job-id|name>... | --all | --tag T [--timeout DUR] [--fail-fast]");
    const deadline =
      values.timeout === undefined ? Infinity : Date.now() + parseDuration(String(values.timeout)) * 1000;
    const store = new JobStore();
    const tag = values.tag as string | undefined;
    const wanted = [
      ...positionals.flatMap((p) => store.findMany(p)),
      ...(values.all ? store.list().filter(isActive) : []),
      ...(tag !== undefined ? store.list().filter((j) => j.tags?.includes(tag)) : []),
    ];
    if (wanted.length === 0 && tag !== undefined) throw new PError("job_not_found", `no job has the tag ${tag}`);
    let jobs = [...new Map(wanted.map((j) => [j.id, j])).values()];
    const said = new Set<string>();
    const warned = new Set<string>();
    const firstFailure = () => jobs.find((j) => !isActive(j) && failureCode(j) !== 0);
    const report = () => {
      if (values.json)
        process.stdout.write(
          `${JSON.stringify(
            jobs.map((j) => jobJson(j)),
            null,
            2,
          )}\n`,
        );
    };
    // one connection per worker for the whole wait: each second is one round trip, no handshake
    const kept = new KeptConnections();
    try {
      for (;;) {
        const t0 = Date.now();
        const { jobs: now, unreachable } = await reconcile(store, jobs.filter(isActive), 5000, kept);
        const fresh = new Map(now.map((j) => [j.id, j]));
        jobs = jobs.map((j) => fresh.get(j.id) ?? j);
        for (const [name, why] of unreachable)
          if (!warned.has(name)) {
            warned.add(name);
            log.warn(`${why}; still waiting for its jobs`);
          }
        for (const j of jobs)
          if (!isActive(j) && !said.has(j.id) && !values.json) {
            said.add(j.id);
            process.stderr.write(`${pc.dim(`job ${j.id.slice(0, 8)} ${statusText(j, false)}`)}\n`);
          }
        const pending = jobs.filter(isActive);
        if (pending.length === 0 || (values["fail-fast"] && firstFailure())) break;
        if (Date.now() >= deadline) {
          report();
          log.warn(`gave up waiting: ${pending.map((j) => j.id.slice(0, 8)).join(", ")} had not ended`);
          return EXIT.timeout;
        }
        await Bun.sleep(Math.max(0, Math.min(POLL_MS - (Date.now() - t0), deadline - Date.now())));
      }
    } finally {
      kept.closeAll();
    }
    // the pulls of jobs started with --pull -d, done by the first p that sees them end, and the word
    await afterEnd(
      jobs.filter((j) => !isActive(j)),
      store,
      values.notify ? loadConfig() : undefined,
    );
    jobs = jobs.map((j) => store.get(j.id) ?? j);
    report();
    const first = firstFailure();
    return first ? failureCode(first) : EXIT.ok;
  },
});
