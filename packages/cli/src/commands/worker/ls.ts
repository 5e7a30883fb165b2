import { loadConfig } from "@p/store";
import { defineCommand } from "citty";
import { jsonArg, strictArgs } from "../../_args.ts";
import { table } from "../../_format.ts";

const args = { ...jsonArg } as const;

export default defineCommand({
  meta: { name: "ls", description: "List registered workers. Example: p worker ls --json" },
  args,
  async run({ rawArgs }) {
    const { values } = strictArgs(args, rawArgs, "worker ls");
    const config = loadConfig();
    const rows = config.workers.map((w) => ({ ...w, default: w.name === config.default_worker }));
    if (values.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    else if (rows.length === 0) process.stderr.write("No workers registered; add one with: p worker register user@host\n");
    else process.stdout.write(`${table(["NAME", "CONNECTION", "DEFAULT"], rows.map((w) => [w.name, w.connection, w.default ? "*" : ""]))}\n`);
    return 0;
  },
});
