import { defineCommand } from "citty";
import pkg from "../package.json" with { type: "json" };
import { runCli } from "./_cli.ts";

const load = (p: Promise<{ default: unknown }>) => p.then((m) => m.default as ReturnType<typeof defineCommand>);

const root = defineCommand({
  meta: {
    name: "p-exec",
    version: pkg.version,
    description:
      "Run a command on a worker or ssh target, detached and logged as p runs jobs. " +
      "Example: p-exec run beefy --dir src/app -- make",
  },
  subCommands: {
    run: () => load(import("./commands/exec/run.ts")),
    logs: () => load(import("./commands/exec/logs.ts")),
    stop: () => load(import("./commands/exec/stop.ts")),
    status: () => load(import("./commands/exec/status.ts")),
  },
});

export function main(argv: string[]): Promise<number> {
  return runCli(root, argv, { version: pkg.version, usage: "p-exec <run|logs|stop|status> <worker|ssh-target> ..." });
}
