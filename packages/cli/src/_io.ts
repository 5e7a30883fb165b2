import { fstatSync } from "node:fs";
import type { FollowResult, OutputSink } from "@p/exec";
import { pc } from "./_color.ts";
import { EXIT } from "./_errors.ts";
import { log } from "./_log.ts";
import { OUTPUT_UNSEEN } from "./lib/follow.ts";

/** Why stdout takes no more of what p writes (its reader went away: EPIPE), once it does not. */
let outputLost: NodeJS.ErrnoException | undefined;
/** The follows under way, by their Ctrl+C signals: a lost stdout detaches them too. */
const follows = new Set<AbortController>();

/** The exit code once stdout is lost (141 for a reader gone, as SIGPIPE gives), else undefined. */
export const lostOutputCode = (): number | undefined =>
  outputLost && (outputLost.code === "EPIPE" ? EXIT.outputClosed : EXIT.failure);

/**
 * What p does when stdout's reader goes away (`p -- make test | head`): as a command
 * killed by SIGPIPE, it ends at once and says nothing; a follow under way is detached
 * first, as Ctrl+C detaches it (the job keeps running, and p says so). Another failure to
 * write (a full disk) is said in one line. A reader of stderr that goes is no reason to stop.
 */
function onLostOutput(err: NodeJS.ErrnoException): void {
  if (outputLost) return;
  outputLost = err;
  if (err.code !== "EPIPE") log.error(`cannot write the output: ${err.message}`);
  if (follows.size === 0) process.exit(lostOutputCode());
  for (const follow of follows) follow.abort(OUTPUT_UNSEEN);
  // (a stream paused for a drain that will never come resumes, into nothing, and can end)
  process.stdout.emit("drain");
}

let watching = false;
/** Watch stdout and stderr for a reader gone (see onLostOutput); once per process. */
export function watchOutput(): void {
  if (watching) return;
  watching = true;
  process.stdout.on("error", onLostOutput);
  process.stderr.on("error", () => {});
}

/**
 * The last words of a follow that detached, on stderr, and its exit code: after Ctrl+C,
 * 130; after stdout was lost, what lostOutputCode says. `what` says what keeps running.
 */
export function endDetached(what: string, resume: string): number {
  const lost = lostOutputCode();
  const first = lost === undefined ? "Detached" : "Output closed";
  process.stderr.write(
    `${lost === undefined ? "\n" : ""}${pc.dim(`${first}; ${what}. Follow it again with: ${resume}`)}\n`,
  );
  return lost ?? EXIT.interrupted;
}

/**
 * What a followed job reads on its stdin: p's own, where it is a pipe, a file or a socket
 * (`make | p -- tee log`, `p -- wc -l < data`), as ssh passes it on. Not a terminal's: a
 * job, which outlives p, reads nothing, as any job of p's (nor /dev/null's, nor a closed one).
 */
export function jobInput(): { input?: NodeJS.ReadStream } {
  try {
    const s = fstatSync(0);
    return s.isFIFO() || s.isFile() || s.isSocket() ? { input: process.stdin } : {};
  } catch {
    return {};
  }
}

/** The job's output goes to our stdout as it comes; what was last written is remembered. */
export function stdoutSink(): OutputSink & { lastByte: number } {
  const sink = {
    lastByte: 10,
    write(chunk: Uint8Array) {
      // (nothing waits for a drain that a lost stdout never gives)
      if (outputLost) return true;
      if (chunk.length) sink.lastByte = chunk[chunk.length - 1]!;
      return process.stdout.write(chunk);
    },
    once(event: "drain", listener: () => void) {
      return process.stdout.once(event, listener);
    },
  };
  return sink;
}

/**
 * After a followed job's output: keep what follows on the terminal off the end of an
 * unfinished last line, and pass on what the worker said on stderr.
 */
export function endOfOutput(sink: { lastByte: number }, status: FollowResult): void {
  if (sink.lastByte !== 10 && process.stdout.isTTY && process.stderr.isTTY) process.stderr.write("\n");
  for (const line of status.diagnostics) process.stderr.write(`${line}\n`);
}

/** An abort signal raised by Ctrl+C (SIGINT), or by stdout lost, until `dispose` is called. */
export function interruptSignal(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onInt = () => controller.abort();
  process.on("SIGINT", onInt);
  follows.add(controller);
  if (outputLost) controller.abort(OUTPUT_UNSEEN);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off("SIGINT", onInt);
      follows.delete(controller);
    },
  };
}

/** The one line a user sees while a lost connection is retried. */
export const sayReconnecting = (why: string, id: string) =>
  process.stderr.write(`${pc.dim(`${why}; reconnecting (job ${id.slice(0, 8)} keeps running; Ctrl+C detaches)…`)}\n`);
