import { describe, expect, test } from "bun:test";
import { insideWorkDir, planPull } from "../src/pull.ts";

describe("insideWorkDir", () => {
  test.each([
    ["build/out", "build/out"],
    ["./build//out/", "build/out"],
    ["a/../b", "b"],
    [".", "."],
    ["dir with space/ü", "dir with space/ü"],
    ["-rf", "-rf"],
  ])("%p is %p", (path, inside) => {
    expect(insideWorkDir(path)).toBe(inside);
  });

  test.each(["/etc/passwd", "..", "../x", "a/../../x", "", "  "])("%p is refused", (path) => {
    expect(() => insideWorkDir(path)).toThrow(/outside the job's work dir/);
  });
});

describe("planPull", () => {
  const base = { host: "beefy", rsh: "ssh", workDir: ".p/workdirs/abc" };
  test.each([
    ["build/app", "out", "beefy:.p/workdirs/abc/build/app"],
    [".", ".", "beefy:.p/workdirs/abc/"],
    ["-rf", ".", "beefy:.p/workdirs/abc/-rf"],
  ])("%p to %p pulls from %p", (path, dest, src) => {
    const { argv } = planPull({ ...base, path, dest });
    expect(argv.slice(-3)).toEqual(["--", src, dest]);
    expect(argv).toContain("--protect-args");
  });
});
