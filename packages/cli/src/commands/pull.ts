import { JobStore } from "@p/store";
import { defineCommand } from "citty";
import { jsonArg, strictArgs } from "../_args.ts";
import { usage } from "../_errors.ts";
import { pullPath } from "../lib/after.ts";

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
    await pullPath(job, path, dest);
    if (values.json) process.stdout.write(`${JSON.stringify({ id: job.id, path, dest })}\n`);
    else process.stderr.write(`Pulled ${path} from job ${job.id.slice(0, 8)} into ${dest}\n`);
    return 0;
  },
});
