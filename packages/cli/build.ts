// Compiles the three binaries into dist/. The compiled binaries must not pick up a user's
// .env or bunfig.toml from the directory they run in.
import { join } from "node:path";

const root = join(import.meta.dir, "..", "..");
const bins = ["p", "p-sync", "p-exec"];
for (const name of bins) {
  const r = Bun.spawnSync(
    [
      process.execPath,
      "build",
      "--compile",
      "--minify",
      "--no-compile-autoload-dotenv",
      "--no-compile-autoload-bunfig",
      join(import.meta.dir, "src", "bin", `${name}.ts`),
      "--outfile",
      join(root, "dist", name),
    ],
    { stdout: "inherit", stderr: "inherit" },
  );
  if (r.exitCode !== 0) process.exit(r.exitCode ?? 1);
}
