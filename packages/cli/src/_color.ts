import picocolors from "picocolors";

/**
 * Colour only for a terminal: NO_COLOR and --no-color turn it off, FORCE_COLOR and --color
 * on. (picocolors alone also colours whenever CI is set, even into a pipe.)
 */
export function useColor(env = process.env, argv = process.argv, tty = Boolean(process.stderr.isTTY)): boolean {
  if (env.NO_COLOR || argv.includes("--no-color")) return false;
  if (env.FORCE_COLOR || argv.includes("--color")) return true;
  return tty && env.TERM !== "dumb";
}

export const pc = picocolors.createColors(useColor());
