import { describe, expect, test } from "bun:test";
import { parentDir, planSync, remoteSpec } from "../src/plan.ts";

const base = { source: "/src/proj", host: "beefy", dest: ".p/workdirs/abc", rsh: "ssh -p 2222" };

describe("planSync", () => {
  test("the file list goes to rsync's stdin, NUL-separated; rsync decides nothing itself", () => {
    expect(planSync({ ...base, files: ["a b.txt", ".git", "ü/x"] })).toEqual({
      argv: [
        "rsync",
        "-a",
        "--protect-args",
        "-e",
        "ssh -p 2222",
        "--from0",
        "--files-from=-",
        "-r",
        "--ignore-missing-args",
        "--",
        "/src/proj/",
        "beefy:.p/workdirs/abc/",
      ],
      stdin: "a b.txt\0.git\0ü/x\0",
    });
  });

  test("a remote rsync command, when given", () => {
    expect(planSync({ ...base, files: [], rsyncPath: "mkdir -p 'a b/' && rsync" }).argv).toContain("--rsync-path=mkdir -p 'a b/' && rsync");
  });

  test("--dry-run itemizes without sending", () => {
    expect(planSync({ ...base, files: [], dryRun: true }).argv).toContain("--dry-run");
  });

  test("operands come after --", () => {
    const argv = planSync({ ...base, source: "-weird", files: [] }).argv;
    expect(argv.slice(-3)).toEqual(["--", "-weird/", "beefy:.p/workdirs/abc/"]);
  });
});

describe("remoteSpec", () => {
  test.each([
    ["beefy", "d/", "beefy:d/"],
    ["10.0.0.5", "d/", "10.0.0.5:d/"],
    ["::1", "d/", "[::1]:d/"],
  ])("%p %p", (host, path, spec) => {
    expect(remoteSpec(host, path)).toBe(spec);
  });
});

describe("parentDir", () => {
  test.each([
    [".p/workdirs/abc", ".p/workdirs/"],
    [".p/workdirs/abc/", ".p/workdirs/"],
    ["top", "."],
    ["/srv/x y/z", "/srv/x y/"],
  ])("%p is under %p", (dest, parent) => {
    expect(parentDir(dest)).toBe(parent);
  });
});
