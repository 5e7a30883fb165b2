import { assertJobId } from "@p/exec";
import type { ArgsDef } from "citty";
import { strictArgs } from "../../_args.ts";
import { usage } from "../../_errors.ts";
import { workerOrTarget } from "../../lib/workers.ts";

export const targetAndId = {
  target: { type: "positional", required: false, description: "A worker name, or any ssh target" },
  id: { type: "positional", required: false, description: "The job's full id, as p-exec run printed it" },
} as const satisfies ArgsDef;

/** p-exec keeps no records: a job is named by its target and full id. */
export function parseJobArgs(def: ArgsDef, rawArgs: string[], command: string) {
  const { values, positionals } = strictArgs(def, rawArgs, command);
  if (positionals.length < 2) throw usage(`usage: ${command} <worker|ssh-target> <job-id>...`);
  const [target, ...ids] = positionals as [string, ...string[]];
  return { values, worker: workerOrTarget(target), target, ids: ids.map(assertJobId) };
}
