import { afterAll, describe, expect, test } from "bun:test";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  assertWorkerName,
  cacheDir,
  configDir,
  dataDir,
  type JobRecord,
  JobStore,
  loadConfig,
  pickWorker,
  RESERVED_NAMES,
  saveConfig,
  writeFileAtomic,
  writeFileAtomicAsync,
} from "../src/index.ts";

const root = mkdtempSync(join(tmpdir(), "p-store-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("XDG paths", () => {
  test.each([
    [{ HOME: "/h" }, "/h/.config/p", "/h/.local/share/p", "/h/.cache/p"],
    [{ HOME: "/h", XDG_CONFIG_HOME: "/c", XDG_DATA_HOME: "/d", XDG_CACHE_HOME: "/k" }, "/c/p", "/d/p", "/k/p"],
    [
      { HOME: "/h", XDG_CONFIG_HOME: "rel", XDG_DATA_HOME: "", XDG_CACHE_HOME: "k" },
      "/h/.config/p",
      "/h/.local/share/p",
      "/h/.cache/p",
    ],
  ])("%p", (env, config, data, cache) => {
    expect(configDir(env)).toBe(config);
    expect(dataDir(env)).toBe(data);
    expect(cacheDir(env)).toBe(cache);
  });
});

describe("config", () => {
  const file = (name: string, text: string) => {
    const p = join(root, name);
    writeFileSync(p, text);
    return p;
  };

  test("round-trips, written private", () => {
    const p = join(root, "c/config.yaml");
    const config = { default_worker: "beefy", workers: [{ name: "beefy", connection: "me@10.0.0.5:2222" }] };
    saveConfig(config, p);
    expect(loadConfig(p)).toEqual(config);
    expect(statSync(p).mode & 0o777).toBe(0o600);
    expect(statSync(join(root, "c")).mode & 0o777).toBe(0o700);
  });

  test("a missing file is an empty config", () => {
    expect(loadConfig(join(root, "nope.yaml"))).toEqual({ workers: [] });
  });

  test.each([
    ["broken.yaml", "workers:\n  - name: a\n    connection: [unclosed\n", /broken\.yaml:\d+: /],
    ["notlist.yaml", "workers: 3\n", /workers must be a list/],
    ["noconn.yaml", "workers:\n  - name: a\n", /workers\[0\] needs a name and a connection/],
    ["badname.yaml", "workers:\n  - name: a b\n    connection: h\n", /worker name "a b" is not valid/],
    ["twice.yaml", "workers:\n  - {name: a, connection: h}\n  - {name: a, connection: h}\n", /listed twice/],
    [
      "reserved.yaml",
      "workers:\n  - {name: ls, connection: h}\n",
      /worker name "ls" is not valid: it is a command of p/,
    ],
    ["forward.yaml", 'workers: []\nforward_env: ["A B"]\n', /forward_env must be false or a list/],
    ["tty.yaml", "workers: []\ntty: always\n", /tty must be auto/],
    ["notify.yaml", "workers: []\nnotify:\n  command: 3\n", /notify takes command/],
    ["notify2.yaml", "workers: []\nnotify:\n  email: me\n", /notify takes command/],
    ["slurm.yaml", "workers:\n  - {name: a, connection: h, slurm: {queue: x}}\n", /slurm takes partition and account/],
  ])("%p is refused, naming the file", (name, text, why) => {
    const p = file(name, text);
    expect(() => loadConfig(p)).toThrow(why);
    expect(() => loadConfig(p)).toThrow(p);
  });

  test("a Slurm worker, a root and notify are kept as written", () => {
    const p = file(
      "kept.yaml",
      "workers:\n  - {name: a, connection: h, slurm: {partition: gpu}, root: /scratch/me/p}\n" +
        "notify:\n  command: cat >/tmp/x\n  desktop: false\n",
    );
    expect(loadConfig(p)).toEqual({
      workers: [{ name: "a", connection: "h", slurm: { partition: "gpu" }, root: "/scratch/me/p" }],
      notify: { command: "cat >/tmp/x", desktop: false },
    });
  });

  test("pickWorker names what exists", () => {
    const config = { default_worker: "a", workers: [{ name: "a", connection: "h" }] };
    expect(pickWorker(config).name).toBe("a");
    expect(() => pickWorker(config, "b")).toThrow(/no worker named "b" \(known: a\)/);
    expect(() => pickWorker({ workers: [] })).toThrow(/p worker register/);
  });

  test.each(["a b", "a/b", "../x", "-x", ".hidden", "", "x".repeat(65), "a;b"])("worker name %p is refused", (name) => {
    expect(() => assertWorkerName(name)).toThrow(/is not valid/);
  });

  test.each([...RESERVED_NAMES, "LS", "All"])("worker name %p is a command of p, and refused", (name) => {
    expect(() => assertWorkerName(name)).toThrow(/is not valid: it is a command of p/);
  });

  test("forward_env and tty are read and written back as they are", () => {
    const text = "workers: []\nforward_env:\n  - MY_*\n  - TOKEN\ntty: auto\n";
    expect(loadConfig(file("extras.yaml", text))).toEqual({ workers: [], forward_env: ["MY_*", "TOKEN"], tty: "auto" });
    expect(loadConfig(file("off.yaml", "workers: []\nforward_env: false\n")).forward_env).toBe(false);
  });
});

