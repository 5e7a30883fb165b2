import { defaultWorkerName, PError, parseConnection } from "@p/exec";
import { assertWorkerName, loadConfig, saveConfig } from "@p/store";
import { defineCommand } from "citty";
import { jsonArg, strictArgs } from "../../_args.ts";
import { EXIT, usage } from "../../_errors.ts";
import { log } from "../../_log.ts";
import { openWorker } from "../../lib/workers.ts";

const args = {
  connection: {
    type: "positional",
    required: false,
    description: "user@host, user@host:port, [v6addr]:port or an ssh config alias",
  },
  name: { type: "string", alias: "n", description: "Name of the worker (default: the host)" },
  "no-check": { type: "boolean", description: "Register without connecting to the worker first" },
  ...jsonArg,
} as const;

export default defineCommand({
  meta: {
    name: "register",
    description:
      "Register a worker; the first one becomes the default. Example: p worker register me@build-box -n beefy",
  },
  args,
  async run({ rawArgs }) {
    const { values, positionals } = strictArgs(args, rawArgs, "worker register");
    if (positionals.length !== 1) throw usage("usage: p worker register <connection> [-n <name>]");
    const connection = positionals[0]!;
    const target = parseConnection(connection);
    const name = assertWorkerName((values.name as string | undefined) ?? defaultWorkerName(target));
    const config = loadConfig();
    if (config.workers.some((w) => w.name === name))
      throw new PError(
        "worker_exists",
        `a worker named ${name} already exists; pick another with -n, or remove it: p worker rm ${name}`,
      );
    const worker = { name, connection };
    if (!values["no-check"]) {
      const backend = await openWorker(worker, {
        acceptNewHostKey: true,
        onNewHostKey: (k) =>
          log.info(`Recorded the host key of ${k.name} (${k.keyType} ${k.fingerprint}) in ${k.file}`),
      });
      const probe = await backend.probe().catch(() => undefined);
      backend.close();
      if (!probe?.rsync || !probe.setsid)
        log.warn(`worker ${name} lacks rsync or setsid; install rsync and util-linux there before running jobs`);
    }
    config.workers.push(worker);
    const isDefault = !config.default_worker;
    if (isDefault) config.default_worker = name;
    saveConfig(config);
    if (values.json) process.stdout.write(`${JSON.stringify({ name, connection, default: isDefault })}\n`);
    else process.stdout.write(`Registered worker ${name} (${connection})${isDefault ? " as the default" : ""}\n`);
    return EXIT.ok;
  },
});
