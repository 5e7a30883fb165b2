import { defaultWorkerName, parseConnection } from "@p/exec";
import { assertWorkerName, loadConfig, saveConfig, StoreError } from "@p/store";
import { defineCommand } from "citty";
import { log } from "../../_log.ts";
import { jsonArg, strictArgs } from "../../_args.ts";
import { UsageError } from "../../_errors.ts";
import { connectWorker } from "../../_ssh.ts";

const args = {
  connection: { type: "positional", required: false, description: "user@host, user@host:port, [v6addr]:port or an ssh config alias" },
  name: { type: "string", alias: "n", description: "Name of the worker (default: the host)" },
  "no-check": { type: "boolean", description: "Register without connecting to the worker first" },
  ...jsonArg,
} as const;

export default defineCommand({
  meta: { name: "register", description: "Register a worker; the first one becomes the default. Example: p worker register me@build-box -n beefy" },
  args,
  async run({ rawArgs }) {
    const { values, positionals } = strictArgs(args, rawArgs, "worker register");
    if (positionals.length !== 1) throw new UsageError("usage: p worker register <connection> [-n <name>]");
    const connection = positionals[0]!;
    const target = parseConnection(connection);
    const name = assertWorkerName((values.name as string | undefined) ?? defaultWorkerName(target));
    const config = loadConfig();
    if (config.workers.some((w) => w.name === name))
      throw new StoreError("worker_exists", `a worker named ${name} already exists; pick another with -n, or remove it: p worker rm ${name}`);
    const worker = { name, connection };
    if (!values["no-check"]) {
      const conn = await connectWorker(worker, {
        acceptNewHostKey: true,
        onNewHostKey: (k) => log.info(`Recorded the host key of ${k.name} (${k.keyType} ${k.fingerprint}) in ${k.file}`),
      });
      const probe = await conn.run("command -v rsync >/dev/null && command -v setsid >/dev/null && echo ok").catch(() => undefined);
      conn.close();
      if (probe?.stdout.trim() !== "ok") log.warn(`worker ${name} lacks rsync or setsid; install rsync and util-linux there before running jobs`);
    }
    config.workers.push(worker);
    const isDefault = !config.default_worker;
    if (isDefault) config.default_worker = name;
    saveConfig(config);
    if (values.json) process.stdout.write(`${JSON.stringify({ name, connection, default: isDefault })}\n`);
    else process.stdout.write(`Registered worker ${name} (${connection})${isDefault ? " as the default" : ""}\n`);
    return 0;
  },
});
