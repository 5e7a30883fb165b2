import { problem } from "@p/exec/protocol";
import { JobStore, loadConfig, pickWorker, saveConfig } from "@p/store";
import { defineCommand } from "citty";
import { jsonArg, strictArgs } from "../../_args.ts";
import { usage } from "../../_errors.ts";
import { isActive, reconcile } from "../../lib/records.ts";

const args = {
  name: { type: "positional", required: false, description: "Worker to unregister" },
  ...jsonArg,
} as const;

export default defineCommand({
  meta: {
    name: "rm",
    description: "Unregister a worker (refused while it has running jobs). Example: p worker rm beefy",
  },
  args,
  async run({ rawArgs }) {
    const { values, positionals } = strictArgs(args, rawArgs, "worker rm");
    if (positionals.length !== 1) throw usage("usage: p worker rm <name>");
    const config = loadConfig();
    const worker = pickWorker(config, positionals[0]);
    const store = new JobStore();
    // ask the worker first: a job recorded as running may have ended since
    const { jobs } = await reconcile(
      store,
      store.list().filter((j) => j.worker === worker.name && isActive(j)),
    );
    const running = jobs.filter(isActive);
    if (running.length)
      throw usage(
        problem(
          `worker ${worker.name} has ${running.length} running or queued job(s)`,
          running.map((j) => j.id.slice(0, 8)).join(", "),
          "stop them first: p stop <id>",
        ),
      );
    const workers = config.workers.filter((w) => w.name !== worker.name);
    const default_worker = config.default_worker === worker.name ? workers[0]?.name : config.default_worker;
    const newDefault = default_worker && default_worker !== config.default_worker;
    const { default_worker: _, ...rest } = config;
    saveConfig({ ...rest, ...(default_worker && { default_worker }), workers });
    if (values.json)
      process.stdout.write(`${JSON.stringify({ removed: worker.name, default_worker: default_worker ?? null })}\n`);
    else
      process.stdout.write(
        `Removed worker ${worker.name}${newDefault ? `; the default is now ${default_worker}` : ""}\n`,
      );
    return 0;
  },
});
