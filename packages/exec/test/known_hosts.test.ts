import { describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { checkHostKey, fingerprint, hostMatches, knownHostName, parseKnownHosts } from "../src/ssh/known_hosts.ts";

const hashed = (name: string) => {
  const salt = Buffer.from("0123456789abcdefghij");
  return `|1|${salt.toString("base64")}|${createHmac("sha1", salt).update(name).digest("base64")}`;
};

describe("hostMatches", () => {
  test.each([
    ["beefy", "beefy", true],
    ["beefy", "BEEFY", true],
    ["other,beefy", "beefy", true],
    ["*.lan", "box.lan", true],
    ["*.lan,!evil.lan", "evil.lan", false],
    ["box?", "box1", true],
    ["box?", "box12", false],
    ["[127.0.0.1]:2222", "[127.0.0.1]:2222", true],
    ["127.0.0.1", "[127.0.0.1]:2222", false],
    [hashed("[::1]:2222"), "[::1]:2222", true],
    [hashed("[::1]:2222"), "[::1]:2223", false],
    ["a.b", "axb", false],
  ])("%p names %p: %p", (patterns, name, expected) => {
    expect(hostMatches(patterns, name)).toBe(expected);
  });
});

describe("checkHostKey", () => {
  const text = [
    "# comment",
    "",
    "box ssh-ed25519 AAAAgood",
    "[box]:2222 ssh-ed25519 AAAAport",
    "@cert-authority *.lan ssh-ed25519 AAAAca",
    "@revoked * ssh-ed25519 AAAAbad",
    "malformed-line",
  ].join("\n");
  const entries = parseKnownHosts(text, "/kh");

  test("parses entries and skips comments and malformed lines", () => {
    expect(entries.map((e) => e.line)).toEqual([3, 4, 5, 6]);
  });
  test.each([
    ["box", "ssh-ed25519", "AAAAgood", "match"],
    ["box", "ssh-ed25519", "AAAAother", "mismatch"],
    ["box", "ssh-rsa", "AAAArsa", "mismatch"],
    ["[box]:2222", "ssh-ed25519", "AAAAport", "match"],
    ["[box]:2222", "ssh-ed25519", "AAAAgood", "mismatch"],
    ["new", "ssh-ed25519", "AAAAgood", "unknown"],
    ["x.lan", "ssh-ed25519", "AAAAca", "unknown"],
    ["box", "ssh-ed25519", "AAAAbad", "revoked"],
  ])("%p presenting %p %p is %p", (name, type, key, kind) => {
    expect(checkHostKey(entries, name, type, key).kind).toBe(kind as never);
  });
  test("a mismatch names the line on file", () => {
    expect(checkHostKey(entries, "box", "ssh-ed25519", "AAAAx")).toMatchObject({
      kind: "mismatch",
      entry: { file: "/kh", line: 3 },
    });
  });
});

test("knownHostName brackets a non-default port", () => {
  expect(knownHostName("h", 22)).toBe("h");
  expect(knownHostName("h", 2222)).toBe("[h]:2222");
});

test("fingerprint matches ssh-keygen -l", () => {
  const dir = require("node:fs").mkdtempSync("/tmp/p-fp-");
  Bun.spawnSync(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", `${dir}/k`]);
  const pub = require("node:fs").readFileSync(`${dir}/k.pub`, "utf8").split(" ")[1];
  const expected = Bun.spawnSync(["ssh-keygen", "-l", "-f", `${dir}/k.pub`])
    .stdout.toString()
    .split(" ")[1];
  expect(fingerprint(Buffer.from(pub, "base64"))).toBe(expected);
  require("node:fs").rmSync(dir, { recursive: true });
});
