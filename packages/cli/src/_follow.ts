import { FOLLOW_MARK, followScript, parseStatusLine, remoteSh, STATUS_MARK, type Connection, type FollowStatus } from "@p/exec";
import type { JobRecord, JobStore } from "@p/store";
import { pc } from "./_color.ts";
import { EXIT } from "./_errors.ts";
import { doneLine } from "./_format.ts";

export class FollowError extends Error {
  constructor(
    readonly code: "connection_lost" | "remote_failed",
    message: string,
  ) {
    super(message);
  }
}

/**
 * Stream a remote script's stdout to ours, with backpressure so a fast job cannot grow our
 * memory, until the follow script's status line arrives. Other stderr lines are
 * passed on, or become the error when the script failed.
 */
export function streamStatus(
  conn: Connection,
  command: string,
  id: string,
  resume: string,
  progress = { bytes: 0 },
): Promise<FollowStatus & { bytes: number }> {
  return conn.exec(command).then(
    ({ channel: ch, ended }) =>
      new Promise((resolve, reject) => {
        let lastByte = 10;
        let status: FollowStatus | undefined;
        let errText = "";
        let found = false;
        const failures: string[] = [];
        ch.on("data", (d: Buffer) => {
          progress.bytes += d.length;
          if (d.length) lastByte = d[d.length - 1]!;
          if (!process.stdout.write(d)) {
            ch.pause();
            process.stdout.once("drain", () => ch.resume());
          }
        });
        ch.stderr.on("data", (d: Buffer) => {
          errText += d.toString();
          let nl;
          while ((nl = errText.indexOf("\n")) >= 0) {
            const line = errText.slice(0, nl);
            errText = errText.slice(nl + 1);
            if (line.startsWith(STATUS_MARK)) status = parseStatusLine(line);
            else if (line === FOLLOW_MARK) found = true;
            else failures.push(line);
          }
        });
        void ended.then((e) => {
          const exited = e.code !== null || e.signal !== undefined;
          if (status) {
            // keep a status line that follows on the terminal off the end of unfinished output
            if (lastByte !== 10 && process.stdout.isTTY && process.stderr.isTTY) process.stderr.write("\n");
            for (const line of failures) process.stderr.write(`${line}\n`);
            resolve({ ...status, bytes: progress.bytes });
          }
          else if (exited) reject(new FollowError("remote_failed", failures.concat(errText).join("; ").trim() || "the worker's shell failed"));
          else if (!found)
            reject(
              new FollowError(
                "connection_lost",
                `lost the connection before job ${id.slice(0, 8)} could be confirmed running; p ls shows what the worker says, and ${resume} follows it`,
              ),
            );
          else
            reject(
              new FollowError(
                "connection_lost",
                `lost the connection while following job ${id.slice(0, 8)}; it keeps running on the worker. Resume with: ${resume}`,
              ),
            );
        });
      }),
  );
}


/** What the job is, where a record of it lives (p has one, p-exec does not), and how to resume. */
export interface Watch {
  id: string;
  worker: string;
  store?: JobStore;
  /** The command that resumes following, for the hints. */
  resume: string;
}

/**
 * Watch a job to its end, as `p -- cmd` and `p logs -f` do: Ctrl+C detaches with a hint,
 * a lost connection says how to resume, and either way the shown byte count is kept so
 * `p logs -f` resumes without losing or repeating a line. Returns the exit code for p.
 */
export async function watchJob(conn: Connection, command: string, w: Watch, offset: number): Promise<number> {
  const short = w.id.slice(0, 8);
  const progress = { bytes: 0 };
  const keepOffset = () => w.store?.update(w.id, { follow_offset: offset + progress.bytes, client_pid: undefined });
  const onInt = () => {
    keepOffset();
    process.stderr.write(`\n${pc.dim(`Detached; job ${short} keeps running on ${w.worker}. Follow it again with: ${w.resume}`)}\n`);
    conn.close();
    process.exit(EXIT.interrupted);
  };
  process.on("SIGINT", onInt);
  try {
    let s = await streamStatus(conn, command, w.id, w.resume, progress);
    // tail may quit before it has sent everything a fast job wrote: fetch the rest
    for (let tries = 0; offset + progress.bytes < s.size && tries < 5; tries++)
      s = await streamStatus(conn, remoteSh(followScript(w.id, offset + progress.bytes, false)), w.id, w.resume, progress);
    // a record another p removed meanwhile (p rm) stays removed
    w.store?.update(w.id, (current) => {
      const ended_at = s.endedAt ?? Math.floor(Date.now() / 1000);
      const next: JobRecord =
        s.exitCode === null
          ? { ...current, status: "unknown", ended_at }
          : { ...current, status: s.stopped ? "stopped" : "done", exit_code: s.exitCode, ended_at };
      delete next.follow_offset;
      delete next.client_pid;
      return next;
    });
    process.stderr.write(`${doneLine(s.exitCode)}\n`);
    return s.exitCode ?? EXIT.failure;
  } catch (err) {
    if ((err as FollowError).code === "connection_lost") keepOffset();
    throw err;
  } finally {
    process.off("SIGINT", onInt);
  }
}
