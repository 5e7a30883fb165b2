import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { PError, parseConnection, shJoin } from "@p/exec";
import { explainPath, listSynced, runSync, worktreeOverlay } from "@p/sync";
import { defineCommand } from "citty";
import pkg from "../package.json" with { type: "json" };
import { jsonArg, strictArgs } from "./_args.ts";
import { runCli } from "./_cli.ts";
import { usage } from "./_errors.ts";
import { bytes } from "./_format.ts";
import { planSyncTo, remotePath } from "./lib/sync.ts";
import { workerOrTarget } from "./lib/workers.ts";

const args = {
  dir: { type: "positional", required: false, description: "Local directory to send" },
  target: {
    type: "positional",
    required: false,
    description: "A worker name, or any ssh target: user@host, user@host:port, an alias",
  },
  dest: {
    type: "positional",
    required: false,
    description: "Directory on the target (relative to its home unless absolute)",
  },
  "dry-run": {
    type: "boolean",
    description: "Print the rsync command and the files and size it would send; send nothing",
  },
  explain: { type: "string", description: "Say whether a path (relative to dir) is synced, and which rule decides" },
  ...jsonArg,
} as const;

function sourceDir(dir: string): string {
  const abs = resolve(dir);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) throw usage(`${dir} is not a directory`);
  return abs;
}

const command = defineCommand({
  meta: {
    name: "p-sync",
    version: pkg.version,
    description:
      "Sync a directory to a worker or ssh target the way p does: what git does not ignore, plus .git. " +
      "Example: p-sync . beefy src/app",
  },
  args,
  async run({ rawArgs }) {
    const { values, positionals } = strictArgs(args, rawArgs, "p-sync");
    const json = Boolean(values.json);
    if (values.explain !== undefined) {
      if (positionals.length > 1) throw usage("usage: p-sync --explain <path> [<dir>]");
      const e = await explainPath(sourceDir(positionals[0] ?? "."), values.explain as string);
      process.stdout.write(
        json ? `${JSON.stringify(e)}\n` : `${e.path}: ${e.synced ? "synced" : "not synced"}, ${e.reason}\n`,
      );
      return 0;
    }
    if (positionals.length !== 3) throw usage("usage: p-sync [--dry-run] <dir> <worker|ssh-target> <dest>");
    const [dir, targetArg, dest] = positionals as [string, string, string];
    const source = sourceDir(dir);
    const worker = workerOrTarget(targetArg);
    // in a linked worktree, its repository goes as .git/ in a second transfer
    const overlay = worktreeOverlay(source);
    try {
      const [plan, ...more] = await planSyncTo(source, parseConnection(worker.connection), dest, overlay);
      if (values["dry-run"]) {
        const listing = await listSynced(source);
        const result = { argv: plan!.argv, files: listing.files, total_bytes: listing.totalBytes };
        if (json)
          process.stdout.write(`${JSON.stringify({ ...result, ...(more[0] && { repository_argv: more[0].argv }) })}\n`);
        else {
          process.stdout.write(`${shJoin(plan!.argv)} < file-list\n`);
          for (const m of more) process.stdout.write(`${shJoin(m.argv)}\n`);
          for (const f of listing.files) process.stdout.write(`${f.path}\n`);
          process.stdout.write(`${listing.files.length} files, ${bytes(listing.totalBytes)}\n`);
        }
        return 0;
      }
      for (const step of [plan!, ...more]) await runSync(step);
    } catch (err) {
      if (!(err instanceof PError) || values["dry-run"]) throw err;
      throw new PError(err.code, `sync to ${worker.name} failed: ${err.message}`, { cause: err });
    } finally {
      overlay?.cleanup();
    }
    if (json) process.stdout.write(`${JSON.stringify({ source, target: worker.name, dest: remotePath(dest) })}\n`);
    else process.stderr.write(`Synced ${source} to ${worker.name}:${remotePath(dest)}\n`);
    return 0;
  },
});

export function main(argv: string[]): Promise<number> {
  return runCli(command, argv, { version: pkg.version, usage: "p-sync [--dry-run] <dir> <worker|ssh-target> <dest>" });
}
