import { describe, expect, test } from "bun:test";
import { planSync, remoteSpec } from "../src/plan.ts";

const base = { source: "/src/proj", host: "beefy", dest: ".p/workdirs/abc", rsh: "ssh -p 2222" };

describe("planSync", () => {
  test("outside git: rsync reads .gitignore files itself", () => {
    expect(planSync({ ...base, files: null })).toEqual({
      argv: [
        "rsync",
        "-a",
        "--rsync-path=mkdir -p .p/workdirs/ && rsync",
        "-e",
        "ssh -p 2222",
        "--filter=:- .gitignore",
        "--",
        "/src/proj/",
        "beefy:.p/workdirs/abc/",
      ],
    });
  });

  test("in git: git's file list goes to rsync's stdin, NUL-separated", () => {
    const plan = planSync({ ...base, files: ["a b.txt", ".git", "ü/x"] });
    expect(plan.argv).toContain("--files-from=-");
    expect(plan.argv).toContain("--from0");
    expect(plan.argv).not.toContain("--filter=:- .gitignore");
    expect(plan.stdin).toBe("a b.txt\0.git\0ü/x\0");
  });

  test("--dry-run itemizes without sending", () => {
    expect(planSync({ ...base, files: null, dryRun: true }).argv).toContain("--dry-run");
  });

  test("operands come after --", () => {
    const argv = planSync({ ...base, source: "-weird", files: null }).argv;
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
