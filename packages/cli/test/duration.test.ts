import { describe, expect, test } from "bun:test";
import { parseDuration } from "../src/lib/duration.ts";

describe("parseDuration", () => {
  test.each([
    ["90s", 90],
    ["30m", 1800],
    ["2h", 7200],
    ["1d", 86400],
    ["1h30m", 5400],
    ["45", 45],
    ["1.5m", 90],
    [" 10s ", 10],
  ])("%p is %p s", (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });

  test.each(["", "0", "0s", "-5s", "5x", "s", "1h 30m", "1h30", "ten", "5s;rm"])("%p is refused", (text) => {
    expect(() => parseDuration(text)).toThrow(/is not valid; use a number with s, m, h or d/);
  });
});
