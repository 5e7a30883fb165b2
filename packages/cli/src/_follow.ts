import { followScript, parseStatusLine, remoteSh, STATUS_MARK, type Connection, type FollowStatus } from "@p/exec";

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
export function streamStatus(conn: Connection, command: string, id: string): Promise<FollowStatus & { bytes: number }> {
  return conn.exec(command).then(
    (ch) =>
      new Promise((resolve, reject) => {
        let bytes = 0;
        let lastByte = 10;
        let status: FollowStatus | undefined;
        let errText = "";
        let exited = false;
        const failures: string[] = [];
        ch.on("exit", () => (exited = true));
        ch.on("data", (d: Buffer) => {
          bytes += d.length;
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
            else failures.push(line);
          }
        });
        ch.on("close", () => {
          if (status) {
            // keep a status line that follows on the terminal off the end of unfinished output
            if (lastByte !== 10 && process.stdout.isTTY && process.stderr.isTTY) process.stderr.write("\n");
            for (const line of failures) process.stderr.write(`${line}\n`);
            resolve({ ...status, bytes });
          }
          else if (exited) reject(new FollowError("remote_failed", failures.concat(errText).join("; ").trim() || "the worker's shell failed"));
          else
            reject(
              new FollowError(
                "connection_lost",
                `lost the connection while following job ${id.slice(0, 8)}; it keeps running on the worker. Resume with: p logs -f ${id.slice(0, 8)}`,
              ),
            );
        });
      }),
  );
}

/** Follow a job's log from byte `offset` to its end. */
export function followJob(conn: Connection, id: string, offset = 0) {
  return streamStatus(conn, remoteSh(followScript(id, offset)), id);
}
