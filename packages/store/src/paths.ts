import { homedir } from "node:os";
import { join } from "node:path";

type Env = Record<string, string | undefined>;

/** `$XDG_CONFIG_HOME/p` (default `~/.config/p`). A relative XDG value is ignored, as the spec says. */
export function configDir(env: Env = process.env): string {
  const xdg = env.XDG_CONFIG_HOME;
  return join(xdg?.startsWith("/") ? xdg : join(env.HOME || homedir(), ".config"), "p");
}

/** `$XDG_DATA_HOME/p` (default `~/.local/share/p`). */
export function dataDir(env: Env = process.env): string {
  const xdg = env.XDG_DATA_HOME;
  return join(xdg?.startsWith("/") ? xdg : join(env.HOME || homedir(), ".local", "share"), "p");
}

/** `$XDG_CACHE_HOME/p` (default `~/.cache/p`): what may go at any time, only making p slower. */
export function cacheDir(env: Env = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  return join(xdg?.startsWith("/") ? xdg : join(env.HOME || homedir(), ".cache"), "p");
}
