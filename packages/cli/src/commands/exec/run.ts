import { commandLine, followScript, launchScript, remoteSh } from "@p/exec";
import { defineCommand } from "citty";
import { v4 as uuid } from "uuid";
import { jsonArg, strictArgs } from "../../_args.ts";
import { UsageError } from "../../_errors.ts";
import { FollowError, watchJob } from "../../_follow.ts";
import { connectWorker, workerOrTarget } from "../../_ssh.ts";

const args = {
  target: { type: "positional", required: false, description: "A worker name, or any ssh target: user@host, user@host:port, an alias" },
  dir: { type: "string", description: "Existing directory to run in (relative to the home unless absolute); default: a fresh ~/.p/workdirs/<id>" },
  detach: { type: "boolean", alias: "d", description: "Start the job, print its id and return" },
  "dry-run": { type: "boolean", description: "Print the script that would run on the target; run nothing" },
  ...jsonArg,
} as const;

export default defineCommand({
  meta: { name: "run", description: "Start a command detached, in its own process group, logged; follow it unless -d. Example: p-exec run beefy -d -- ./bench.sh" },
  args,
  async run({ rawArgs }) {
    const dash = rawArgs.indexOf("--");
    const argv = dash >= 0 ? rawArgs.slice(dash + 1) : [];
    const { values, positionals } = strictArgs(args, dash >= 0 ? rawArgs.slice(0, dash) : rawArgs, "p-exec run");
    if (positionals.length !== 1 || argv.every((a) => a.trim() === "")) throw new UsageError("usage: p-exec run [--dir <dir>] [-d] <worker|ssh-target> -- <command>");
    const worker = workerOrTarget(positionals[0]!);
    const id = uuid();
    const dir = values.dir as string | undefined;
    const launch = launchScript({ id, command: commandLine(argv), cwd: process.cwd(), worker: worker.name, ...(dir !== undefined && { dir }) });
    const script = values.detach ? launch : `${launch}\n${followScript(id)}`;
    if (values["dry-run"]) {
      process.stdout.write(values.json ? `${JSON.stringify({ id, target: worker.name, script })}\n` : script);
      return 0;
    }
    const conn = await connectWorker(worker);
    try {
      if (values.detach) {
        const r = await conn.run(remoteSh(launch));
        if (r.code !== 0) throw new FollowError("remote_failed", `job could not start on ${worker.name}: ${r.stderr.trim() || `exit ${r.code}`}`);
        process.stdout.write(values.json ? `${JSON.stringify({ id, target: worker.name })}\n` : `${id}\n`);
        return 0;
      }
      return await watchJob(conn, remoteSh(script), { id, worker: worker.name, resume: `p-exec logs -f ${positionals[0]} ${id}` }, 0);
    } finally {
      conn.close();
    }
  },
});
