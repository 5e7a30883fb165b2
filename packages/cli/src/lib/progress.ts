import type { OutputSink } from "@p/exec";
import type { SyncProgress } from "@p/sync";
import { bytes } from "../_format.ts";
import type { RunWatch } from "./run.ts";

/** The progress line: "syncing: 1,234 of 5,915 files checked, 12 sent, 45.1 MB, 12.3MB/s, 0:00:03 left". */
export function progressText(p: SyncProgress): string {
  const n = (x: number) => x.toLocaleString("en-US");
  const checked = p.total ? `${n(p.checked)} of ${n(p.total)} files checked, ` : "";
  return `syncing: ${checked}${n(p.sent)} sent, ${bytes(p.bytes)}, ${p.rate}, ${p.eta} left`;
}

/** "resolve 12 ms, sync 340 ms (12 files, 45.1 KB sent), launch 80 ms, first output 95 ms" */
export function timingsText(t: {
  resolve?: number;
  sync?: number;
  launch?: number;
  firstByte?: number;
  sent?: SyncProgress;
}): string {
  const ms = (x: number | undefined) => (x === undefined ? "-" : `${Math.round(x)} ms`);
  const files = (n: number) => `${n.toLocaleString("en-US")} file${n === 1 ? "" : "s"}`;
  const sent = t.sent ? ` (${files(t.sent.sent)}, ${bytes(t.sent.bytes)} sent)` : "";
  const rest = `launch ${ms(t.launch)}, first output ${ms(t.firstByte)}`;
  return `timings: resolve ${ms(t.resolve)}, sync ${ms(t.sync)}${sent}, ${rest}`;
}

/**
 * What p shows of a run as it goes, on stderr: on a terminal, while a sync takes longer
 * than `afterMs`, one line that rewrites itself with rsync's progress and disappears when
 * the sync ends; with `timings`, one line of phase timings at the end. Times are from
 * p's start.
 */
export function runWatch(opts: { line: boolean; timings: boolean; afterMs?: number }) {
  const since = () => performance.now();
  const afterMs = opts.afterMs ?? 1000;
  const marks: { resolve?: number; sync?: number; launch?: number; firstByte?: number } = {};
  let last: SyncProgress | undefined;
  let shown = false;
  let syncStart: number | undefined;
  const clear = () => {
    if (shown) process.stderr.write("\r\x1b[K");
    shown = false;
  };
  const watch: RunWatch = {
    progress(p) {
      // rsync learns the total as it goes, and says it only with some updates
      last = { ...p, ...(p.total === 0 && last && { checked: last.checked, total: last.total, sent: last.sent }) };
      if (!opts.line || syncStart === undefined || since() - syncStart < afterMs) return;
      const text = progressText(last);
      const width = process.stderr.columns || 80;
      process.stderr.write(`\r\x1b[K${text.length >= width ? `${text.slice(0, width - 2)}…` : text}`);
      shown = true;
    },
    mark(phase) {
      if (phase === "resolve") {
        marks.resolve = since();
        syncStart = since();
      } else if (phase === "sync") {
        marks.sync = since() - (syncStart ?? since());
        clear();
      } else if (phase === "launch" && marks.launch === undefined) marks.launch = since();
    },
  };
  return {
    watch,
    /** Whether anything is shown: else the run need not be watched at all. */
    watching: opts.line || opts.timings,
    /** The job's output, with the time of its first byte taken. */
    out(sink: OutputSink): OutputSink {
      return {
        write(chunk) {
          if (marks.firstByte === undefined && chunk.length) marks.firstByte = since();
          return sink.write(chunk);
        },
        once: (event, listener) => sink.once(event, listener),
      };
    },
    /** At the end: the timings line, if asked for (behind `prefix`: a group's job's label). */
    finish(prefix = "") {
      clear();
      if (!opts.timings) return;
      // launch: from the end of the sync (or of the resolve) to the job found running
      const ready = (marks.resolve ?? 0) + (marks.sync ?? 0);
      process.stderr.write(
        `${prefix}${timingsText({
          ...(marks.resolve !== undefined && { resolve: marks.resolve }),
          ...(marks.sync !== undefined && { sync: marks.sync }),
          ...(marks.launch !== undefined && { launch: marks.launch - ready }),
          ...(marks.firstByte !== undefined && { firstByte: marks.firstByte }),
          ...(last && { sent: last }),
        })}\n`,
      );
    },
  };
}
