import { PError, STALE_MARK } from "@p/exec/protocol";
import type { SyncPlan } from "./plan.ts";

/** rsync's own words for its exit codes (rsync(1), EXIT VALUES), for when it printed none. */
const RSYNC_EXIT: Record<number, string> = {
  1: "rsync syntax or usage error",
  2: "rsync protocol incompatibility between here and the worker",
  3: "the destination could not be selected (is it writable?)",
  5: "rsync could not start the client-server protocol",
  10: "rsync socket I/O error",
  11: "file I/O error on the worker: is its disk full, or the destination not writable?",
  12: "rsync protocol data stream error: did the worker run out of disk or memory?",
  30: "rsync timed out",
  35: "rsync timed out waiting for the worker",
};

/** rsync's exit codes, as sentences. */
function explain(code: number, stderr: string): string {
  const last = stderr
    .trim()
    .split("\n")
    .filter((l) => !/^rsync error:/.test(l))
    .slice(-2)
    .join("; ");
  if (code === 127 || /rsync: (command )?not found/.test(stderr))
    return "rsync is not installed on the worker; install it there (e.g. apt-get install rsync)";
  if (code === 255) return `ssh failed: ${last || "connection closed"}`;
  if (code === 23 || code === 24) return `some files could not be sent: ${last}`;
  return last || RSYNC_EXIT[code] || `rsync exited with ${code}`;
}

export interface RunSyncOptions {
  signal?: AbortSignal;
  /** Receives rsync's stdout (the file list under `--dry-run`). */
  onOutput?: (chunk: Uint8Array) => void;
  /** Told how the transfer goes, from rsync's own progress (--info=progress2), as it goes. */
  onProgress?: (p: SyncProgress) => void;
  /** Called once rsync has started. */
  onStart?: () => void;
  /**
   * Socket pairs to give rsync as its fds 3 and up, and what to do with this side's ends
   * once it runs (a remote shell that rides a connection p holds: see @p/exec's relay).
   * What `use` gives is the remote command's exit status, for a remote shell that does
   * not wait for it (undefined: none known); the sync's status is then the greater of it
   * and rsync's own, as rsync itself takes its remote shell's.
   */
  sockets?: { count: number; use(fds: number[]): Promise<number | undefined> };
}

/** How far a sync is, as rsync's --info=progress2 says it. */
export interface SyncProgress {
  /** Bytes of file data sent so far. */
  bytes: number;
  /** Files checked so far, of `total` known so far (rsync learns the total as it scans). */
  checked: number;
  total: number;
  /** Files sent. */
  sent: number;
  /** rsync's rate and time left, as it prints them ("12.34MB/s", "0:00:03"). */
  rate: string;
  eta: string;
}

/**
 * One progress2 update: `  1,234,567  45%  12.34MB/s    0:00:03 (xfr#12, to-chk=100/6000)`
 * (ir-chk while rsync still scans); undefined if `line` is not one.
 */
export function parseProgress(line: string): SyncProgress | undefined {
  const m = /^\s*([\d,]+)\s+\d+%\s+(\S+)\s+(\d+:\d+:\d+)(?:\s+\(xfr#(\d+), (?:to|ir)-chk=(\d+)\/(\d+)\))?\s*$/.exec(
    line,
  );
  if (!m) return undefined;
  const total = m[6] === undefined ? 0 : Number(m[6]);
  return {
    bytes: Number(m[1]!.replaceAll(",", "")),
    checked: m[5] === undefined ? 0 : total - Number(m[5]),
    total,
    sent: m[4] === undefined ? 0 : Number(m[4]),
    rate: m[2]!,
    eta: m[3]!,
  };
}

/** Run a planned sync; throws PError with rsync's reason in words. Resolves to rsync's stderr (the worker's words). */
export async function runSync(plan: SyncPlan, opts: RunSyncOptions = {}): Promise<string> {
  let proc: Bun.Subprocess<"pipe" | "ignore", "pipe", "pipe">;
  try {
    // (progress2 prints on stdout, lines ended by \r as they are rewritten)
    const argv = opts.onProgress ? [plan.argv[0]!, "--info=progress2", ...plan.argv.slice(1)] : plan.argv;
    const stdin = plan.stdin !== undefined ? "pipe" : "ignore";
    const sockets = Array.from({ length: opts.sockets?.count ?? 0 }, () => "socket-fd" as const);
    proc = Bun.spawn(argv, { stdio: [stdin, "pipe", "pipe", ...sockets] }) as typeof proc;
  } catch {
    throw new PError(
      "rsync_missing",
      "rsync is not installed on this machine; install it (e.g. apt-get install rsync)",
    );
  }
  const relayed = opts.sockets?.use(proc.stdio.slice(3) as number[]);
  opts.onStart?.();
  const onAbort = () => proc.kill("SIGTERM");
  opts.signal?.addEventListener("abort", onAbort);
  if (plan.stdin !== undefined && proc.stdin) {
    proc.stdin.write(plan.stdin);
    proc.stdin.end();
  }
  const drain = (async () => {
    let pending = "";
    for await (const chunk of proc.stdout) {
      opts.onOutput?.(chunk);
      if (!opts.onProgress) continue;
      pending += Buffer.from(chunk).toString();
      const parts = pending.split(/[\r\n]/);
      pending = parts.pop()!;
      for (const part of parts) {
        const progress = parseProgress(part);
        if (progress) opts.onProgress(progress);
      }
    }
  })();
  const [stderr, rsyncCode, remoteCode] = await Promise.all([
    new Response(proc.stderr).text(),
    proc.exited,
    relayed,
    drain,
  ]);
  const code = Math.max(rsyncCode, remoteCode ?? 0);
  opts.signal?.removeEventListener("abort", onAbort);
  // 20: rsync got SIGINT (Ctrl+C reaches the whole foreground process group)
  if (opts.signal?.aborted || code === 20) throw new PError("sync_cancelled", "sync cancelled");
  if (code !== 0 && stderr.includes(STALE_MARK))
    throw new PError("sync_stale", "the worker's mirror is not what the last sync left there");
  if (code !== 0) throw new PError(code === 255 ? "worker_unreachable" : "sync_failed", explain(code, stderr));
  return stderr;
}
