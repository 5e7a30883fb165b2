import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gitFiles, gitProvenance, planSync, runSync, syncedFiles, walkFiles } from "../src/index.ts";

// rsync runs for real; its "remote shell" runs the remote side locally, in a scratch home.
const root = mkdtempSync(join(tmpdir(), "p-sync-"));
const home = join(root, "home");
const rsh = `sh -c 'shift; cd "${home}" && eval "$*"' local`;

function tree(dir: string, files: Record<string, string>) {
  for (const [path, body] of Object.entries(files)) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), body);
  }
}
const git = (dir: string, ...args: string[]) => {
  const r = Bun.spawnSync(["git", "-C", dir, "-c", "user.email=t@t", "-c", "user.name=t", ...args]);
  if (r.exitCode !== 0) throw new Error(r.stderr.toString());
};

async function sync(source: string, dest: string) {
  await runSync(
    planSync({
      source,
      host: "local",
      dest,
      rsh,
      rsyncPath: "mkdir -p .p/workdirs && rsync",
      files: await syncedFiles(source),
    }),
  );
  return (p: string) => existsSync(join(home, dest, p));
}

beforeAll(() => mkdirSync(home));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("sync into a fresh work dir", () => {
  test("in a git repo: exactly what git does not ignore, plus .git", async () => {
    const src = join(root, "repo");
    tree(src, {
      ".gitignore": "*.log\nbuild/\n!keep.log\n",
      "a.txt": "a",
      "debug.log": "x",
      "keep.log": "kept",
      "build/out.o": "x",
      "sub/.gitignore": "secret\n",
      "sub/secret": "x",
      "sub/ok": "ok",
      "with space/ünï ✓.txt": "u",
      "excluded-by-info": "x",
      "tracked-then-deleted": "x",
    });
    git(src, "init", "-q");
    writeFileSync(join(src, ".git/info/exclude"), "excluded-by-info\n");
    git(src, "add", "-A");
    git(src, "commit", "-qm", "init");
    rmSync(join(src, "tracked-then-deleted"));
    const has = await sync(src, ".p/workdirs/one");
    for (const p of ["a.txt", "keep.log", "sub/ok", "with space/ünï ✓.txt", ".git/HEAD", ".gitignore"])
      expect(has(p)).toBe(true);
    for (const p of ["debug.log", "build", "sub/secret", "excluded-by-info", "tracked-then-deleted"])
      expect(has(p)).toBe(false);
    expect(readFileSync(join(home, ".p/workdirs/one/with space/ünï ✓.txt"), "utf8")).toBe("u");
  });

  test("outside git: nested .gitignore files, with negation, read as git would", async () => {
    const src = join(root, "plain");
    tree(src, {
      ".gitignore": "*.tmp\n!keep.tmp\n",
      "x.tmp": "",
      "keep.tmp": "",
      "x.c": "",
      "d/.gitignore": "gen/\n*.c\n!main.c\n",
      "d/gen/a": "",
      "d/src.c": "",
      "d/main.c": "",
      "d/sub/deep.tmp": "",
    });
    expect(await gitFiles(src)).toBeNull();
    expect(walkFiles(src).sort()).toEqual([".gitignore", "d/.gitignore", "d/main.c", "keep.tmp", "x.c"]);
    const has = await sync(src, ".p/workdirs/two");
    for (const p of ["x.c", "keep.tmp", "d/main.c"]) expect(has(p)).toBe(true);
    for (const p of ["x.tmp", "d/gen", "d/src.c", "d/sub"]) expect(has(p)).toBe(false);
  });

  test.each([
    [undefined, undefined],
    [0, undefined],
    [
      11,
      {
        code: "sync_failed",
        message: "file I/O error on the worker: is its disk full, or the destination not writable?",
      },
    ],
    [255, { code: "worker_unreachable", message: "ssh failed: connection closed" }],
  ])(
    "over a remote shell that does not wait for its command, rsync's 0 and the command's status %p make the sync's outcome",
    async (remote, error) => {
      // (rsync itself succeeds; the command on the worker is what failed, or nothing did)
      const plan = planSync({ source: join(root, "plain"), host: "local", dest: "relayed", rsh, files: ["x.c"] });
      const synced = runSync(plan, { sockets: { count: 0, use: () => Promise.resolve(remote) } });
      if (error) await expect(synced).rejects.toMatchObject(error);
      else expect(await synced).toBe("");
    },
  );

  test("a failing remote side is an error with a code and rsync's reason", async () => {
    const plan = planSync({ source: join(root, "plain"), host: "local", dest: "d", rsh: "false", files: ["x.c"] });
    // (which of its two words rsync says depends on whether it wrote before it saw the end)
    await expect(runSync(plan)).rejects.toMatchObject({
      code: "sync_failed",
      message: expect.stringMatching(
        /^rsync: (connection unexpectedly closed \(0 bytes received so far\) \[sender\]|\[sender\] safe_write failed to write \d+ bytes to fd \d+: Broken pipe \(32\))$/,
      ),
    });
  });
});

describe("a job's git provenance", () => {
  test("commit, branch and dirtiness, read without writing the index: a sync beside it lists .git as it is", async () => {
    const dir = join(root, "prov");
    tree(dir, { "a.txt": "a\n" });
    git(dir, "init", "-q", "-b", "main");
    git(dir, "add", ".");
    git(dir, "commit", "-qm", "one");
    // the index's stat data goes stale, which a plain git status would refresh (under index.lock)
    writeFileSync(join(dir, "a.txt"), "a\n");
    Bun.spawnSync(["touch", "-d", "1 hour ago", join(dir, ".git", "index")]);
    const before = statSync(join(dir, ".git", "index")).mtimeMs;
    const clean = await gitProvenance(dir);
    expect(clean).toMatchObject({ branch: "main", dirty: false });
    expect(clean!.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(statSync(join(dir, ".git", "index")).mtimeMs).toBe(before);
    writeFileSync(join(dir, "a.txt"), "changed\n");
    expect(await gitProvenance(dir)).toMatchObject({ dirty: true });
    expect(await gitProvenance(join(root, "home"))).toBeUndefined();
  });

  test("a new file makes it dirty (an ignored one does not); a detached HEAD has no branch; no commit yet, none", async () => {
    const dir = join(root, "prov2");
    tree(dir, { "a.txt": "a\n", ".gitignore": "*.o\n" });
    git(dir, "init", "-q", "-b", "main");
    expect(await gitProvenance(dir)).toBeUndefined();
    git(dir, "add", ".");
    git(dir, "commit", "-qm", "one");
    tree(dir, { "x.o": "ignored" });
    expect(await gitProvenance(dir)).toMatchObject({ branch: "main", dirty: false });
    tree(dir, { "new.txt": "new" });
    expect(await gitProvenance(dir)).toMatchObject({ dirty: true });
    rmSync(join(dir, "new.txt"));
    git(dir, "checkout", "-q", "--detach");
    const detached = await gitProvenance(dir);
    expect(detached).toMatchObject({ branch: null, dirty: false });
    expect(detached!.commit).toMatch(/^[0-9a-f]{40}$/);
  });
});
