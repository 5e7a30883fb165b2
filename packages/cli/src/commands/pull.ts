import { PError, parseConnection, workDir } from "@p/exec";
import { JobStore } from "@p/store";
import { planPull, runSync } from "@p/sync";
import { defineCommand } from "citty";
import { jsonArg, strictArgs } from "../_args.ts";
import { usage } from "../_errors.ts";
import { rshFor } from "../lib/workers.ts";

const args = {
  id: { type: "positional", required: false, description: "Job id (or a unique prefix)" },
  path: { type: "positional", required: false, description: "File or directory inside the job's work dir" },
  dest: { type: "positional", required: false, description: "Where to put it (default: the current directory)" },
  ...jsonArg,
} as const;

export default defineCommand({
  meta: {
    name: "pull",
    description:
      "Copy a file or directory from a job's work dir (rsync, incremental). " +
      "Example: p pull a3f2 target/release/app ./bin/",
  },
  args,
  async run({ rawArgs }) {
    const { values, positionals } = strictArgs(args, rawArgs, "pull");
    if (positionals.length < 2 || positionals.length > 3)
      throw usage("usage: p pull <job-id> <remote-path> [<local-dest>]");
    const [id, path, dest = "."] = positionals as [string, string, string?];
    const job = new JobStore().find(id);
    const target = parseConnection(job.connection);
    const plan = planPull({ host: target.host, rsh: rshFor(target), workDir: workDir(job.id, job.root), path, dest });
    try {
      await runSync(plan);
    } catch (err) {
      if (err instanceof PError && /No such file|change_dir.*failed|link_stat/.test(err.message))
        throw new PError("invalid_argument", `${path} is not in job ${job.id.slice(0, 8)}'s work dir on ${job.worker}`);
      throw err;
    }
    if (values.json) process.stdout.write(`${JSON.stringify({ id: job.id, path, dest })}\n`);
    else process.stderr.write(`Pulled ${path} from job ${job.id.slice(0, 8)} into ${dest}\n`);
    return 0;
  },
});
