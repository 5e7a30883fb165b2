import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type JobRecord, JobStore } from "@p/store";
import { jobJson } from "../src/_format.ts";
import { Dashboard, jobFilter, wholeUtf8 } from "../src/lib/ui/server.ts";
import { main as p } from "../src/main.ts";
import { inProcess, privateHome } from "./_inprocess.ts";

// The dashboard's server in this process, over a store of finished jobs (no worker is asked
// about a finished job): the token on every route, the routes, the filters, and the JSON
// shapes of p ls --json.

const TOKEN = "s3cret-token-of-the-test";
const job = (n: number, over: Partial<JobRecord> = {}): JobRecord => ({
  id: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
  worker: n % 2 ? "odd" : "even",
  connection: "w",
  command: `echo job ${n}`,
  argv: [`echo job ${n}`],
  cwd: "/src/app",
  status: "done",
  exit_code: 0,
  started_at: 1_700_000_000 + n,
  created_ms: (1_700_000_000 + n) * 1000,
  ended_at: 1_700_000_001 + n,
  synced: true,
  ...over,
});

let dir: string;
let store: JobStore;
let ui: Dashboard;
const config = () => ({ workers: [{ name: "odd", connection: "w@127.0.0.1:1" }], default_worker: "odd" });

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "p-ui-"));
  store = new JobStore(join(dir, "jobs"));
  store.save(job(1, { tags: ["nightly"], name: "build" }));
  store.save(job(2, { status: "failed", exit_code: null, error: "sync failed" }));
  store.save(job(3, { exit_code: 2, group: "abcdef00-0000-4000-8000-000000000000" }));
  store.save(job(4, { status: "stopped", exit_code: 143, group: "abcdef00-0000-4000-8000-000000000000" }));
  ui = new Dashboard({ token: TOKEN, store, config });
});
afterAll(() => {
  ui.close();
  rmSync(dir, { recursive: true, force: true });
});

const at = (path: string, init: RequestInit = {}) => ui.fetch(new Request(`http://127.0.0.1:1${path}`, init));
const bearer = (token = TOKEN) => ({ headers: { authorization: `Bearer ${token}` } });

describe("the token", () => {
  const routes: [string, string][] = [
    ["GET", "/"],
    ["GET", "/app.mjs"],
    ["GET", "/app.css"],
    ["GET", "/api/workers"],
    ["GET", "/api/jobs"],
    ["GET", `/api/jobs/${job(1).id}`],
    ["GET", `/api/jobs/${job(1).id}/log`],
    ["POST", `/api/jobs/${job(1).id}/stop`],
    ["POST", `/api/jobs/${job(1).id}/rerun`],
    ["GET", "/nothing/here"],
  ];
  test.each(routes)("%s %s without it, or with another, is 403 and does nothing", async (method, path) => {
    for (const init of [{}, bearer("s3cret-token-of-the-tesT"), bearer("short")]) {
      const r = await at(path, { method, ...init });
      expect(r.status).toBe(403);
      expect((await r.json()).error.code).toBe("forbidden");
    }
    expect((await at(`${path}?token=wrong`, { method })).status).toBe(403);
    expect(store.get(job(1).id)?.status).toBe("done");
  });

  test("as ?token= or as a bearer token it opens the page and the API", async () => {
    const page = await at(`/?token=${TOKEN}`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(page.headers.get("referrer-policy")).toBe("no-referrer");
    const html = await page.text();
    expect(html).toContain(`<meta name="p-token" content="${TOKEN}" />`);
    expect(html).toContain(`/app.mjs?token=${TOKEN}`);
    expect((await at(`/app.mjs?token=${TOKEN}`)).headers.get("content-type")).toContain("javascript");
    expect((await at("/api/jobs", bearer())).status).toBe(200);
  });
});

describe("the API", () => {
  test("GET /api/jobs: every job as p ls -a --json shows it, newest first", async () => {
    const r = await at("/api/jobs", bearer());
    const jobs = await r.json();
    expect(jobs).toEqual([4, 3, 2, 1].map((n) => JSON.parse(JSON.stringify(jobJson(store.get(job(n).id)!)))));
  });

  test.each<[string, number[]]>([
    ["worker=odd", [3, 1]],
    ["status=failed", [2]],
    ["status=active", []],
    ["tag=nightly", [1]],
    ["group=abcdef", [4, 3]],
    ["q=BUILD", [1]],
    ["q=job%204", [4]],
    ["worker=even&status=stopped", [4]],
  ])("GET /api/jobs?%s", async (query, expected) => {
    const jobs = (await (await at(`/api/jobs?${query}`, bearer())).json()) as { id: string }[];
    expect(jobs.map((j) => j.id)).toEqual(expected.map((n) => job(n).id));
  });

  test("GET /api/jobs answers 304 to the ETag of an unchanged list, and 200 once it changed", async () => {
    const first = await at("/api/jobs", bearer());
    const etag = first.headers.get("etag")!;
    expect(etag).toMatch(/^".+"$/);
    const again = await at("/api/jobs", { headers: { ...bearer().headers, "if-none-match": etag } });
    expect(again.status).toBe(304);
    store.update(job(1).id, { tags: ["nightly", "new"] });
    const changed = await at("/api/jobs", { headers: { ...bearer().headers, "if-none-match": etag } });
    expect(changed.status).toBe(200);
  });

  test("GET /api/jobs/:id takes an id or a name; an unknown one is 404, a bad one 400", async () => {
    const byName = await (await at("/api/jobs/build", bearer())).json();
    expect(byName.id).toBe(job(1).id);
    expect((await (await at(`/api/jobs/${job(2).id}`, bearer())).json()).status).toBe("failed");
    const missing = await at("/api/jobs/deadbeef", bearer());
    expect(missing.status).toBe(404);
    expect((await missing.json()).error).toEqual({
      code: "job_not_found",
      message: 'no job matches "deadbeef"; see p ls -a',
    });
    expect((await at("/api/jobs/no!such", bearer())).status).toBe(400);
  });

  test("POST stop on a job that has ended stops nothing and says so, as p stop --json does", async () => {
    const r = await at(`/api/jobs/${job(3).id}/stop`, { method: "POST", ...bearer() });
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ id: job(3).id, status: "done", exit_code: 2, stopped: false });
  });

  test("GET on stop is 405; what is not a route is 404", async () => {
    const r = await at(`/api/jobs/${job(3).id}/stop`, bearer());
    expect(r.status).toBe(405);
    expect(r.headers.get("allow")).toBe("POST");
    expect((await at("/api/nothing", bearer())).status).toBe(404);
  });

  test("GET /api/workers: the registered workers as p worker ls --json, with what a probe found", async () => {
    const workers = await (await at("/api/workers", bearer())).json();
    expect(workers).toEqual([
      {
        name: "odd",
        connection: "w@127.0.0.1:1",
        kind: "ssh",
        default: true,
        check: { reachable: false, error: expect.stringContaining("worker odd is unreachable") },
      },
    ]);
  });
});

