// Compiles the three binaries into dist/. The compiled binaries must not pick up a user's
// .env or bunfig.toml from the directory they run in. They carry their code as bytecode:
// parsing it at every start cost more than half of `p --version` (75 ms against 45 ms).
// They start with JavaScriptCore's tier-up thresholds scaled up: a run of p is mostly code
// that runs once, which the JIT compiled on other threads for nothing. Measured over 20
// runs each, `p ls` took 29 ms of CPU against 44, and `p <worker> -n -- true` 50 against
// 66; the 100k-file sync and streaming 100 MB took as long as before. A run that lasts
// gets the normal policy back (see _cli.ts).
import { join } from "node:path";

const JIT_POLICY = 20;

const root = join(import.meta.dir, "..", "..");
const bins = ["p", "p-sync", "p-exec"];
for (const name of bins) {
  const r = Bun.spawnSync(
    [
      process.execPath,
      "build",
      "--compile",
      "--minify",
      "--bytecode",
      "--format=esm",
      "--no-compile-autoload-dotenv",
      "--no-compile-autoload-bunfig",
      `--compile-jit-policy=${JIT_POLICY}`,
      join(import.meta.dir, "src", "bin", `${name}.ts`),
      "--outfile",
      join(root, "dist", name),
    ],
    { stdout: "inherit", stderr: "inherit" },
  );
  if (r.exitCode !== 0) process.exit(r.exitCode ?? 1);
}
