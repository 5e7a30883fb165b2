import { pc } from "../_color.ts";
import { EXIT } from "../_errors.ts";
import { doneLine } from "../_format.ts";
import { endOfOutput } from "../_io.ts";
import type { Followed } from "../lib/follow.ts";

/**
 * How following a job ends for the user, for p, p logs -f and p-exec alike: the done line
 * and the job's exit code, or the detach hint and 130; a start cancelled by Ctrl+C too.
 */
export function endFollow(
  outcome: Followed | { kind: "cancelled" },
  out: { lastByte: number },
  job: { id: string; worker: string; resume: string },
): number {
  if (outcome.kind === "cancelled") {
    process.stderr.write(`${pc.dim("Cancelled; nothing was started.")}\n`);
    return EXIT.interrupted;
  }
  if (outcome.kind === "detached") {
    const short = job.id.slice(0, 8);
    const hint = `Detached; job ${short} keeps running on ${job.worker}. Follow it again with: ${job.resume}`;
    process.stderr.write(`\n${pc.dim(hint)}\n`);
    return EXIT.interrupted;
  }
  endOfOutput(out, outcome.status);
  process.stderr.write(`${doneLine(outcome.status.exitCode, outcome.status.timedOut)}\n`);
  return outcome.status.exitCode ?? EXIT.failure;
}
