import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  type ConnectOptions,
  connect,
  PError,
  parseConnection,
  problem,
  type SshSettings,
  SshWorker,
  sshTargetArgs,
  type Target,
} from "@p/exec";
import { cacheDir, loadConfig, type Worker, writeFileAtomic } from "@p/store";
import type { Retry } from "./follow.ts";
import { keepOptions } from "./keep.ts";

/** The user's ssh command, as GIT_SSH_COMMAND is git's: used for rsync and for resolution. */
export const sshCommand = (): string | undefined => process.env.P_SSH_COMMAND || undefined;

/** rsync's `-e`: the ssh command plus the target's port and user flags (rsync adds the host). */
export function rshFor(target: Target): string {
  const flags = sshTargetArgs(target).slice(0, -1);
  return [sshCommand() ?? "ssh", "-o", "BatchMode=yes", ...flags].join(" ");
}

/**
 * What ssh -G said for a target the last time, kept in the cache dir (one file for all
 * targets), so that the next connection can begin before ssh -G has said it again (see
 * ConnectOptions.resolved). A cache that cannot be read or written only costs that.
 */
function resolvedCache(target: Target): ConnectOptions["resolved"] {
  const file = join(cacheDir(), "ssh-resolved.json");
  const key = JSON.stringify([sshCommand() ?? "ssh", sshTargetArgs(target)]);
  const read = (): Record<string, SshSettings> => {
    try {
      return JSON.parse(readFileSync(file, "utf8"));
    } catch {
      return {};
    }
  };
  const last = read()[key];
  return {
    ...(last && { last }),
    save(settings) {
      try {
        writeFileAtomic(file, JSON.stringify({ ...read(), [key]: settings }));
      } catch {}
    },
  };
}

/** Connect to a worker, as the kind of worker it is; errors name the worker. */
export async function openWorker(worker: Worker, opts: Omit<ConnectOptions, "sshCommand"> = {}): Promise<SshWorker> {
  const keep = keepOptions();
  try {
    const target = parseConnection(worker.connection);
    const conn = await connect(target, {
      resolved: resolvedCache(target),
      ...opts,
      sshCommand: sshCommand(),
      ...(keep && { keep }),
    });
    return new SshWorker(conn, worker.name, worker.root);
  } catch (err) {
    if (!(err instanceof PError)) throw err;
    // an unreachable worker is said with ssh's reason; anything else is its own sentence
    const msg =
      err.code === "worker_unreachable"
        ? problem(`worker ${worker.name} is unreachable`, err.message)
        : `worker ${worker.name}: ${err.message}`;
    throw new PError(err.code, msg, { cause: err });
  }
}

/**
 * A registered worker by name, or else any SSH target (`user@host:port`, an alias), for
 * p-sync and p-exec, which work with or without p's config.
 */
export function workerOrTarget(arg: string): Worker {
  const w = loadConfig().workers.find((x) => x.name === arg);
  if (w) return w;
  parseConnection(arg);
  return { name: arg, connection: arg };
}

/**
 * How a stream from `worker` is mended after a lost connection: retried for
 * P_RECONNECT_TIMEOUT seconds (default 60; 0 turns retrying off), the first retry within a second.
 */
export function retryFor(worker: Worker, onRetry?: Retry["onRetry"]): Retry {
  const seconds = Number(process.env.P_RECONNECT_TIMEOUT ?? 60);
  return {
    connect: (timeoutMs) => openWorker(worker, { timeoutMs }),
    firstMs: 500,
    giveUpMs: Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 0,
    ...(onRetry && { onRetry }),
  };
}

/** --slurm and its settings, as the worker's config keeps them. */
export function slurmOf(values: Record<string, unknown>): Pick<Worker, "slurm"> {
  const partition = values.partition as string | undefined;
  const account = values.account as string | undefined;
  if (!values.slurm) {
    if (partition !== undefined || account !== undefined)
      throw new PError("invalid_argument", "--partition and --account go with --slurm");
    return {};
  }
  for (const [flag, v] of [
    ["--partition", partition],
    ["--account", account],
  ] as const)
    if (v !== undefined && !SLURM_NAME.test(v))
      throw new PError("invalid_argument", `${flag} ${JSON.stringify(v)} is not a Slurm name`);
  return { slurm: { ...(partition && { partition }), ...(account && { account }) } };
}

const SLURM_NAME = /^[A-Za-z0-9_.,-]+$/;
