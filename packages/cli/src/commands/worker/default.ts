import { loadConfig, pickWorker, saveConfig } from "@p/store";
import { defineCommand } from "citty";
import { jsonArg, strictArgs } from "../../_args.ts";
import { usage } from "../../_errors.ts";

const args = {
  name: { type: "positional", required: false, description: "Worker to make the default" },
  ...jsonArg,
} as const;

export default defineCommand({
  meta: { name: "default", description: "Set the default worker. Example: p worker default beefy" },
  args,
  async run({ rawArgs }) {
    const { values, positionals } = strictArgs(args, rawArgs, "worker default");
    if (positionals.length !== 1) throw usage("usage: p worker default <name>");
    const config = loadConfig();
    const worker = pickWorker(config, positionals[0]);
    saveConfig({ ...config, default_worker: worker.name });
    process.stdout.write(
      values.json ? `${JSON.stringify({ default_worker: worker.name })}\n` : `Default worker: ${worker.name}\n`,
    );
    return 0;
  },
});
