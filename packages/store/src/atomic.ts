import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { dirname } from "node:path";

/** A name of its own beside `path` (whose directory is made, private), to write first. */
function tmpBeside(path: string): string {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  return `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
}

/** A write that failed leaves nothing behind. */
function dropped(tmp: string, err: unknown): never {
  rmSync(tmp, { force: true });
  throw err;
}

/** Write a private file so that readers see the old or the new content, never a part. */
export function writeFileAtomic(path: string, data: string): void {
  const tmp = tmpBeside(path);
  try {
    writeFileSync(tmp, data, { mode: 0o600 });
    renameSync(tmp, path);
  } catch (err) {
    dropped(tmp, err);
  }
}

/** writeFileAtomic, written apart from the main thread (for files of megabytes). */
export async function writeFileAtomicAsync(path: string, data: string): Promise<void> {
  const tmp = tmpBeside(path);
  try {
    await writeFile(tmp, data, { mode: 0o600 });
    renameSync(tmp, path);
  } catch (err) {
    dropped(tmp, err);
  }
}
