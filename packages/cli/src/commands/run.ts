import { commandLine, followScript, launchScript, parseConnection, remoteSh, workDir, type Connection } from "@p/exec";
import { JobStore, loadConfig, pickWorker, type JobRecord } from "@p/store";
import { runSync, SyncError } from "@p/sync";
import { defineCommand } from "citty";
import { pc } from "../_color.ts";
import { v4 as uuid } from "uuid";
import { jsonArg, strictArgs } from "../_args.ts";
import { EXIT, UsageError } from "../_errors.ts";
import { FollowError, watchJob } from "../_follow.ts";
import { connectWorker } from "../_ssh.ts";
import { planJobSync } from "../_sync.ts";
import { jobJson } from "../_format.ts";

const args = {
  worker: { type: "positional", required: false, description: "Worker to run on (default: the default worker)" },
  "no-sync": { type: "boolean", alias: "n", description: "Do not sync the current directory first" },
  detach: { type: "boolean", alias: "d", description: "Start the job, print its id and return" },
  ...jsonArg,
} as const;

export default defineCommand({
  meta: {
    name: "run",
    description: "Sync the current directory to a worker and run a command there: p [worker] [-n] [-d] -- <command>",
  },
  args,
  async run({ rawArgs }) {
    const dash = rawArgs.indexOf("--");
    const argv = dash >= 0 ? rawArgs.slice(dash + 1) : [];
    const { values, positionals } = strictArgs(args, dash >= 0 ? rawArgs.slice(0, dash) : rawArgs, "run");
    if (positionals.length > 1) throw new UsageError(`expected at most one worker before --, got ${positionals.join(" ")}`);
    if (argv.length === 0 || argv.every((a) => a.trim() === "")) throw new UsageError("no command given; usage: p [worker] -- <command>");
    if (values.json && !values.detach) throw new UsageError("--json needs -d: a followed job's stdout is its own output");
    return runJob({ worker: positionals[0], sync: !values["no-sync"], detach: Boolean(values.detach), json: Boolean(values.json), argv });
  },
});

interface RunOptions {
  worker?: string;
  sync: boolean;
  detach: boolean;
  json: boolean;
  argv: string[];
}

async function runJob(opts: RunOptions): Promise<number> {
  const worker = pickWorker(loadConfig(), opts.worker);
  const target = parseConnection(worker.connection);
  const store = new JobStore();
  const cwd = process.cwd();
  const job: JobRecord = {
    id: uuid(),
    worker: worker.name,
    connection: worker.connection,
    command: commandLine(opts.argv),
    argv: opts.argv,
    cwd,
    status: "running",
    exit_code: null,
    started_at: Math.floor(Date.now() / 1000),
    created_ms: Date.now(),
    ended_at: null,
    synced: opts.sync,
    ...(opts.detach ? {} : { client_pid: process.pid }),
  };
  const short = job.id.slice(0, 8);

  // Ctrl+C before the job starts cancels it; once it runs, it only detaches (see watchJob)
  const cancel = new AbortController();
  const onInt = () => cancel.abort();
  process.on("SIGINT", onInt);

  // the sync (rsync over OpenSSH) and the control connection (ssh2) overlap
  const connecting = connectWorker(worker);
  const syncing = opts.sync ? planJobSync(cwd, target, job.id).then((plan) => runSync(plan, { signal: cancel.signal })) : Promise.resolve();
  syncing.catch(() => {});
  let conn: Connection;
  try {
    conn = await connecting;
  } catch (err) {
    cancel.abort();
    throw err;
  }
  try {
    await syncing;
  } catch (err) {
    // a half-synced work dir must never run a command: remove it
    await conn.run(`rm -rf ${workDir(job.id)} ${workDir(job.id)}.part`).catch(() => {});
    conn.close();
    if ((err as SyncError).code === "sync_cancelled") {
      process.stderr.write(`${pc.dim("Cancelled; nothing was started.")}\n`);
      return EXIT.interrupted;
    }
    store.save({ ...job, status: "failed", ended_at: Math.floor(Date.now() / 1000), error: (err as Error).message });
    throw new SyncError("sync_failed", `sync to worker ${worker.name} failed: ${(err as Error).message}`);
  }
  if (cancel.signal.aborted) {
    conn.close();
    process.stderr.write(`${pc.dim("Cancelled; nothing was started.")}\n`);
    return EXIT.interrupted;
  }

  store.save(job);
  const launch = launchScript({ id: job.id, command: job.command, cwd, worker: worker.name });
  try {
    if (opts.detach) {
      const r = await conn.run(remoteSh(launch));
      if (r.code !== 0) throw new FollowError("remote_failed", r.stderr.trim() || (r.signal ? `the worker's shell was killed by SIG${r.signal}` : `the worker's shell exited with ${r.code ?? "no status"}`));
      process.stdout.write(opts.json ? `${JSON.stringify(jobJson(job))}\n` : `${job.id}\n`);
      return 0;
    }
    process.off("SIGINT", onInt);
    if (process.stderr.isTTY) process.stderr.write(`${pc.dim(`job ${short} on ${worker.name}`)}\n`);
    return await watchJob(conn, remoteSh(`${launch}\n${followScript(job.id)}`), { id: job.id, worker: worker.name, store, resume: `p logs -f ${short}` }, 0);
  } catch (err) {
    if ((err as FollowError).code === "remote_failed") {
      store.update(job.id, { status: "failed", ended_at: Math.floor(Date.now() / 1000), error: (err as Error).message });
      throw new FollowError("remote_failed", `job could not start on worker ${worker.name}: ${(err as Error).message}`);
    }
    throw err;
  } finally {
    conn.close();
  }
}