describe("jobFilter", () => {
  const j = job(7, { tags: ["gpu", "nightly"], name: "train", group: "0123abcd-0000-4000-8000-000000000000" });
  test.each<[string, boolean]>([
    ["", true],
    ["worker=odd", true],
    ["worker=even", false],
    ["status=done", true],
    ["status=active", false],
    ["tag=gpu", true],
    ["tag=gp", false],
    ["group=0123", true],
    ["group=0124", false],
    ["q=TRAIN", true],
    ["q=src/app", true],
    ["q=echo job 7", true],
    ["q=nope", false],
  ])("%p keeps it: %p", (query, kept) => {
    expect(jobFilter(new URLSearchParams(query))(j)).toBe(kept);
  });
});

describe("wholeUtf8", () => {
  const bytes = (...b: number[]) => new Uint8Array(b);
  test.each<[string, Uint8Array, number]>([
    ["ascii", bytes(0x61, 0x62), 2],
    ["empty", bytes(), 0],
    ["a whole é", bytes(0x61, 0xc3, 0xa9), 3],
    ["half an é", bytes(0x61, 0xc3), 1],
    ["a whole €", bytes(0xe2, 0x82, 0xac), 3],
    ["two thirds of €", bytes(0x61, 0xe2, 0x82), 1],
    ["a whole emoji", bytes(0xf0, 0x9f, 0x98, 0x80), 4],
    ["three quarters of an emoji", bytes(0x61, 0xf0, 0x9f, 0x98), 1],
    ["a stray continuation byte is passed on", bytes(0x61, 0x80, 0x80, 0x80, 0x80), 5],
  ])("%s", (_, input, cut) => {
    expect(wholeUtf8(input)).toBe(cut);
  });
});

describe("p ui's arguments", () => {
  let home: ReturnType<typeof privateHome>;
  beforeAll(() => {
    home = privateHome();
  });
  afterAll(() => home.restore());

  test.each<[string[], RegExp]>([
    [["ui", "--port", "http"], /--port "http" is not a port: give a number from 1 to 65535, or none for any/],
    [["ui", "--port", "70000"], /--port "70000" is not a port/],
    [["ui", "now"], /usage: p ui \[--port N\] \[--no-open\]/],
    [["ui", "--open"], /--open/],
  ])("p %p is refused in one line, exit 64", async (argv, message) => {
    const r = await inProcess(p, argv);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });

  test("a port in use is said, with what to do", async () => {
    const taken = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
    try {
      const r = await inProcess(p, ["ui", "--no-open", "--port", String(taken.port)]);
      expect(r.code).toBe(64);
      expect(r.stderr).toContain(`cannot serve on 127.0.0.1:${taken.port} (it is in use); give another --port`);
      expect(r.stdout).toBe("");
    } finally {
      taken.stop(true);
    }
  });
});
