import { parseArgs } from "node:util";
import type { ArgsDef } from "citty";
import { usage } from "./_errors.ts";

type Parsed = { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] };

/** node:util's parseArgs message, in p's words. */
const nodeMessage = (err: Error) =>
  err.message.replace(/\. To specify.*$/s, "").replace(/^Unknown option/, "unknown option");

/**
 * Parse argv strictly against a citty args definition: citty itself accepts unknown flags
 * and fills positionals from after `--`, which would turn typos into silent surprises.
 */
export function strictArgs(
  def: ArgsDef,
  argv: readonly string[],
  command: string,
  /** Options that may be given more than once: their values come as a list. */
  repeatable: readonly string[] = [],
): Parsed {
  const options: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> = {};
  for (const [name, a] of Object.entries(def)) {
    if (a.type === "positional") continue;
    const alias = ["alias" in a ? (a.alias ?? []) : []].flat().find((x) => x.length === 1);
    options[name] = {
      type: a.type === "boolean" ? "boolean" : "string",
      ...(alias && { short: alias }),
      ...(repeatable.includes(name) && { multiple: true }),
    };
  }
  // accepted everywhere: stacks on errors, and colour control
  options.verbose = { type: "boolean", short: "v" };
  options.color = { type: "boolean" };
  options["no-color"] = { type: "boolean" };
  try {
    const { values, positionals } = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
    return { values: values as Parsed["values"], positionals };
  } catch (err) {
    throw usage(`${nodeMessage(err as Error)}; see p ${command} --help`);
  }
}

export const jsonArg = {
  json: { type: "boolean", description: "Print JSON on stdout" },
} as const satisfies ArgsDef;

/**
 * Split argv at the first `--`: the options before it, and the command after it (its
 * words kept as they are). A command that is missing or blank is refused.
 */
export function splitCommand(rawArgs: readonly string[], usageLine: string): { options: string[]; argv: string[] } {
  const dash = rawArgs.indexOf("--");
  const argv = dash >= 0 ? rawArgs.slice(dash + 1) : [];
  if (argv.every((a) => a.trim() === "")) throw usage(`no command given; usage: ${usageLine}`);
  return { options: dash >= 0 ? rawArgs.slice(0, dash) : [...rawArgs], argv };
}
