import { type CommandDef, runCommand, showUsage } from "citty";
import { EXIT, report, usage } from "./_errors.ts";
import { lostOutputCode, watchOutput } from "./_io.ts";

// biome-ignore lint/suspicious/noExplicitAny: commands differ in their args
type AnyCommand = CommandDef<any>;

async function resolveSub(cmd: AnyCommand, name: string): Promise<AnyCommand | undefined> {
  const subs = typeof cmd.subCommands === "function" ? await cmd.subCommands() : await cmd.subCommands;
  const sub = subs?.[name];
  return sub ? (typeof sub === "function" ? await sub() : sub) : undefined;
}

export interface CliOptions {
  version: string;
  /** Runs when argv names no subcommand but holds `--` (`p [worker] -- cmd`). */
  dashCommand?: () => Promise<AnyCommand>;
  /** The one-line usage shown for argv that names nothing. */
  usage: string;
  /** The error for a first word that is no command. */
  unknownCommand?: (argv: string[]) => string;
}

/**
 * The executables start with the JIT reluctant to compile (see build.ts): most of a run's
 * code runs once or a few times. A run still going after this long (following a job,
 * serving the dashboard) is long-lived, and gets the normal policy back.
 */
const SHORT_RUN_MS = 1000;

/**
 * Route argv to a command and turn every outcome into an exit code. Routing happens here,
 * not in citty: `p <worker> -- cmd` (a default positional) cannot live beside `p ls` in
 * citty's router. Errors print as one line, or as JSON under --json; stacks only --verbose.
 */
export async function runCli(root: AnyCommand, argv: string[], opts: CliOptions): Promise<number> {
  watchOutput();
  const code = await route(root, argv, opts);
  return lostOutputCode() ?? code;
}

async function route(root: AnyCommand, argv: string[], opts: CliOptions): Promise<number> {
  const dash = argv.indexOf("--");
  const before = dash >= 0 ? argv.slice(0, dash) : argv;
  const json = before.includes("--json");
  setTimeout(() => Bun.unsafe.setJITPolicy?.(1), SHORT_RUN_MS).unref();
  try {
    const wantsHelp = before.includes("--help") || before.includes("-h");
    if (argv[0] === "--version" || argv[0] === "-V") {
      process.stdout.write(`${opts.version}\n`);
      return 0;
    }
    if (!root.subCommands) {
      // a tool with one command (p-sync): argv is all its own
      if (wantsHelp) {
        await showUsage(root);
        return 0;
      }
      const { result } = await runCommand(root, { rawArgs: argv });
      return typeof result === "number" ? result : 0;
    }
    let cmd = argv[0] && !argv[0].startsWith("-") ? await resolveSub(root, argv[0]) : undefined;
    if (cmd) {
      let parent = root;
      let rest = argv.slice(1);
      for (let sub: AnyCommand | undefined; rest[0] && (sub = await resolveSub(cmd, rest[0])); rest = rest.slice(1)) {
        parent = cmd;
        cmd = sub;
      }
      if (wantsHelp || (cmd.subCommands && !cmd.run)) {
        await showUsage(cmd, parent);
        return wantsHelp ? 0 : EXIT.usage;
      }
      const { result } = await runCommand(cmd, { rawArgs: rest });
      return typeof result === "number" ? result : 0;
    }
    if (dash >= 0 && !wantsHelp && opts.dashCommand) {
      const { result } = await runCommand(await opts.dashCommand(), { rawArgs: argv });
      return typeof result === "number" ? result : 0;
    }
    if (argv.length === 0 || wantsHelp) {
      await showUsage(root);
      return wantsHelp ? 0 : EXIT.usage;
    }
    if (argv[0]!.startsWith("-")) throw usage(`unknown option ${argv[0]}; usage: ${opts.usage}`);
    throw usage(opts.unknownCommand?.(argv) ?? `unknown command ${argv[0]}; usage: ${opts.usage}`);
  } catch (err) {
    return report(err, { json, verbose: argv.includes("--verbose") || argv.includes("-v") });
  }
}
