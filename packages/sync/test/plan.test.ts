import { describe, expect, test } from "bun:test";
import { excludeRules, parentDir, planMirrorSync, planOverlaySync, planSync, remoteSpec } from "../src/plan.ts";

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
    expect(planSync({ ...base, files: [], rsyncPath: "mkdir -p 'a b/' && rsync" }).argv).toContain(
      "--rsync-path=mkdir -p 'a b/' && rsync",
    );
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

describe("excludeRules", () => {
  test.each([
    [[], ""],
    [["build/"], "/build/\0"],
    [["a b/ü.log", "x\\y"], "/a b/ü.log\0/x\\y\0"],
    [["weird*[1]?.txt"], "/weird\\*\\[1]\\?.txt\0"],
    [["back\\slash*"], "/back\\\\slash\\*\0"],
    [["line\nbreak"], "/line\nbreak\0"],
  ])("%p is anchored, NUL-separated, wildcards escaped", (paths, want) => {
    expect(excludeRules(paths)).toBe(want);
  });
});

describe("planMirrorSync", () => {
  const input = {
    source: "/src/p",
    host: "beefy",
    rsh: "ssh",
    mirror: ".p/mirrors/k",
    remoteCommand: "sh -c 'the worker side' p-mirror .p/mirrors/k .p/workdirs/j",
    exclude: ["node_modules/"],
  };

  test("mirrors the whole tree but the ignored paths, deleting what is gone or ignored", () => {
    const plan = planMirrorSync(input);
    for (const flag of ["-r", "--delete", "--delete-excluded", "--modify-window=-1", "--from0", "--exclude-from=-"])
      expect(plan.argv).toContain(flag);
    expect(plan.argv).not.toContain("-z");
    expect(plan.argv.slice(-3)).toEqual(["--", "/src/p/", "beefy:.p/mirrors/k/"]);
    expect(plan.stdin).toBe("/node_modules/\0");
  });

  test("the worker's side of the sync is rsync's remote command, as given", () => {
    expect(planMirrorSync(input).argv).toContain(`--rsync-path=${input.remoteCommand}`);
  });

  test("compression when asked", () => {
    expect(planMirrorSync({ ...input, compress: true }).argv).toContain("-z");
  });

  test("only what changed: the ignored paths' rules, then the change's, as one filter; nothing else deleted", () => {
    const plan = planMirrorSync({ ...input, only: ["+ /src/a.c", "+ /src/", "- *"] });
    for (const flag of ["-r", "--delete", "--modify-window=-1", "--from0", "--filter=. -"])
      expect(plan.argv).toContain(flag);
    for (const flag of ["--delete-excluded", "--exclude-from=-"]) expect(plan.argv).not.toContain(flag);
    expect(plan.stdin).toBe("- /node_modules/\0+ /src/a.c\0+ /src/\0- *\0");
  });
});

describe("planMirrorSync with an overlay", () => {
  test("every source says where it lands (-R), the overlay first so that its paths win", () => {
    const plan = planMirrorSync({
      source: "/src/p",
      host: "beefy",
      rsh: "ssh",
      mirror: ".p/mirrors/k",
      remoteCommand: "x",
      exclude: [".git/worktrees/"],
      overlay: ["/tmp/o/own/./.git/HEAD", "/tmp/o/common/./.git/"],
    });
    expect(plan.argv).toContain("-R");
    expect(plan.argv.slice(plan.argv.indexOf("--"))).toEqual([
      "--",
      "/tmp/o/own/./.git/HEAD",
      "/tmp/o/common/./.git/",
      "/src/p/./",
      "beefy:.p/mirrors/k/",
    ]);
    expect(plan.stdin).toBe("/.git/worktrees/\0");
  });
});

describe("planOverlaySync", () => {
  test("sends the overlay's paths --relative into the destination, its own excludes applied", () => {
    const plan = planOverlaySync({
      paths: ["/t/own/./.git/HEAD", "/t/common/./.git/"],
      host: "beefy",
      dest: "app",
      rsh: "ssh",
      exclude: [".git/worktrees/"],
    });
    expect(plan.argv).toEqual([
      "rsync",
      "-a",
      "--protect-args",
      "-R",
      "-e",
      "ssh",
      "--from0",
      "--exclude-from=-",
      "--",
      "/t/own/./.git/HEAD",
      "/t/common/./.git/",
      "beefy:app/",
    ]);
    expect(plan.stdin).toBe("/.git/worktrees/\0");
  });
});
