import { describe, expect, test } from "bun:test";
import { forwardedEnv, jobSurroundings, jobTerminal, userEnv } from "../src/lib/env.ts";

const client = { TERM: "xterm", LANG: "de_DE.UTF-8", LC_TIME: "C", LC_ALL: "", HOME: "/h", MY_TOKEN: "t", MYX: "x" };

describe("forwardedEnv", () => {
  test.each([
    [{}, { TERM: "xterm", LANG: "de_DE.UTF-8", LC_TIME: "C", LC_ALL: "" }],
    [{ forward_env: false as const }, {}],
    [{ forward_env: ["MY_TOKEN"] }, { TERM: "xterm", LANG: "de_DE.UTF-8", LC_TIME: "C", LC_ALL: "", MY_TOKEN: "t" }],
    [
      { forward_env: ["MY*"] },
      { TERM: "xterm", LANG: "de_DE.UTF-8", LC_TIME: "C", LC_ALL: "", MY_TOKEN: "t", MYX: "x" },
    ],
    [{ forward_env: ["NOT_SET"] }, { TERM: "xterm", LANG: "de_DE.UTF-8", LC_TIME: "C", LC_ALL: "" }],
  ])("%p", (config, expected) => {
    expect(forwardedEnv(config, client)).toEqual(expected);
  });
});

describe("jobTerminal", () => {
  test.each([
    ["no -t", false, {}, { isTTY: true, columns: 100, rows: 30 }, {}, undefined],
    ["-t on a terminal: its size", true, {}, { isTTY: true, columns: 100, rows: 30 }, {}, { cols: 100, rows: 30 }],
    [
      "-t into a pipe: COLUMNS and LINES",
      true,
      {},
      { isTTY: false },
      { COLUMNS: "132", LINES: "50" },
      { cols: 132, rows: 50 },
    ],
    ["-t with nothing to go by: 80x24", true, {}, {}, { COLUMNS: "x" }, { cols: 80, rows: 24 }],
    [
      "tty: auto on a terminal",
      false,
      { tty: "auto" as const },
      { isTTY: true, columns: 90, rows: 20 },
      {},
      { cols: 90, rows: 20 },
    ],
    ["tty: auto into a pipe", false, { tty: "auto" as const }, { isTTY: false }, {}, undefined],
  ])("%s", (_, wanted, config, out, env, expected) => {
    expect(jobTerminal(wanted, config, out, env)).toEqual(expected);
  });
});

describe("jobSurroundings", () => {
  test("a terminal without a type gets one; without a terminal nothing is made up", () => {
    expect(jobSurroundings({}, true, {}, { isTTY: false }, { LANG: "C" })).toEqual({
      env: { LANG: "C", TERM: "xterm-256color" },
      tty: { cols: 80, rows: 24 },
    });
    expect(jobSurroundings({}, false, {}, { isTTY: false }, { LANG: "C" })).toEqual({ env: { LANG: "C" } });
    expect(jobSurroundings({ forward_env: false }, true, {}, {}, { TERM: "screen" }).env).toEqual({
      TERM: "xterm-256color",
    });
  });
});

describe("userEnv", () => {
  const files: Record<string, string> = {
    "a.env": "A=1\nexport B=\"two words\"\n# a comment\nC='it''s'\n",
    "b.env": "A=from-b\n",
  };
  const read = (f: string) => {
    if (!(f in files)) throw new Error("ENOENT: no such file");
    return files[f]!;
  };
  test.each([
    [{ env: ["X=1", "Y=a=b", "Z="] }, { X: "1", Y: "a=b", Z: "" }],
    [{ env: ["HOME"] }, { HOME: "/h" }],
    [{ envFiles: ["a.env"] }, { A: "1", B: "two words", C: "it''s" }],
    [
      { envFiles: ["a.env", "b.env"], env: ["C=last"] },
      { A: "from-b", B: "two words", C: "last" },
    ],
  ])("%p", (given, expected) => {
    expect(userEnv(given, { HOME: "/h" }, read)).toEqual(expected);
  });

  test.each([
    [{ env: ["NOPE"] }, /--env NOPE: NOPE is not set here/],
    [{ env: ["A B=1"] }, /"A B" is not a variable name/],
    [{ env: ["=1"] }, /"" is not a variable name/],
    [{ envFiles: ["missing.env"] }, /cannot read the env file missing.env/],
  ])("%p is refused", (given, why) => {
    expect(() => userEnv(given, {}, read)).toThrow(why);
  });
});
