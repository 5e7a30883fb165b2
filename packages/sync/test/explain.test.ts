import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { explainPath, listSynced } from "../src/index.ts";

const root = mkdtempSync(join(tmpdir(), "p-explain-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function tree(name: string, files: Record<string, string>, git = false): string {
  const dir = join(root, name);
  for (const [path, body] of Object.entries(files)) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), body);
  }
  if (git) {
    const g = (...a: string[]) => Bun.spawnSync(["git", "-C", dir, "-c", "user.email=t@t", "-c", "user.name=t", ...a]);
    g("init", "-q");
    g("add", "-A");
    g("commit", "-qm", "x");
  }
  return dir;
}

const files = {
  ".gitignore": "# build output\n*.o\nout/\n!keep.o\n",
  "a.c": "int a;",
  "a.o": "xx",
  "keep.o": "kept",
  "out/bin": "xxxx",
  "sub/.gitignore": "*.tmp\n",
  "sub/x.tmp": "",
  "sub/y.c": "",
};

describe("explainPath in a git repo: git decides", () => {
  const dir = tree("git", files, true);
  writeFileSync(join(dir, "new.c"), "");
  test.each([
    ["a.c", true, /tracked by git/],
    ["new.c", true, /untracked, and no ignore rule matches/],
    ["a.o", false, /ignored by git \(\.gitignore:2: \*\.o\)/],
    ["out/bin", false, /ignored by git \(\.gitignore:3: out\/\)/],
    ["sub/x.tmp", false, /ignored by git \(sub\/\.gitignore:1: \*\.tmp\)/],
    [".git/HEAD", true, /\.git is always sent/],
    ["missing", false, /no such file/],
  ])("%p synced=%p", async (path, synced, reason) => {
    const e = await explainPath(dir, path);
    expect(e.synced).toBe(synced);
    expect(e.reason).toMatch(reason);
  });
});

describe("explainPath outside git: the same .gitignore rules, read as git reads them", () => {
  const dir = tree("plain", files);
  test.each([
    ["a.c", true, /no \.gitignore rule matches/],
    ["a.o", false, /ignored \(\.gitignore:2: \*\.o\)/],
    ["keep.o", true, /re-included \(\.gitignore:4: !keep\.o\)/],
    ["out/bin", false, /\.gitignore:3: out\/\) on out$/],
    ["sub/x.tmp", false, /sub\/\.gitignore:1: \*\.tmp/],
    ["sub/y.c", true, /no \.gitignore rule/],
    ["missing", false, /no such file/],
  ])("%p synced=%p", async (path, synced, reason) => {
    const e = await explainPath(dir, path);
    expect(e.synced).toBe(synced);
    expect(e.reason).toMatch(reason);
  });
});

describe("listSynced", () => {
  test("lists exactly what a sync sends, with the total size", async () => {
    const dir = tree("list", files);
    const l = await listSynced(dir);
    expect(l.files.map((f) => f.path).sort()).toEqual([".gitignore", "a.c", "keep.o", "sub/.gitignore", "sub/y.c"]);
    expect(l.totalBytes).toBe(l.files.reduce((a, f) => a + f.size, 0));
    expect(l.files.find((f) => f.path === "keep.o")!.size).toBe(4);
  });
});
