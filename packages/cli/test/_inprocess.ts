import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Run a CLI entry point in this process, as its binary would run it, with a private config
 * and job store, and capture what it prints. No sshd, no root.
 */
export async function inProcess(main: (argv: string[]) => Promise<number>, argv: string[]): Promise<Outcome> {
  let stdout = "";
  let stderr = "";
  const out = process.stdout.write;
  const err = process.stderr.write;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    stdout += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString();
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString();
    return true;
  }) as typeof process.stderr.write;
  try {
    const code = await main(argv);
    return { code, stdout, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

/** Point p at an empty config and job store of its own; returns the undo. */
export function privateHome(): { dir: string; restore: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "p-cli-"));
  const saved = { config: process.env.XDG_CONFIG_HOME, data: process.env.XDG_DATA_HOME, color: process.env.NO_COLOR };
  process.env.XDG_CONFIG_HOME = join(dir, "config");
  process.env.XDG_DATA_HOME = join(dir, "data");
  process.env.NO_COLOR = "1";
  return {
    dir,
    restore() {
      for (const [k, v] of [
        ["XDG_CONFIG_HOME", saved.config],
        ["XDG_DATA_HOME", saved.data],
        ["NO_COLOR", saved.color],
      ] as const)
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
