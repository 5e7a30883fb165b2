import { defineCommand, runCommand, showUsage, type CommandDef } from "citty";
import pkg from "../package.json" with { type: "json" };
import { commands, runCommandDef } from "./commands/index.ts";
import { EXIT, report, UsageError } from "./_errors.ts";

const root = defineCommand({
  meta: {
    name: "p",
    version: pkg.version,
    description: "Run a command on a worker as if it ran here: p [worker] [-n] [-d] -- <command>",
  },
  subCommands: Object.fromEntries(Object.entries(commands).map(([k, v]) => [k, v])),
});

async function resolveSub(cmd: CommandDef, name: string): Promise<CommandDef | undefined> {
  const subs = typeof cmd.subCommands === "function" ? await cmd.subCommands() : await cmd.subCommands;
  const sub = subs?.[name];
  return sub ? (typeof sub === "function" ? await sub() : sub) : undefined;
}

/**
 * `p <worker> -- cmd` and `p ls` cannot share citty's router (a default positional next to
 * subcommands), so route here: a known subcommand goes to citty, anything with `--` runs a job.
 */
export async function main(argv: string[]): Promise<number> {
  try {
    const dash = argv.indexOf("--");
    const before = dash >= 0 ? argv.slice(0, dash) : argv;
    const wantsHelp = before.includes("--help") || before.includes("-h");
    if (argv[0] === "--version" || argv[0] === "-V") {
      process.stdout.write(`${pkg.version}\n`);
      return 0;
    }
    let cmd: CommandDef | undefined = argv[0] && !argv[0].startsWith("-") ? await resolveSub(root, argv[0]) : undefined;
    if (cmd) {
      const parents: CommandDef[] = [root];
      let rest = argv.slice(1);
      for (let sub; rest[0] && (sub = await resolveSub(cmd, rest[0])); rest = rest.slice(1)) {
        parents.push(cmd);
        cmd = sub;
      }
      if (wantsHelp || (cmd.subCommands && !cmd.run)) {
        await showUsage(cmd, parents.at(-1));
        return wantsHelp ? 0 : EXIT.usage;
      }
      const { result } = await runCommand(cmd, { rawArgs: rest });
      return typeof result === "number" ? result : 0;
    }
    if (dash >= 0 && !wantsHelp) {
      const { result } = await runCommand(await runCommandDef(), { rawArgs: argv });
      return result as number;
    }
    if (argv.length === 0 || wantsHelp) {
      await showUsage(root);
      return wantsHelp ? 0 : EXIT.usage;
    }
    throw new UsageError(
      argv[0]!.startsWith("-")
        ? `missing -- before the command; usage: p [worker] [-n] [-d] -- <command>`
        : `unknown command ${argv[0]}; to run it on a worker: p -- ${argv.join(" ")}`,
    );
  } catch (err) {
    return report(err);
  }
}
