import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";

// The formatter keeps code within 120 columns but cannot break a long string: this can.
test("no source line is longer than 120 characters", () => {
  const root = join(import.meta.dir, "..");
  const files = Bun.spawnSync(["git", "ls-files", "packages/*/src/**", "scripts/*"], { cwd: root })
    .stdout.toString()
    .split("\n")
    .filter((f) => /\.(ts|sh)$/.test(f));
  expect(files.length).toBeGreaterThan(20);
  const long = files.flatMap((f) =>
    readFileSync(join(root, f), "utf8")
      .split("\n")
      .flatMap((line, i) => (line.length > 120 ? [`${f}:${i + 1}: ${line.length}`] : [])),
  );
  expect(long).toEqual([]);
});
