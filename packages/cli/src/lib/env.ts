import type { Config } from "@p/store";

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

/** A job's variables and terminal, from the config, the -t flag and the client's own. */
export function jobSurroundings(
  config: Pick<Config, "forward_env" | "tty">,
  tty: boolean,
  out: Terminal = process.stdout,
  env: Record<string, string | undefined> = process.env,
) {
  const terminal = jobTerminal(tty, config, out, env);
  const vars = forwardedEnv(config, env);
  // a terminal needs a type for tput and curses; the client may have none (a pipe, CI)
  if (terminal && !vars.TERM) vars.TERM = "xterm-256color";
  return { env: vars, ...(terminal && { tty: terminal }) };
}
