import { defineCommand } from "citty";
import pkg from "../package.json" with { type: "json" };
import { runCli } from "./_cli.ts";
import { commands, runCommandDef } from "./commands/index.ts";

const root = defineCommand({
  meta: {
    name: "p",
    version: pkg.version,
    description:
      "Run a command on a worker as if it ran here: p [worker] [-n] [-d] [-t] -- <command>. Example: p -- make test",
  },
  args: {
    worker: { type: "positional", required: false, description: "Worker to run on (default: the default worker)" },
    "no-sync": { type: "boolean", alias: "n", description: "Do not sync the current directory first" },
    detach: { type: "boolean", alias: "d", description: "Start the job, print its id and return" },
    tty: { type: "boolean", alias: "t", description: "Run the job under a pseudo-terminal sized like this one" },
    timeout: { type: "string", description: "End the job after this long (90s, 30m, 2h); exit 124" },
    env: { type: "string", description: "KEY=VALUE, or KEY for its value here, in the job's environment (repeatable)" },
    "env-file": { type: "string", description: "A dotenv file of variables for the job (repeatable)" },
    on: { type: "string", description: "Run on each of these workers at once (a,b,c or all), as one group" },
    any: { type: "boolean", description: "Run on the worker with the most free capacity" },
    each: { type: "string", description: "KEY=v1,v2: one job per value, as one group (repeatable: every combination)" },
  },
  subCommands: commands,
});

export function main(argv: string[]): Promise<number> {
  return runCli(root, argv, {
    version: pkg.version,
    usage: "p [worker] [-n] [-d] [-t] -- <command> (p --help for the rest)",
    dashCommand: runCommandDef,
    // `p make` is almost always a forgotten `--`
    unknownCommand: (argv) => `unknown command ${argv[0]}; to run it on a worker: p -- ${argv.join(" ")}`,
  });
}
