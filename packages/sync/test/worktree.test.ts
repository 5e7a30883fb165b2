import { afterAll, describe, expect, test } from "bun:test";
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkoutOf, linkedWorktree, originUrl, repositoryOf, worktreeOverlay } from "../src/index.ts";

const root = mkdtempSync(join(tmpdir(), "p-wt-test-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const git = (cwd: string, ...args: string[]) =>
  Bun.spawnSync(["git", "-c", "user.email=t@t", "-c", "user.name=t", ...args], { cwd }).exitCode;

const repo = join(root, "repo");
const feat = join(root, "feat");
mkdirSync(repo);
git(repo, "init", "-q", "-b", "main");
writeFileSync(join(repo, "a"), "a");
git(repo, "add", ".");
git(repo, "commit", "-qm", "one");
git(repo, "worktree", "add", "-q", "-b", "feature", feat);

describe("linkedWorktree", () => {
  test("a worktree's .git file names its git dir, whose commondir is the repository", () => {
    expect(linkedWorktree(feat)).toEqual({
      gitDir: join(repo, ".git", "worktrees", "feat"),
      commonDir: join(repo, ".git"),
    });
  });

  test("a main checkout, a plain directory and a submodule-like .git file are not worktrees", () => {
    expect(linkedWorktree(repo)).toBeUndefined();
    expect(linkedWorktree(root)).toBeUndefined();
    const sub = join(root, "sub");
    mkdirSync(join(sub, "gitdir"), { recursive: true });
    writeFileSync(join(sub, ".git"), "gitdir: gitdir\n");
    expect(linkedWorktree(sub)).toBeUndefined();
  });
});

describe("worktreeOverlay", () => {
  test("the worktree's own HEAD and index, then the common dir, each where it lands in .git", () => {
    const o = worktreeOverlay(feat)!;
    try {
      expect(o.exclude).toEqual([".git/worktrees/"]);
      const [head, index] = o.paths as [string, string];
      const common = o.paths.at(-1)!;
      expect(head).toMatch(/\/own\/\.\/\.git\/HEAD$/);
      expect(readFileSync(head, "utf8")).toBe("ref: refs/heads/feature\n");
      expect(index).toMatch(/\/own\/\.\/\.git\/index$/);
      const ns = (p: string) => statSync(p, { bigint: true }).mtimeNs;
      expect(ns(index)).toBe(ns(join(repo, ".git", "worktrees", "feat", "index")));
      expect(common).toMatch(/\/common\/\.\/\.git\/$/);
      expect(readlinkSync(common.slice(0, -1))).toBe(join(repo, ".git"));
    } finally {
      o.cleanup();
    }
    expect(() => statSync(o.paths[0]!)).toThrow();
    expect(worktreeOverlay(repo)).toBeUndefined();
  });
});

describe("repositoryOf", () => {
  test("a checkout, its worktree and a clone of it say the same repository; another says another", () => {
    const clone = join(root, "clone");
    Bun.spawnSync(["git", "clone", "-q", repo, clone]);
    const fileClone = join(root, "fileclone");
    Bun.spawnSync(["git", "clone", "-q", `file://${repo}`, fileClone]);
    const other = join(root, "other");
    mkdirSync(other);
    git(other, "init", "-q");
    const mine = repositoryOf(repo);
    expect(mine).toBe(`dir:${join(repo, ".git")}`);
    expect(repositoryOf(feat)).toBe(mine);
    expect(repositoryOf(clone)).toBe(mine);
    expect(repositoryOf(fileClone)).toBe(mine);
    expect(repositoryOf(other)).toBe(`dir:${join(other, ".git")}`);
    // (not the top of a checkout: no repository is claimed)
    mkdirSync(join(repo, "sub"), { recursive: true });
    expect(repositoryOf(join(repo, "sub"))).toBeUndefined();
    expect(repositoryOf(root)).toBeUndefined();
  });

  test("two clones of one remote say the remote", () => {
    const a = join(root, "ra");
    const b = join(root, "rb");
    for (const d of [a, b]) {
      mkdirSync(d);
      git(d, "init", "-q");
      git(d, "remote", "add", "origin", "git@example.com:org/app.git");
    }
    expect(repositoryOf(a)).toBe("remote:git@example.com:org/app.git");
    expect(repositoryOf(b)).toBe(repositoryOf(a));
  });
});

describe("originUrl", () => {
  test.each<[string, string, string | undefined]>([
    ["a remote origin", '[core]\n\tbare = false\n[remote "origin"]\n\turl = git@h:o/r.git\n', "git@h:o/r.git"],
    ["spaces and a quoted value", '[remote  "origin" ]\n  url=  "https://h/o/r"  \n', "https://h/o/r"],
    ["another remote only", '[remote "upstream"]\n\turl = git@h:u/r.git\n', undefined],
    ["origin after another", '[remote "up"]\n\turl = a\n[remote "origin"]\n\turl = b\n', "b"],
    ["a url key in another section", '[remote "origin"]\n\tfetch = x\n[branch "main"]\n\turl = no\n', undefined],
    ["no config", "", undefined],
  ])("%s", (_, config, url) => {
    expect(originUrl(config)).toBe(url);
  });
});

describe("checkoutOf", () => {
  // a repository with a tracked subdirectory, an ignored one, a new one with nothing
  // tracked; and a "home" repository that tracks nothing below it
  const mono = join(root, "mono");
  for (const [f, body] of [
    ["app/src/main.c", "int main;"],
    ["lib/x.c", "x"],
    [".gitignore", "build/\n"],
    ["build/out.o", "o"],
    ["fresh/new.c", "new"],
    ["home/projects/foo/f", "f"],
  ] as const) {
    mkdirSync(join(mono, f, ".."), { recursive: true });
    writeFileSync(join(mono, f), body);
  }
  git(mono, "init", "-q");
  git(mono, "add", "app", "lib", ".gitignore");
  git(mono, "commit", "-qm", "one");
  const home = join(mono, "home");
  git(home, "init", "-q");
  mkdirSync(join(root, "plain", "sub"), { recursive: true });

  test.each([
    ["the top of a checkout: itself", mono, { top: mono, sub: "" }],
    // (git names the top by its real path)
    [
      "a tracked subdirectory: the whole checkout, run there",
      join(mono, "app"),
      { top: realpathSync(mono), sub: "app" },
    ],
    ["deeper", join(mono, "app", "src"), { top: realpathSync(mono), sub: "app/src" }],
    ["an ignored directory: alone", join(mono, "build"), { top: join(mono, "build"), sub: "" }],
    ["a directory git tracks nothing in yet: alone", join(mono, "fresh"), { top: join(mono, "fresh"), sub: "" }],
    [
      "below a repository that tracks nothing there (a home's dotfiles): alone",
      join(home, "projects", "foo"),
      { top: join(home, "projects", "foo"), sub: "" },
    ],
    ["outside any repository: alone", join(root, "plain", "sub"), { top: join(root, "plain", "sub"), sub: "" }],
  ])("%s", (_what, dir, expected) => {
    expect(checkoutOf(dir)).toEqual(expected);
  });
});
