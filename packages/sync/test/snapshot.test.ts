import { afterAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  anchored,
  changeRules,
  parseWalk,
  parseWalkText,
  type Tree,
  treeOf,
  walkCommand,
  walkText,
  walkTree,
} from "../src/snapshot.ts";

const root = mkdtempSync(join(tmpdir(), "p-snapshot-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const put = (dir: string, files: Record<string, string>) => {
  for (const [path, body] of Object.entries(files)) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), body);
  }
};
const sh = (cmd: string) => {
  const r = Bun.spawnSync(["sh", "-c", cmd], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd}: ${r.stderr}`);
  return r.stdout.toString();
};
/** A tree as find says it, with none of its entries racy (a walk an hour from now: none changed within RACY_MS of it). */
function walk(dir: string, exclude: string[] = []): Tree {
  const out = Bun.spawnSync(walkCommand(exclude, Date.now() + 3_600_000)!, { cwd: dir }).stdout.toString();
  return treeOf(parseWalk(out)!);
}
/** changeRules with the tree now as a map, as these tests build it (p gives a walk's pairs). */
const rulesOver = (before: Tree, now: Tree, ...rest: [string[]?, number?]) =>
  changeRules(before, [...now].flat(), ...rest);
/** What a directory holds, as rsync would compare it: type, mode, size, mtime, link target. */
const listing = (dir: string) => sh(`cd '${dir}' && find . -mindepth 1 -printf '%y %m %s %T@ %p -> %l\\n' | sort`);

let n = 0;
/**
 * A source and its mirror, synced whole; `change` alters the source (and may plant
 * something in the mirror); then the rules made from the two walks, applied by a real rsync
 * as p's sync applies them, must leave the mirror the source's exact copy.
 */
function roundTrip(
  files: Record<string, string>,
  change: (src: string, mirror: string) => void,
  exclude: string[] = [],
  /** What only the mirror was given (with its directory): left out of the comparison. */
  planted: string[] = [],
) {
  const src = join(root, `src${++n}`);
  const mirror = join(root, `mirror${n}`);
  mkdirSync(src);
  put(src, files);
  const excludes = exclude.map((e) => `--exclude=${anchored(e)}`).join(" ");
  sh(`rsync -a --delete --modify-window=-1 ${excludes} '${src}/' '${mirror}/'`);
  const before = walk(src, exclude);
  change(src, mirror);
  const now = walk(src, exclude);
  const rules = rulesOver(before, now, exclude)!;
  const stdin = [...exclude.map((e) => `- ${anchored(e)}`), ...rules].map((r) => `${r}\0`).join("");
  const r = Bun.spawnSync(
    ["rsync", "-a", "-r", "--delete", "--modify-window=-1", "--from0", "--filter=. -", "-i", `${src}/`, `${mirror}/`],
    { stdin: Buffer.from(stdin), stderr: "pipe" },
  );
  expect(r.stderr.toString()).toBe("");
  expect(r.exitCode).toBe(0);
  const ignored = (l: string) =>
    [...exclude, ...planted].some((e) => new RegExp(` \\./${e.replace(/\/$/, "")}(/| )`).test(l));
  const unplanted = (l: string) => planted.every((e) => !l.includes(` ./${e} `));
  expect(
    listing(mirror)
      .split("\n")
      .filter((l) => !ignored(l)),
  ).toEqual(
    listing(src)
      .split("\n")
      .filter((l) => unplanted(l) && !ignored(l)),
  );
  return { rules, sent: r.stdout.toString(), mirror };
}

describe("a sync of only what changed, applied by rsync, leaves the mirror the tree's exact copy", () => {
  const base = {
    "a.txt": "a",
    "src/x.c": "x",
    "src/deep/y.c": "y",
    "gone/inner/z.txt": "z",
    "flip/in.txt": "in",
    swap: "a file",
    "mode.sh": "#!/bin/sh\n",
  };
  test.each<[string, (src: string, mirror: string) => void]>([
    ["nothing changed", () => {}],
    ["a file edited", (s) => writeFileSync(join(s, "src/deep/y.c"), "edited")],
    ["a file added deep in a new directory", (s) => put(s, { "new/dir/n.txt": "n" })],
    ["a file deleted", (s) => rmSync(join(s, "a.txt"))],
    ["a tree deleted", (s) => rmSync(join(s, "gone"), { recursive: true })],
    [
      "a directory replaced by a file",
      (s) => {
        rmSync(join(s, "flip"), { recursive: true });
        put(s, { flip: "file" });
      },
    ],
    [
      "a file replaced by a directory",
      (s) => {
        rmSync(join(s, "swap"));
        put(s, { "swap/in.txt": "in" });
      },
    ],
    ["a mode changed", (s) => chmodSync(join(s, "mode.sh"), 0o755)],
    ["a directory's mode changed", (s) => chmodSync(join(s, "src/deep"), 0o700)],
    ["a link made", (s) => symlinkSync("a.txt", join(s, "link"))],
    ["a directory renamed", (s) => renameSync(join(s, "src"), join(s, "moved"))],
    [
      "an edit that keeps the size and puts the mtime back",
      (s) => {
        writeFileSync(join(s, "src/x.c"), "X");
        utimesSync(join(s, "src/x.c"), new Date(0), new Date(1_000_000));
      },
    ],
    [
      "names rsync's patterns would read as wildcards, or with a newline",
      (s) => put(s, { "w*ld[1]?.txt": "w", "back\\slash": "b", "new\nline": "n", "src/[x].c": "x" }),
    ],
    [
      "an entry the mirror gained and the tree lost since (its directory changed): deleted too",
      (s, m) => {
        put(m, { "src/stray.o": "stray" });
        put(s, { "src/tmp": "t" });
        rmSync(join(s, "src/tmp"));
      },
    ],
  ])("%s", (_, change) => {
    roundTrip(base, change);
  });

  test("what is ignored is neither sent nor deleted", () => {
    const { sent } = roundTrip(
      { "a.txt": "a", "build/out.o": "o", "src/x.log": "l" },
      (s) => {
        put(s, { "build/more.o": "m", "src/x.log": "changed", "src/new.log": "new, and ignored" });
        writeFileSync(join(s, "a.txt"), "edited");
      },
      ["build/", "src/x.log", "src/new.log"],
    );
    expect(sent).not.toContain("build");
    expect(sent).not.toContain("x.log");
  });

  test("only what changed is looked at: a file planted in an unchanged directory of the mirror stays (no scan saw it)", () => {
    const { rules, mirror } = roundTrip(
      { "a.txt": "a", "quiet/q.txt": "q" },
      (s, m) => {
        writeFileSync(join(s, "a.txt"), "edited");
        put(m, { "quiet/planted": "p" });
      },
      [],
      ["quiet"],
    );
    expect(rules).toEqual(["+ /a.txt", "- *"]);
    expect(readFileSync(join(mirror, "quiet/planted"), "utf8")).toBe("p");
  });
});

describe("changeRules", () => {
  const sig = (type: string, extra = "1") => `${type} 644 1 1.0 1.0 ${extra} 1`;
  const tree = (entries: Record<string, string>): Tree => new Map([["", sig("d")], ...Object.entries(entries)]);
  test.each<[string, Record<string, string>, Record<string, string>, string[]]>([
    ["unchanged", { a: sig("f") }, { a: sig("f") }, ["- *"]],
    [
      "a file edited",
      { "d/a": sig("f"), d: sig("d") },
      { "d/a": sig("f", "2"), d: sig("d") },
      ["+ /d/a", "+ /d/", "- *"],
    ],
    ["a racy file, unchanged", { a: `?${sig("f")}` }, { a: `?${sig("f")}` }, ["+ /a", "- *"]],
    ["a directory changed: its entries too", { d: sig("d") }, { d: sig("d", "2") }, ["+ /d", "+ /d/*", "- *"]],
    ["a new directory: all of it, once", {}, { d: sig("d"), "d/x": sig("f") }, ["+ /d", "+ /d/***", "- *"]],
    ["a directory gone: all it held", { d: sig("d"), "d/x": sig("f") }, {}, ["+ /d", "+ /d/***", "- *"]],
    ["a file now a directory", { d: sig("f") }, { d: sig("d"), "d/x": sig("f") }, ["+ /d", "+ /d/***", "- *"]],
    ["a directory now a file", { d: sig("d"), "d/x": sig("f") }, { d: sig("f") }, ["+ /d", "+ /d/***", "- *"]],
    ["wildcards escaped", { "a*": sig("f") }, { "a*": sig("f", "2") }, ["+ /a\\*", "- *"]],
    [
      "a backslash kept as it is without wildcards",
      { "a\\b": sig("f") },
      { "a\\b": sig("f", "2") },
      ["+ /a\\b", "- *"],
    ],
  ])("%s", (_, before, now, rules) => {
    expect(rulesOver(tree(before), tree(now))).toEqual(rules);
  });

  test("what git ignores now, if the mirror holds it, only a whole sync deletes; what was never sent is only left out", () => {
    const before = tree({ a: sig("f"), build: sig("d"), "build/o": sig("f") });
    const now = tree({ a: sig("f", "2"), build: sig("d"), "build/o": sig("f") });
    expect(rulesOver(before, now, ["build/"])).toBeUndefined();
    expect(rulesOver(before, now, ["a"])).toBeUndefined();
    expect(rulesOver(before, now, ["new.o", "gen/"])).toEqual(["+ /a", "- *"]);
  });

  test("the top changed: its entries are looked at", () => {
    expect(rulesOver(new Map([["", sig("d")]]), new Map([["", sig("d", "2")]]))).toEqual(["+ /*", "- *"]);
  });

  test("past the limit, none: a whole scan costs no more", () => {
    const before = tree(Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`f${i}`, sig("f")])));
    const now = tree(Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`f${i}`, sig("f", "2")])));
    expect(rulesOver(before, now, [], 20)).toBeUndefined();
    expect(rulesOver(before, now, [], 100)).toHaveLength(51);
  });
});

describe("walking a tree", () => {
  test("find's records: the top as '', ignored paths left out (a directory's only as a directory)", () => {
    const dir = join(root, "walked");
    mkdirSync(dir);
    put(dir, { "a.txt": "a", "build/o": "o", "keep/build": "a file named build", "x.log": "l", "sp ace/f": "f" });
    const t = walk(dir, ["build/", "x.log", "keep/build/"]);
    expect([...t.keys()].sort()).toEqual(["", "a.txt", "keep", "keep/build", "sp ace", "sp ace/f"]);
    expect(t.get("a.txt")).toMatch(/^f 644 1 \d+\.\d+ \d+\.\d+ \d+ \d+$/);
    expect(t.get("")).toMatch(/^d /);
  });

  test("entries changed within RACY_MS of the walk are marked racy; the walk kept as text comes back the same", async () => {
    const dir = join(root, "racy");
    mkdirSync(dir);
    put(dir, { "a.txt": "a" });
    const w = (await walkTree(dir, []))!;
    expect(treeOf(w.pairs).get("a.txt")).toStartWith("?f ");
    const back = parseWalkText(walkText(w))!;
    expect(back.pairs).toEqual(w.pairs);
    expect(back.at).toBe(w.at);
    // an hour on, the same entry is sure
    expect(walk(dir).get("a.txt")).toMatch(/^f /);
  });

  test.each([
    ["a record cut short", "\0d 755 1 1.0 1.0 1 1\0a\0f 644"],
    ["a name that is not UTF-8", "\0d 755 1 1.0 1.0 1 1\0\uFFFD\0f 644 1 1.0 1.0 1 1\0"],
    ["no top", "a\0f 644 1 1.0 1.0 1 1\0"],
    ["a path where a signature belongs", "\0d 755 1 1.0 1.0 1 1\0a\0b\0"],
  ])("no tree from %s", (_, text) => {
    expect(parseWalk(text)).toBeUndefined();
  });

  test("too many ignored paths for find to match cheaply: no walk", () => {
    expect(
      walkCommand(
        Array.from({ length: 301 }, (_, i) => `f${i}`),
        Date.now(),
      ),
    ).toBeUndefined();
  });

  test("a directory that cannot be read: no walk", async () => {
    if (process.getuid?.() === 0) return; // (root reads it anyway)
    const dir = join(root, "unreadable");
    put(dir, { "closed/x": "x" });
    chmodSync(join(dir, "closed"), 0);
    expect(await walkTree(dir, [])).toBeUndefined();
    chmodSync(join(dir, "closed"), 0o755);
  });
});
