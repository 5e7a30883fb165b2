import { describe, expect, test } from "bun:test";
import { commandLine, shJoin, shq } from "../src/protocol/quote.ts";

const words = [
  "",
  "plain",
  "a b",
  "c'd",
  "''",
  "$HOME",
  "$(id)",
  "`id`",
  "a\nb",
  "tab\there",
  "back\\slash",
  'dq"uote',
  "; rm -rf ~",
  "-leading-dash",
  "*?[a]",
  "~",
  "ünïcødé ✓",
  "!bang",
  "a&b|c>d<e",
];

describe("shq", () => {
  test.each(words)("sh turns %p back into itself", async (word) => {
    const out = Bun.spawnSync(["sh", "-c", `printf '%s' ${shq(word)}`]).stdout.toString();
    expect(out).toBe(word);
  });

  test.each([
    ["plain", "plain"],
    ["", "''"],
    ["a b", "'a b'"],
    ["c'd", "'c'\\''d'"],
    ["$HOME", "'$HOME'"],
    ["~", "'~'"],
  ])("%p quotes as %p", (word, quoted) => {
    expect(shq(word)).toBe(quoted);
  });
});

describe("shJoin", () => {
  test("an argv survives a round trip through sh", () => {
    const out = Bun.spawnSync(["sh", "-c", `for a in ${shJoin(words)}; do printf '[%s]' "$a"; done`]).stdout.toString();
    expect(out).toBe(words.map((w) => `[${w}]`).join(""));
  });
});

describe("commandLine", () => {
  test.each([
    [["make && make test"], "make && make test"],
    [["printf", "%s|", "a b", "c'd", "$HOME"], "printf '%s|' 'a b' 'c'\\''d' '$HOME'"],
    [["ls", "-la"], "ls -la"],
  ])("%p runs as %p", (argv, line) => {
    expect(commandLine(argv)).toBe(line);
  });
});
