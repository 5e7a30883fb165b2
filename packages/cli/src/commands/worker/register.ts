import { defaultWorkerName, PError, type Probe, parseConnection, resolveRoot } from "@p/exec";
import { assertWorkerName, loadConfig, saveConfig } from "@p/store";
import { defineCommand } from "citty";
import { jsonArg, strictArgs } from "../../_args.ts";
import { pc } from "../../_color.ts";
import { EXIT, usage } from "../../_errors.ts";
import { bytes, capacityText, slurmText } from "../../_format.ts";
import { log } from "../../_log.ts";
import { openWorker, slurmOf } from "../../lib/workers.ts";
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

/** Slurm's tools answer on the login node, or the one line that says what is missing (and nothing is registered). */
function slurmCheck(name: string, probe: Probe | undefined): string {
  const s = probe?.slurm;
  if (!probe) throw new PError("remote_failed", `cannot tell whether ${name} has Slurm: its probe failed`);
  if (!s)
    throw new PError("remote_failed", `${name} has no sbatch: register a Slurm login node, where sbatch is on PATH`);
  const missing = [!s.squeue && "squeue", !s.scancel && "scancel"].filter(Boolean);
  if (missing.length) throw new PError("remote_failed", `${name} has sbatch but no ${missing.join(" or ")}`);
  if (!s.answers)
    throw new PError(
      "remote_failed",
      `Slurm does not answer on ${name} (squeue failed): is slurmctld up and reachable?`,
    );
  return `Slurm ${s.version} answers on ${name}: sbatch, squeue and scancel`;
}

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
  slurm: { type: "boolean", description: "It is a Slurm login node: jobs are submitted to Slurm (sbatch)" },
  partition: { type: "string", description: "With --slurm: the partition jobs go to (default: Slurm's)" },
  account: { type: "string", description: "With --slurm: the account jobs are charged to" },
  root: {
    type: "string",
    description: "Where p keeps its files there (default ~/.p); on a cluster, its shared file system: /scratch/$USER/p",
  },
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
    let worker = withCapacity({ name, connection, ...slurmOf(values) }, values);
    if (worker.slurm && (worker.slots !== undefined || worker.gpus))
      throw usage("--slots and --gpus are for workers that run jobs themselves; Slurm places a Slurm worker's jobs");
    const root = values.root as string | undefined;
    if (values["no-check"] && root !== undefined) worker = { ...worker, root: resolveRoot(root, {}) };
    if (!values["no-check"]) {
      const backend = await openWorker(worker, {
        acceptNewHostKey: true,
        onNewHostKey: (k) =>
          log.info(`Recorded the host key of ${k.name} (${k.keyType} ${k.fingerprint}) in ${k.file}`),
      });
      const probe = await backend.probe({ slurm: Boolean(worker.slurm) }).catch(() => undefined);
      backend.close();
      if (worker.slurm) log.info(slurmCheck(name, probe));
      if (root !== undefined) worker = { ...worker, root: resolveRoot(root, probe ?? {}) };
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
          worker.slurm
            ? `: ${slurmText(worker)}`
            : worker.slots !== undefined || worker.gpus
              ? `: ${capacityText(worker)}`
              : ""
        }\n`,
      );
    return EXIT.ok;
  },
});
