import { readFileSync } from "node:fs";
import { ENV_NAME, PError } from "@p/exec/protocol";
import type { Config } from "@p/store";
import { parse as parseDotenv } from "dotenv";

/** What OpenSSH's usual `SendEnv LANG LC_*` sends, and the terminal type. */
export const DEFAULT_FORWARD = ["TERM", "LANG", "LC_*"];

/**
 * The client's variables a job gets (see Config.forward_env): each pattern a name or a
 * prefix ending in `*`. Pure: `env` stands in for the process's.
 */
export function forwardedEnv(config: Pick<Config, "forward_env">, env: Record<string, string | undefined>) {
  if (config.forward_env === false) return {};
  const patterns = [...DEFAULT_FORWARD, ...(config.forward_env ?? [])];
  const matches = (name: string) =>
    patterns.some((p) => (p.endsWith("*") ? name.startsWith(p.slice(0, -1)) : name === p));
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (value !== undefined && matches(name)) out[name] = value;
  return out;
}

export interface Terminal {
  isTTY?: boolean;
  columns?: number;
  rows?: number;
}

/**
 * The pseudo-terminal a job gets with -t (or with `tty: auto` when stdout is a terminal):
 * the size of the client's terminal, else COLUMNS and LINES, else 80x24.
 */
export function jobTerminal(
  wanted: boolean,
  config: Pick<Config, "tty">,
  out: Terminal,
  env: Record<string, string | undefined>,
): { cols: number; rows: number } | undefined {
  if (!wanted && !(config.tty === "auto" && out.isTTY)) return undefined;
  const num = (v: string | undefined) => (v && /^\d+$/.test(v) && Number(v) > 0 ? Number(v) : undefined);
  return {
    cols: (out.isTTY && out.columns) || num(env.COLUMNS) || 80,
    rows: (out.isTTY && out.rows) || num(env.LINES) || 24,
  };
}

/**
 * A job's variables and terminal, from the config, the -t flag and the client's own; the
 * variables the user gives (see userEnv) come last and win.
 */
export function jobSurroundings(
  config: Pick<Config, "forward_env" | "tty">,
  tty: boolean,
  given: Record<string, string> = {},
  out: Terminal = process.stdout,
  env: Record<string, string | undefined> = process.env,
) {
  const terminal = jobTerminal(tty, config, out, env);
  const vars = { ...forwardedEnv(config, env), ...given };
  // a terminal needs a type for tput and curses; the client may have none (a pipe, CI)
  if (terminal && !vars.TERM) vars.TERM = "xterm-256color";
  return { env: vars, ...(terminal && { tty: terminal }) };
}

/**
 * The variables a user gives a job: `--env-file FILE` (dotenv syntax), then `--env
 * KEY=VALUE` or `--env KEY` (the value here), later ones winning. `read` stands in for the
 * file system.
 */
export function userEnv(
  given: { env?: string[]; envFiles?: string[] },
  local: Record<string, string | undefined>,
  read: (file: string) => string = (file) => readFileSync(file, "utf8"),
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const file of given.envFiles ?? []) {
    let text: string;
    try {
      text = read(file);
    } catch (err) {
      throw new PError("invalid_argument", `cannot read the env file ${file} (${(err as Error).message})`);
    }
    Object.assign(out, parseDotenv(text));
  }
  for (const item of given.env ?? []) {
    const eq = item.indexOf("=");
    const name = eq < 0 ? item : item.slice(0, eq);
    if (!ENV_NAME.test(name))
      throw new PError(
        "invalid_argument",
        `--env ${JSON.stringify(item)}: ${JSON.stringify(name)} is not a variable name`,
      );
    const value = eq < 0 ? local[name] : item.slice(eq + 1);
    if (value === undefined)
      throw new PError(
        "invalid_argument",
        `--env ${name}: ${name} is not set here; give it a value with --env ${name}=...`,
      );
    out[name] = value;
  }
  for (const name of Object.keys(out))
    if (!ENV_NAME.test(name))
      throw new PError("invalid_argument", `${JSON.stringify(name)} in an env file is not a variable name`);
  return out;
}

/**
 * `--secret KEY`: each name's value here, for the job's environment by a way no argv, file
 * or record shows (only the names are kept).
 */
export function secretsOf(names: readonly string[], local: Record<string, string | undefined>) {
  const out: Record<string, string> = {};
  for (const name of names) {
    if (!ENV_NAME.test(name))
      throw new PError("invalid_argument", `--secret ${JSON.stringify(name)} is not a variable name`);
    const value = local[name];
    if (value === undefined)
      throw new PError("invalid_argument", `--secret ${name}: ${name} is not set here; export it first`);
    out[name] = value;
  }
  return out;
}

/** userEnv of parsed --env and --env-file flags, against this process's environment. */
export const userEnvOf = (values: Record<string, unknown>) =>
  userEnv(
    { env: values.env as string[] | undefined, envFiles: values["env-file"] as string[] | undefined },
    process.env,
  );
