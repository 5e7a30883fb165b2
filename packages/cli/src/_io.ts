import type { FollowResult, OutputSink } from "@p/exec";
import { pc } from "./_color.ts";

/** The job's output goes to our stdout as it comes; what was last written is remembered. */
export function stdoutSink(): OutputSink & { lastByte: number } {
  const sink = {
    lastByte: 10,
    write(chunk: Uint8Array) {
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

/** An abort signal raised by Ctrl+C (SIGINT) until `dispose` is called. */
export function interruptSignal(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onInt = () => controller.abort();
  process.on("SIGINT", onInt);
  return { signal: controller.signal, dispose: () => process.off("SIGINT", onInt) };
}

/** The one line a user sees while a lost connection is retried. */
export const sayReconnecting = (why: string, id: string) =>
  process.stderr.write(`${pc.dim(`${why}; reconnecting (job ${id.slice(0, 8)} keeps running; Ctrl+C detaches)…`)}\n`);
