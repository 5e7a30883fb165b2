import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { GPU_ID, PError } from "@p/exec/protocol";
import { parseDocument, stringify } from "yaml";
import { writeFileAtomic } from "./atomic.ts";
import { configDir } from "./paths.ts";

export interface Worker {
  name: string;
  connection: string;
  /** Jobs of p's at once on it; none: no limit. */
  slots?: number;
  /** Its GPUs' indexes, which jobs with --gpus wait for. */
  gpus?: string[];
  /** A Slurm login node: jobs are submitted to Slurm, in this partition and account if given. */
  slurm?: { partition?: string; account?: string };
  /** Where p keeps its files on the worker, if not ~/.p (absolute, or relative to the home). */
  root?: string;
}

/** What kind of worker it is: one that runs jobs itself, or a Slurm login node. */
export const workerKind = (w: Worker): "ssh" | "slurm" => (w.slurm ? "slurm" : "ssh");

export interface Config {
  default_worker?: string;
  workers: Worker[];
  /**
   * Which of the client's variables a job gets, as OpenSSH's `SendEnv` would send them:
   * TERM, LANG and LC_* unless `false`; a list adds names (`NAME`, or `PREFIX_*`).
   */
  forward_env?: false | string[];
  /** `auto`: run jobs under a pseudo-terminal (as -t does) when p's stdout is a terminal. */
  tty?: "auto";
  /** How --notify says a job ended: a command (the job's JSON on stdin), and/or a desktop notification. */
  notify?: { command?: string; desktop?: boolean };
}

/** A worker's or a job's name: letters, digits, '.', '_' and '-', starting with a letter or digit. */
export const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * Words a worker cannot be named, since `p <word> -- cmd` must stay a command of p's:
 * the commands there are and those planned.
 */
export const RESERVED_NAMES = new Set([
  "run",
  "ls",
  "logs",
  "stop",
  "pull",
  "rm",
  "prune",
  "wait",
  "rerun",
  "ui",
  "worker",
  "completion",
  "help",
  "any",
  "all",
]);

/** Why a worker name cannot be used, or undefined if it can. */
function nameProblem(name: string): string | undefined {
  if (!NAME.test(name)) return "use letters, digits, '.', '_' and '-' (at most 64, not starting with '.' or '-')";
  if (RESERVED_NAMES.has(name.toLowerCase())) return `it is a command of p (p ${name.toLowerCase()})`;
  return undefined;
}

export function assertWorkerName(name: string): string {
  const why = nameProblem(name);
  if (why) throw new PError("invalid_argument", `worker name ${JSON.stringify(name)} is not valid: ${why}`);
  return name;
}

/** A variable to forward: a name, or a prefix ending in `*`. */
const ENV_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*\*?$/;

export const configPath = (dir = configDir()) => join(dir, "config.yaml");

/** Read the config; a missing file is an empty config, a broken one an error naming file and line. */
export function loadConfig(path = configPath()): Config {
  if (!existsSync(path)) return { workers: [] };
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new PError("config_invalid", `cannot read ${path} (${(err as Error).message})`);
  }
  const doc = parseDocument(text);
  const bad = (line: number | undefined, why: string) =>
    new PError("config_invalid", `${path}${line ? `:${line}` : ""}: ${why}; fix or remove the file`);
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    throw bad(e.linePos?.[0].line, e.message.split("\n")[0]!);
  }
  const raw = (doc.toJS() ?? {}) as Record<string, unknown>;
  if (typeof raw !== "object" || Array.isArray(raw)) throw bad(1, "expected a mapping with default_worker and workers");
  const workers = raw.workers ?? [];
  if (!Array.isArray(workers)) throw bad(undefined, "workers must be a list");
  const seen = new Set<string>();
  for (const [i, w] of workers.entries()) {
    const where = `workers[${i}]`;
    if (!w || typeof w.name !== "string" || typeof w.connection !== "string")
      throw bad(undefined, `${where} needs a name and a connection`);
    const why = nameProblem(w.name);
    if (why) throw bad(undefined, `${where}: worker name ${JSON.stringify(w.name)} is not valid: ${why}`);
    if (seen.has(w.name)) throw bad(undefined, `worker ${w.name} is listed twice`);
    seen.add(w.name);
    if (w.slots !== undefined && !(Number.isInteger(w.slots) && w.slots > 0))
      throw bad(undefined, `${where}: slots must be a whole number above 0`);
    if (w.gpus !== undefined && !(Array.isArray(w.gpus) && w.gpus.every((g: unknown) => GPU_ID.test(String(g)))))
      throw bad(undefined, `${where}: gpus must be a list of GPU indexes`);
    const slurmOk =
      w.slurm === undefined ||
      (w.slurm !== null &&
        typeof w.slurm === "object" &&
        Object.entries(w.slurm).every(([k, v]) => ["partition", "account"].includes(k) && typeof v === "string"));
    if (!slurmOk) throw bad(undefined, `${where}: slurm takes partition and account (names)`);
    if (w.root !== undefined && (typeof w.root !== "string" || !w.root))
      throw bad(undefined, `${where}: root must be a path`);
  }
  const def = raw.default_worker;
  if (def !== undefined && def !== null && typeof def !== "string")
    throw bad(undefined, "default_worker must be a worker name");
  const forward = raw.forward_env;
  const forwardOk =
    forward === undefined ||
    forward === false ||
    (Array.isArray(forward) && forward.every((f) => typeof f === "string" && ENV_PATTERN.test(f)));
  if (!forwardOk) throw bad(undefined, "forward_env must be false or a list of variable names (NAME or PREFIX_*)");
  if (raw.tty !== undefined && raw.tty !== "auto") throw bad(undefined, "tty must be auto (or left out)");
  const notify = raw.notify as Record<string, unknown> | undefined;
  const notifyOk =
    notify === undefined ||
    (notify !== null &&
      typeof notify === "object" &&
      Object.entries(notify).every(
        ([k, v]) =>
          (k === "command" && typeof v === "string" && v.trim() !== "") || (k === "desktop" && typeof v === "boolean"),
      ));
  if (!notifyOk) throw bad(undefined, "notify takes command (a shell command) and desktop (true or false)");
  return {
    ...(typeof def === "string" && { default_worker: def }),
    workers: workers.map((w: Worker) => ({
      name: w.name,
      connection: w.connection,
      ...(w.slots !== undefined && { slots: w.slots }),
      ...(w.gpus !== undefined && { gpus: w.gpus.map(String) }),
      ...(w.slurm && { slurm: w.slurm }),
      ...(w.root !== undefined && { root: w.root }),
    })),
    ...(forward !== undefined && { forward_env: forward as false | string[] }),
    ...(raw.tty === "auto" && { tty: "auto" as const }),
    ...(notify && { notify: notify as Config["notify"] }),
  };
}

export function saveConfig(config: Config, path = configPath()): void {
  writeFileAtomic(path, stringify(config));
}

/** The named worker, or the default one. */
export function pickWorker(config: Config, name?: string): Worker {
  const wanted = name ?? config.default_worker;
  if (!wanted) {
    throw new PError("worker_not_found", "no worker is registered; add one with: p worker register user@host");
  }
  const w = config.workers.find((x) => x.name === wanted);
  if (!w) {
    const known = config.workers.map((x) => x.name).join(", ");
    throw new PError(
      "worker_not_found",
      `no worker named ${JSON.stringify(wanted)}${known ? ` (known: ${known})` : ""}; see p worker ls`,
    );
  }
  return w;
}
