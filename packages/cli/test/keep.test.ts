import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { keptKey, privateDir, type SshSettings } from "@p/exec";
import { keeperSocket, keepSeconds } from "../src/lib/keep.ts";

const saved = { ...process.env };
afterEach(() => {
  process.env = { ...saved };
});

describe("P_KEEP_CONNECTIONS", () => {
  test.each([
    [undefined, 300],
    ["", 300],
    ["0", 0],
    ["00", 0],
    ["90", 90],
    ["90s", 90],
    ["10m", 600],
    ["1h", 3600],
  ])("%p keeps connections %p s", (text, seconds) => {
    if (text === undefined) delete process.env.P_KEEP_CONNECTIONS;
    else process.env.P_KEEP_CONNECTIONS = text;
    expect(keepSeconds()).toBe(seconds);
  });

  test.each(["soon", "-1", "5x", "1h 30m", "0s"])("%p is refused, naming the variable", (text) => {
    process.env.P_KEEP_CONNECTIONS = text;
    expect(() => keepSeconds()).toThrow(`P_KEEP_CONNECTIONS is ${JSON.stringify(text)}; give how long`);
  });
});

describe("the keeper's socket", () => {
  test("is in the runtime dir, in a directory of the user's own, one per cache dir and version", () => {
    process.env.XDG_RUNTIME_DIR = "/run/user/1000";
    process.env.XDG_CACHE_HOME = "/home/u/.cache";
    const a = keeperSocket();
    process.env.XDG_CACHE_HOME = "/tmp/other-cache";
    const b = keeperSocket();
    expect(a).toMatch(new RegExp(`^/run/user/1000/p-${process.getuid!()}/keep-[0-9a-f]{16}\\.sock$`));
    expect(b).not.toBe(a);
    // (a unix socket's path holds at most 107 bytes)
    expect(a.length).toBeLessThan(108);
  });

  test("is only used in a directory no one else may enter", () => {
    const dir = mkdtempSync(join(tmpdir(), "p-keep-"));
    try {
      expect(privateDir(join(dir, "made"))).toBe(true);
      chmodSync(join(dir, "made"), 0o755);
      expect(privateDir(join(dir, "made"))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("what names a kept connection", () => {
  const s: SshSettings = {
    hostname: "w1",
    user: "u",
    port: 22,
    identityFiles: ["/k"],
    identitiesOnly: false,
    knownHostsFiles: ["/kh"],
    strictHostKeyChecking: "ask",
    hashKnownHosts: false,
  };
  test("every setting, and the ssh command", () => {
    const key = keptKey(s);
    expect(keptKey({ ...s })).toBe(key);
    expect(keptKey({ ...s, port: 2222 })).not.toBe(key);
    expect(keptKey({ ...s, user: "v" })).not.toBe(key);
    expect(keptKey({ ...s, identityFiles: ["/other"] })).not.toBe(key);
    expect(keptKey({ ...s, proxyJump: "bastion" })).not.toBe(key);
    expect(keptKey(s, "ssh -F /x")).not.toBe(key);
  });
});
