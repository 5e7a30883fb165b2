import type { CommandDef } from "citty";

// each command has its own args type; the router only needs "some command"
// biome-ignore lint/suspicious/noExplicitAny: see above
type AnyCommand = CommandDef<any>;
type Loader = () => Promise<AnyCommand>;
const load = (p: Promise<{ default: AnyCommand }>) => p.then((m) => m.default);

/** Every subcommand of `p`, loaded only when used. Running a job (`p -- cmd`) is routed apart. */
export const commands: Record<string, Loader> = {
  ls: () => load(import("./ls.ts")),
  logs: () => load(import("./logs.ts")),
  stop: () => load(import("./stop.ts")),
  pull: () => load(import("./pull.ts")),
  rm: () => load(import("./rm.ts")),
  prune: () => load(import("./prune.ts")),
  wait: () => load(import("./wait.ts")),
  rerun: () => load(import("./rerun.ts")),
  worker: () => load(import("./worker/index.ts")),
  ui: () => load(import("./ui.ts")),
  completion: () => load(import("./completion.ts")),
};

export const runCommandDef: Loader = () => load(import("./run.ts"));
