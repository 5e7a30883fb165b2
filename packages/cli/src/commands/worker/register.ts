import { defaultWorkerName, PError, type Probe, parseConnection } from "@p/exec";
import { assertWorkerName, loadConfig, saveConfig } from "@p/store";
import { defineCommand } from "citty";
import { jsonArg, strictArgs } from "../../_args.ts";
import { pc } from "../../_color.ts";
import { EXIT, usage } from "../../_errors.ts";
import { bytes, capacityText } from "../../_format.ts";
import { log } from "../../_log.ts";
import { openWorker } from "../../lib/workers.ts";
import { withCapacity } from "./set.ts";

/** What a probe found: "8 cores, 31.2 GiB memory, GPUs 0,1". */
const machineText = (p: Probe) =>
  [
    p.cores !== undefined && `${p.cores} core${p.cores === 1 ? "" : "s"}`,
    p.memBytes !== undefined && `${bytes(p.memBytes)} memory`,
    p.gpus?.length ? `GPUs ${p.gpus.join(",")}` : "no GPUs",
  ]
    .filter(Boolean)
    .join(", ");

const args = {
  connection: {
    type: "positional",
    required: false,
    description: "user@host, user@host:port, [v6addr]:port or an ssh config alias",
  },
  name: { type: "string", alias: "n", description: "Name of the worker (default: the host)" },
  "no-check": { type: "boolean", description: "Register without connecting to the worker first" },
  slots: { type: "string", description: "Jobs of p's at once on it (default: no limit)" },
  gpus: { type: "string", description: "Its GPUs (0,1,2); default: those nvidia-smi -L lists there" },
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
    let worker = withCapacity({ name, connection }, values);
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
      if (probe && values.gpus === undefined && probe.gpus?.length) worker = { ...worker, gpus: probe.gpus };
      if (probe && !values.json && process.stderr.isTTY)
        process.stderr.write(`${pc.dim(`${name} has ${machineText(probe)}`)}\n`);
    }
    config.workers.push(worker);
    const isDefault = !config.default_worker;
    if (isDefault) config.default_worker = name;
    saveConfig(config);
    if (values.json) process.stdout.write(`${JSON.stringify({ ...worker, default: isDefault })}\n`);
    else
      process.stdout.write(
        `Registered worker ${name} (${connection})${isDefault ? " as the default" : ""}${
          worker.slots !== undefined || worker.gpus ? `: ${capacityText(worker)}` : ""
        }\n`,
      );
    return EXIT.ok;
  },
});
