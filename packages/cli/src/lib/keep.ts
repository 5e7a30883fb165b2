import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ConnectOptions, PError, serveKeeper } from "@p/exec";
import { cacheDir } from "@p/store";
import pkg from "../../package.json" with { type: "json" };
import { parseDuration } from "./duration.ts";

/**
 * p keeps each worker's SSH connection open for a while after a run (see @p/exec's
 * keep.ts): in a process of its own, the binary that ran started again with KEEPER_ARG.
 * P_KEEP_CONNECTIONS says for how long after the last use (300 s unless it says; 0: none
 * kept, every run connects).
 */
export const KEEPER_ARG = "__keep-connections";
const KEEP_S = 300;

/** How long connections are kept after their last use, in seconds (0: not at all). */
export function keepSeconds(): number {
  const text = process.env.P_KEEP_CONNECTIONS;
  if (text === undefined || text.trim() === "") return KEEP_S;
  if (/^\s*0+\s*$/.test(text)) return 0;
  try {
    return parseDuration(text);
  } catch {
    throw new PError(
      "invalid_argument",
      `P_KEEP_CONNECTIONS is ${JSON.stringify(text)}; ` +
        "give how long to keep connections (300, 90s, 10m), or 0 to keep none",
    );
  }
}

/**
 * The keeper's socket: one per user, cache dir (so a second set of settings, as the tests
 * make, has a keeper of its own) and version of p (a keeper left by another version, which
 * may speak otherwise, is not asked: it ends once idle), in the user's runtime dir.
 */
export function keeperSocket(): string {
  const base = process.env.XDG_RUNTIME_DIR || tmpdir();
  const name = createHash("sha256").update(`${pkg.version}\0${cacheDir()}`).digest("hex").slice(0, 16);
  return join(base, `p-${process.getuid?.() ?? "u"}`, `keep-${name}.sock`);
}

/** The binary to start as the keeper: the one running, once it has said it can be (see keeperOr). */
let keeperBinary: string | undefined;
let started = false;

/** Where a connection borrows from the keeper, starting one if none listens; undefined where none is kept. */
export function keepOptions(): ConnectOptions["keep"] {
  const seconds = keepSeconds();
  if (seconds === 0 || !keeperBinary) return undefined;
  const socket = keeperSocket();
  return {
    socket,
    absent() {
      if (started) return;
      started = true;
      // a session of its own, away from the terminal's signals, holding no directory
      Bun.spawn([keeperBinary!, KEEPER_ARG, socket, String(seconds)], {
        cwd: "/",
        stdio: ["ignore", "ignore", "ignore"],
        detached: true,
      }).unref();
    },
  };
}

/**
 * For a binary's entry: serve as the keeper if that is what it was started as (its exit
 * code), else undefined, the binary now able to start one.
 */
export async function keeperOr(argv: string[]): Promise<number | undefined> {
  if (argv[0] !== KEEPER_ARG) {
    keeperBinary = process.execPath;
    return undefined;
  }
  const [, socket, seconds] = argv;
  if (!socket || !(Number(seconds) > 0)) return 64;
  await serveKeeper(socket, Number(seconds) * 1000);
  process.exit(0);
}