describe("atomic writes", () => {
  test.each([
    ["writeFileAtomic", async (path: string, data: string) => writeFileAtomic(path, data)],
    ["writeFileAtomicAsync", writeFileAtomicAsync],
  ])("%s replaces a file whole, private, in a directory it makes; a failed write leaves nothing", async (_, write) => {
    const dir = join(root, "atomic", _);
    await write(join(dir, "sub", "f"), "one");
    await write(join(dir, "sub", "f"), "two");
    expect(readFileSync(join(dir, "sub", "f"), "utf8")).toBe("two");
    expect(statSync(join(dir, "sub", "f")).mode & 0o777).toBe(0o600);
    // (a directory where the file should go: the rename fails)
    mkdirSync(join(dir, "sub", "d", "x"), { recursive: true });
    await expect(write(join(dir, "sub", "d"), "three")).rejects.toThrow();
    expect(readdirSync(join(dir, "sub")).sort()).toEqual(["d", "f"]);
  });
});

describe("JobStore", () => {
  const store = new JobStore(join(root, "jobs"));
  const job = (id: string, started_at: number): JobRecord => ({
    id,
    worker: "w",
    connection: "h",
    command: "true",
    argv: ["true"],
    cwd: "/x",
    status: "running",
    exit_code: null,
    started_at,
    ended_at: null,
    synced: true,
  });
  const a = "aaaa1111-0000-4000-8000-000000000001";
  const b = "aaaa2222-0000-4000-8000-000000000002";

  test("saves, lists oldest first, and skips a corrupt record with a reason", () => {
    store.save(job(b, 20));
    store.save(job(a, 10));
    writeFileSync(join(store.dir, "garbage.json"), "{");
    const skipped: string[] = [];
    expect(store.list((f) => skipped.push(f)).map((j) => j.id)).toEqual([a, b]);
    expect(skipped).toEqual([join(store.dir, "garbage.json")]);
    expect(readdirSync(store.dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    expect(statSync(join(store.dir, `${a}.json`)).mode & 0o777).toBe(0o600);
  });

  test("a group's jobs made in the same millisecond list in the group's order, whatever their ids", () => {
    const groupStore = new JobStore(join(root, "group-jobs"));
    const ids = ["ffff", "0000", "8888"].map((h) => `${h}0000-0000-4000-8000-000000000001`);
    const group = "cccc0000-0000-4000-8000-000000000009";
    for (const [i, id] of ids.entries()) groupStore.save({ ...job(id, 50), created_ms: 50_000, group, group_index: i });
    // a job of no group, made in that millisecond too
    groupStore.save({ ...job("11110000-0000-4000-8000-000000000001", 50), created_ms: 50_000 });
    expect(groupStore.list().map((j) => j.id.slice(0, 4))).toEqual(["1111", "ffff", "0000", "8888"]);
  });

  test.each([
    ["aaaa1", a],
    ["AAAA2", b],
    [a, a],
  ])("prefix %p finds %p", (prefix, id) => {
    expect(store.find(prefix).id).toBe(id);
  });

  test.each([
    ["aaaa", /ambiguous: it matches aaaa1111-000, aaaa2222-000/],
    ["ffff", /no job matches "ffff"/],
    ["../etc", /is not valid/],
    ["", /no job matches|ambiguous|not valid/],
  ])("prefix %p fails: %p", (prefix, why) => {
    expect(() => store.find(prefix)).toThrow(why);
  });

  test("a name finds its job before any prefix does; a name two jobs share is refused", () => {
    const c = "aaaa3333-0000-4000-8000-000000000003";
    const d = "aaaa4444-0000-4000-8000-000000000004";
    store.save({ ...job(c, 30), name: "aaaa" });
    expect(store.find("aaaa").id).toBe(c);
    store.save({ ...job(d, 40), name: "bench-1" });
    expect(store.find("bench-1").id).toBe(d);
    store.save({ ...job("aaaa5555-0000-4000-8000-000000000005", 50), name: "bench-1" });
    expect(() => store.find("bench-1")).toThrow(
      /job name "bench-1" is ambiguous: 2 jobs have it \(aaaa4444, aaaa5555\)/,
    );
    expect(() => store.find("nightly")).toThrow(/no job is named "nightly"/);
    for (const id of [c, d, "aaaa5555-0000-4000-8000-000000000005"]) store.remove(id);
  });

  test("named: a job by its id or prefix; a group by its id or prefix, with the group's id, in its order", () => {
    const g = "bbbb0000-0000-4000-8000-00000000000b";
    const m1 = "cccc1111-0000-4000-8000-000000000001";
    const m2 = "cccc2222-0000-4000-8000-000000000002";
    const solo = "dddd0000-0000-4000-8000-00000000000d";
    const lone = "eeee0000-0000-4000-8000-00000000000e";
    store.save({ ...job(m2, 60), group: g, group_index: 1 });
    store.save({ ...job(m1, 61), group: g, group_index: 0 });
    store.save({ ...job(solo, 62), group: "ffff0000-0000-4000-8000-00000000000f", group_index: 0 });
    store.save(job(lone, 63));
    const ids = (r: { jobs: JobRecord[]; group?: string }) => ({ ids: r.jobs.map((j) => j.id), group: r.group });
    expect(ids(store.named("bbbb"))).toEqual({ ids: [m1, m2], group: g });
    expect(ids(store.named(g))).toEqual({ ids: [m1, m2], group: g });
    expect(ids(store.named("cccc1"))).toEqual({ ids: [m1], group: undefined });
    expect(ids(store.named(m2.toUpperCase()))).toEqual({ ids: [m2], group: undefined });
    // a group of one is a group when named by its id, and one job when named by the job's
    expect(ids(store.named("ffff"))).toEqual({ ids: [solo], group: "ffff0000-0000-4000-8000-00000000000f" });
    expect(ids(store.named("dddd"))).toEqual({ ids: [solo], group: undefined });
    expect(ids(store.named("eeee"))).toEqual({ ids: [lone], group: undefined });
    for (const id of [m1, m2, solo, lone]) store.remove(id);
  });

  test("a path-like id never reaches the file system", () => {
    expect(() => store.get("../../etc/passwd")).toThrow(/not a UUID/);
  });

  test("an update never brings back a record removed meanwhile", () => {
    const c = "aaaa3333-0000-4000-8000-000000000003";
    store.save(job(c, 30));
    expect(store.update(c, { status: "done", exit_code: 0 })).toMatchObject({
      status: "done",
      exit_code: 0,
      command: "true",
    });
    expect(store.update(c, (j) => ({ ...j, exit_code: 7 }))?.exit_code).toBe(7);
    store.remove(c);
    expect(store.update(c, { status: "done" })).toBeUndefined();
    expect(existsSync(join(store.dir, `${c}.json`))).toBe(false);
    expect(readdirSync(store.dir).filter((f) => f.endsWith(".lock"))).toEqual([]);
  });

  test("a lock left by a process that died is taken over", () => {
    const d = "aaaa4444-0000-4000-8000-000000000004";
    store.save(job(d, 40));
    const lock = join(store.dir, `${d}.lock`);
    writeFileSync(lock, "");
    const old = new Date(Date.now() - 60_000);
    utimesSync(lock, old, old);
    expect(store.update(d, { exit_code: 1 })?.exit_code).toBe(1);
    expect(existsSync(lock)).toBe(false);
  });

  test("updates from many processes at once are never lost", async () => {
    const e = "aaaa5555-0000-4000-8000-000000000005";
    store.save({ ...job(e, 50), exit_code: 0 });
    const script = `import { JobStore } from ${JSON.stringify(join(import.meta.dir, "../src/index.ts"))};
const s = new JobStore(${JSON.stringify(store.dir)});
for (let i = 0; i < 40; i++) s.update(${JSON.stringify(e)}, (j) => ({ ...j, exit_code: (j.exit_code ?? 0) + 1 }));`;
    const procs = Array.from({ length: 6 }, () => Bun.spawn([process.execPath, "-e", script], { stderr: "inherit" }));
    expect(await Promise.all(procs.map((p) => p.exited))).toEqual([0, 0, 0, 0, 0, 0]);
    expect(store.get(e)?.exit_code).toBe(240);
  });

  test("a listing is kept in one file: a still directory is answered from it alone, and after a change only what changed is read again", () => {
    const s = new JobStore(join(root, "indexed", "jobs"));
    const ids = ["bbbb0001", "bbbb0002", "bbbb0003"].map((p) => `${p}-0000-4000-8000-000000000000`);
    for (const [i, id] of ids.entries()) s.save(job(id, 100 + i));
    writeFileSync(join(s.dir, "broken.json"), "{");
    const past = new Date(Date.now() - 60_000);
    const settle = () => {
      for (const f of [...readdirSync(s.dir).map((f) => join(s.dir, f)), s.dir]) utimesSync(f, past, past);
    };
    // still changing: listed, and indexed with no stamps (a whole read reads each again)
    expect(s.list().map((j) => j.id)).toEqual(ids);
    const index = () => JSON.parse(readFileSync(`${s.dir}.index.json`, "utf8"));
    expect(index().stamps).toEqual(["-", "-", "-"]);
    expect(index().dir_mtime_ns).toBeNull();
    settle();
    expect(s.list().map((j) => j.id)).toEqual(ids);
    expect(index().dir_mtime_ns).toBe(String(statSync(s.dir, { bigint: true }).mtimeNs));
    // from the index: the same records, the same warning
    const skipped: string[] = [];
    expect(s.list((f) => skipped.push(f))).toEqual(ids.map((id, i) => job(id, 100 + i)));
    expect(skipped).toEqual([join(s.dir, "broken.json")]);
    // a record rewritten behind the index's back with its inode, size and mtime kept: what
    // the index holds of it stands, first while the directory is still, then after another
    // record changes, which alone is read again
    const third = join(s.dir, `${ids[2]}.json`);
    writeFileSync(third, readFileSync(third, "utf8").replace('"running"', '"unknown"'));
    utimesSync(third, past, past);
    expect(s.list()[2]!.status).toBe("running");
    s.update(ids[0]!, { status: "done", exit_code: 3 });
    expect(s.list().map((j) => j.status)).toEqual(["done", "running", "running"]);
    // a change, an addition and a removal, each seen at once
    settle();
    s.list();
    const added = "bbbb0004-0000-4000-8000-000000000000";
    s.save(job(added, 200));
    expect(s.list().map((j) => j.id)).toEqual([...ids, added]);
    settle();
    s.list();
    s.remove(ids[1]!);
    expect(s.list().map((j) => j.id)).toEqual([ids[0], ids[2], added]);
    s.update(ids[2]!, { exit_code: 9 });
    expect(s.list()[1]).toMatchObject({ status: "unknown", exit_code: 9 });
  });

  test("after p changes records, a listing reads only those its journal names; after a change by anything else, the whole directory", () => {
    const s = new JobStore(join(root, "journal", "jobs"));
    const ids = ["cccc0001", "cccc0002", "cccc0003"].map((p) => `${p}-0000-4000-8000-000000000000`);
    for (const [i, id] of ids.entries()) s.save(job(id, 100 + i));
    const past = new Date(Date.now() - 60_000);
    for (const f of [...readdirSync(s.dir).map((f) => join(s.dir, f)), s.dir]) utimesSync(f, past, past);
    s.list();
    expect(readFileSync(`${s.dir}.changed`, "utf8")).toBe(ids.map((id) => `${id}\n`).join(""));
    // rewritten in place behind p's back (the directory unchanged), its size changed: only
    // a read of the whole directory would see it
    const third = join(s.dir, `${ids[2]}.json`);
    writeFileSync(third, readFileSync(third, "utf8").replace('"command": "true"', '"command": "false"'));
    // p changes the first and adds one: the journal names them, and only they are read
    s.update(ids[0]!, { status: "done" });
    const added = "cccc0004-0000-4000-8000-000000000000";
    s.save(job(added, 200));
    const listed = s.list();
    expect(listed.map((j) => [j.id, j.status, j.command])).toEqual([
      [ids[0], "done", "true"],
      [ids[1], "running", "true"],
      [ids[2], "running", "true"],
      [added, "running", "true"],
    ]);
    // many changed since the index: what was read is kept, and the journal read from there
    const many = Array.from({ length: 40 }, (_, i) => `dddd${String(i).padStart(4, "0")}-0000-4000-8000-000000000000`);
    for (const [i, id] of many.entries()) s.save(job(id, 400 + i));
    expect(s.list()).toHaveLength(44);
    const kept = JSON.parse(readFileSync(`${s.dir}.index.json`, "utf8"));
    expect([kept.records.length, kept.journal.size]).toEqual([44, statSync(`${s.dir}.changed`).size]);
    for (const id of many) s.remove(id);
    expect(s.list()).toHaveLength(4);
    // a record another program put there, once the journal is older than the directory:
    // the whole directory is read
    utimesSync(`${s.dir}.changed`, past, past);
    const other = "cccc0005-0000-4000-8000-000000000000";
    writeFileSync(join(s.dir, `${other}.json`), JSON.stringify(job(other, 300)));
    expect(s.list().map((j) => [j.id, j.command])).toEqual([
      [ids[0], "true"],
      [ids[1], "true"],
      [ids[2], "false"],
      [added, "true"],
      [other, "true"],
    ]);
    // a journal that is not p's is not trusted either
    s.list();
    writeFileSync(`${s.dir}.changed`, "not an id\n", { flag: "a" });
    const fourth = join(s.dir, `${added}.json`);
    writeFileSync(fourth, readFileSync(fourth, "utf8").replace('"command": "true"', '"command": "false"'));
    s.remove(other);
    expect(s.list().map((j) => [j.id, j.command])).toEqual([
      [ids[0], "true"],
      [ids[1], "true"],
      [ids[2], "false"],
      [added, "false"],
    ]);
  });
});
