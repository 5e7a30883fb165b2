import { homedir } from "node:os";
import { join } from "node:path";

type Env = Record<string, string | undefined>;

/** `<$VAR>/p`, or `<home>/<fallback>/p` where VAR is unset or relative (ignored, as the spec says). */
function xdgDir(env: Env, variable: string, fallback: string[]): string {
  const xdg = env[variable];
  return join(xdg?.startsWith("/") ? xdg : join(env.HOME || homedir(), ...fallback), "p");
}

/** `$XDG_CONFIG_HOME/p` (default `~/.config/p`). */
export const configDir = (env: Env = process.env): string => xdgDir(env, "XDG_CONFIG_HOME", [".config"]);

/** `$XDG_DATA_HOME/p` (default `~/.local/share/p`). */
export const dataDir = (env: Env = process.env): string => xdgDir(env, "XDG_DATA_HOME", [".local", "share"]);

/** `$XDG_CACHE_HOME/p` (default `~/.cache/p`): what may go at any time, only making p slower. */
export const cacheDir = (env: Env = process.env): string => xdgDir(env, "XDG_CACHE_HOME", [".cache"]);
