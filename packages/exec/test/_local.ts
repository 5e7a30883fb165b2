import { afterAll } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * The worker-side scripts run for real by the local sh, with HOME a scratch dir of the
 * test file's own (removed after it): a worker without SSH.
 */
export function localWorker(prefix: string, idSpace = "8000") {
  const home = mkdtempSync(join(tmpdir(), `p-${prefix}-`));
  afterAll(() => rmSync(home, { recursive: true, force: true }));
  const env = { HOME: home, SHELL: "/bin/sh", PATH: process.env.PATH! };
  let n = 0;
  const newId = () => `00000000-0000-4000-${idSpace}-${String(++n).padStart(12, "0")}`;

  /**
   * Run a script with stdin held open, as an SSH channel holds it, unless `closeStdin`;
   * `input` is written to it first.
   */
  async function sh(script: string, closeStdin = false, input = "") {
    const p = Bun.spawn(["sh", "-c", script], { env, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
    if (input) p.stdin.write(input);
    p.stdin.flush();
    if (closeStdin) p.stdin.end();
    const [out, err, code] = await Promise.all([
      new Response(p.stdout).text(),
      new Response(p.stderr).text(),
      p.exited,
    ]);
    if (!closeStdin) p.stdin.end();
    return { out, err, code };
  }
  return { home, env, newId, sh };
}

/**
 * A job's pid, once it has written it (whole: written, then renamed); NaN if it has not
 * within 2 s.
 */
export function jobPid(jobDir: string): number {
  for (let i = 0; i < 100; i++) {
    let text = "";
    try {
      text = readFileSync(join(jobDir, "pid"), "utf8");
    } catch {}
    if (text.endsWith("\n")) return Number.parseInt(text, 10);
    Bun.sleepSync(20);
  }
  return Number.NaN;
}
