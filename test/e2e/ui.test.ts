import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { JobStore } from "../../packages/store/src/index.ts";
import { p, root, scratch, spawnP, startWorkers, type Workers } from "./_harness.ts";

// The dashboard, as a user meets it: the compiled p ui against real sshd workers, in a real
// browser (Debian's headless Chromium, driven by puppeteer-core; nothing downloads a
// browser), and its API over HTTP. Screenshots go where the tests keep artifacts.
setDefaultTimeout(60_000);

const ARTIFACTS = process.env.P_TEST_ARTIFACTS ?? join(root, "test", "artifacts");
const CHROMIUM = Bun.which("chromium") ?? Bun.which("chromium-browser") ?? "/usr/bin/chromium";

let w: Workers;
let env: Record<string, string>;
let ui: ReturnType<typeof spawnP>;
let base: string; // http://127.0.0.1:<port>
let token: string;
let browser: Browser;
let page: Page;
let live: string; // a job that prints a line every half second until stopped

const api = (path: string, init: RequestInit = {}) =>
  fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...init.headers } });
const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `ui-${name}.png`) as `${string}.png` });
const lsJson = async () => JSON.parse((await p(["ls", "-a", "--json"], { env })).stdout) as Record<string, unknown>[];

/** The first line p ui prints: the address with its token. */
async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`p ui ended before printing its address: ${JSON.stringify(text)}`);
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return text.split("\n")[0]!;
}

/** The events of a server-sent event stream, until it ends (or `enough` says so). */
async function events(res: Response, enough = (_: { event: string }[]) => false) {
  const out: { event: string; id?: string; data: unknown }[] = [];
  const reader = res.body!.getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += new TextDecoder().decode(value);
    let cut: number;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const frame = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      const field = (name: string) => frame.match(new RegExp(`^${name}: (.*)$`, "m"))?.[1];
      if (field("event"))
        out.push({ event: field("event")!, ...(field("id") && { id: field("id") }), data: JSON.parse(field("data")!) });
    }
    if (enough(out)) {
      await reader.cancel();
      break;
    }
  }
  return out;
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  w = startWorkers();
  env = w.env;
  expect((await p(["worker", "register", "p-w1"], { env })).code).toBe(0);
  expect((await p(["worker", "register", "p-w2", "--slots", "2"], { env })).code).toBe(0);
  const started = await p(
    ["-d", "--tag", "live", "--", 'for i in $(seq 1 200); do printf "\\033[32mtick\\033[0m %s\\n" $i; sleep 0.5; done'],
    { env },
  );
  live = started.stdout.trim();
  ui = spawnP(["ui", "--no-open"], { env });
  const url = await firstLine(ui.stdout);
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{20,}$/);
  [base, token] = [url.split("/?")[0]!, url.split("token=")[1]!];
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    pipe: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });
});

afterAll(async () => {
  await browser?.close();
  ui?.kill("SIGINT");
  await ui?.exited;
  await p(["prune", "--force"], { env });
  w.stop();
});

describe("the API", () => {
  test("without the token every request is 403, and nothing is done", async () => {
    for (const [method, path] of [
      ["GET", "/"],
      ["GET", "/api/jobs"],
      ["GET", "/api/workers"],
      ["GET", `/api/jobs/${live}/log`],
      ["POST", `/api/jobs/${live}/stop`],
      ["POST", `/api/jobs/${live}/rerun`],
    ] as const) {
      expect((await fetch(`${base}${path}`, { method })).status).toBe(403);
      expect((await fetch(`${base}${path}?token=x${token}`, { method })).status).toBe(403);
      const wrong = await fetch(`${base}${path}`, { method, headers: { authorization: "Bearer nope" } });
      expect(wrong.status).toBe(403);
    }
    const jobs = await lsJson();
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({ id: live, status: "running" });
  });

  test("GET /api/jobs and /api/workers answer as p ls -a --json and p worker ls --json do", async () => {
    const jobs = (await (await api("/api/jobs")).json()) as Record<string, unknown>[];
    const { duration_s: _, ...fromLs } = (await lsJson())[0]!;
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject(fromLs);
    const workers = (await (await api("/api/workers")).json()) as Record<string, unknown>[];
    expect(workers.map((x) => [x.name, x.kind, x.default, x.slots, x.slots_in_use])).toEqual([
      ["p-w1", "ssh", true, undefined, undefined],
      ["p-w2", "ssh", false, 2, 0],
    ]);
    for (const x of workers) expect(x.check).toMatchObject({ reachable: true, rsync: true });
  });

  test("GET /api/jobs/:id/log: the output as events, then the end; from Last-Event-ID, what follows it", async () => {
    const id = (await p(["-d", "--", "printf 'a\\nb\\n'; printf 'c\\n'; exit 5"], { env })).stdout.trim();
    expect((await p(["wait", id], { env })).code).toBe(5);
    const all = await events(await api(`/api/jobs/${id}/log`));
    const text = all.flatMap((e) => (e.event === "output" ? [(e.data as { text: string }).text] : [])).join("");
    expect(text).toBe("a\nb\nc\n");
    expect(all.at(-1)).toMatchObject({ event: "end", data: { id, status: "done", exit_code: 5 } });
    const rest = await events(await api(`/api/jobs/${id}/log`, { headers: { "last-event-id": "2" } }));
    expect(rest.filter((e) => e.event === "output").map((e) => (e.data as { text: string }).text)).toEqual(["b\nc\n"]);
    const ids = all.filter((e) => e.event === "output").map((e) => Number(e.id));
    expect(ids.at(-1)).toBe(6);
  });

  test("a live job's log streams as it is written, ANSI colours as HTML", async () => {
    const seen = await events(await api(`/api/jobs/${live}/log`), (got) => got.length >= 3);
    const first = seen[0]!.data as { text: string; html: string };
    expect(first.text).toStartWith("\x1b[32mtick\x1b[0m 1\n");
    expect(first.html).toStartWith('<span style="color:rgb(0,187,0)">tick</span> 1\n');
  });
});

describe("the page", () => {
  test("shows the workers and the job started by p -d, live", async () => {
    const t0 = performance.now();
    await page.goto(`${base}/?token=${token}`);
    await page.waitForSelector(`.row[data-id="${live}"] [data-status="running"]`);
    await page.waitForSelector('.worker[data-worker="p-w1"] .dot.up');
    await page.waitForSelector('.worker[data-worker="p-w2"] .dot.up');
    expect(performance.now() - t0).toBeLessThan(5000);
    const cards = await page.$$eval(".worker", (els) => els.map((e) => e.textContent));
    expect(cards[0]).toContain("p-w1");
    expect(cards[1]).toContain("0/2 slots in use");
    await shot("list");
  });

  test("a job's page streams its log with colours, and Stop stops it", async () => {
    await page.click(`.row[data-id="${live}"]`);
    await page.waitForFunction(() => document.querySelector("pre.log")?.textContent?.includes("tick 1\n"));
    const lines = () => page.$eval("pre.log", (e) => (e.textContent ?? "").split("\n").length);
    const before = await lines();
    await page.waitForFunction(
      (n) => (document.querySelector("pre.log")?.textContent ?? "").split("\n").length > n,
      {},
      before + 1,
    );
    const log = await page.$eval("pre.log", (e) => ({ text: e.textContent, html: e.innerHTML }));
    expect(log.text).not.toContain("\x1b");
    expect(log.text).not.toContain("[32m");
    expect(log.html).toContain('<span style="color:rgb(0,187,0)">tick</span>');
    await shot("job-running");
    await page.click("button[name=stop]");
    await page.waitForSelector('.job [data-status="stopped"]', { timeout: 20_000 });
    await page.waitForFunction(() => document.querySelector("pre.log")?.textContent?.includes("— stopped —"));
    await shot("job-stopped");
    expect((await lsJson()).find((j) => j.id === live)).toMatchObject({ status: "stopped" });
  });

  test("Rerun starts the job again and shows the new one", async () => {
    await page.click("button[name=rerun]");
    await page.waitForFunction(
      (old) => /^#\/jobs\/[0-9a-f-]{36}$/.test(location.hash) && !location.hash.includes(old),
      {},
      live,
    );
    const again = decodeURIComponent((await page.evaluate(() => location.hash)).slice("#/jobs/".length));
    await page.waitForFunction(() => document.querySelector("pre.log")?.textContent?.includes("tick 1\n"));
    const rerun = (await lsJson()).find((j) => j.id === again);
    expect(rerun).toMatchObject({ rerun_of: live, tags: ["live"], worker: "p-w1" });
    const stopped = await (await api(`/api/jobs/${again}/stop`, { method: "POST" })).json();
    expect(stopped).toMatchObject({ id: again, status: "stopped", stopped: true });
  });

  test("thousands of jobs: newest first, only the rows in sight in the page, the search narrows at once", async () => {
    const store = new JobStore(join(env.XDG_DATA_HOME!, "p", "jobs"));
    const t = Math.floor(Date.now() / 1000) - 100_000;
    const cwd = scratch("many");
    for (let i = 0; i < 3000; i++)
      store.save({
        id: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
        worker: i % 2 ? "p-w1" : "p-w2",
        connection: i % 2 ? "p-w1" : "p-w2",
        command: `make test SEED=${i}`,
        argv: [`make test SEED=${i}`],
        cwd,
        status: i % 7 ? "done" : "failed",
        exit_code: i % 7 ? 0 : null,
        started_at: t + i,
        created_ms: (t + i) * 1000,
        ended_at: t + i + 5,
        synced: true,
      });
    const t0 = performance.now();
    await page.goto(`${base}/?token=${token}#/`);
    await page.waitForFunction(() => document.querySelector(".count")?.textContent?.startsWith("3003 jobs"));
    const shown = performance.now() - t0;
    expect(shown).toBeLessThan(4000);
    expect(await page.$$eval(".row", (rows) => rows.length)).toBeLessThan(80);
    // newest first: the jobs p ran, then SEED=2999
    const firstRows = await page.$$eval(".row", (rows) => rows.slice(0, 5).map((r) => r.textContent ?? ""));
    expect(firstRows.findIndex((r) => r.includes("SEED=2999"))).toBe(3);
    await shot("many");
    // the oldest is at the bottom
    await page.$eval(".scroller", (s) => s.scrollTo(0, s.scrollHeight));
    await page.waitForFunction(() =>
      [...document.querySelectorAll(".row")].some((r) => r.textContent?.includes("SEED=0")),
    );
    const t1 = performance.now();
    await page.type("input[type=search]", "SEED=1234");
    await page.waitForFunction(() => document.querySelectorAll(".row").length === 1);
    expect(performance.now() - t1).toBeLessThan(2000);
    expect(await page.$eval(".row", (r) => r.textContent)).toContain("make test SEED=1234");
    // a filter from the menus, kept in the address
    await page.$eval("input[type=search]", (input) => {
      (input as HTMLInputElement).value = "";
      input.dispatchEvent(new Event("input"));
    });
    await page.select("select[name=status]", "failed");
    await page.waitForFunction(() => document.querySelector(".count")?.textContent === "429 of 3003 jobs");
    expect(await page.evaluate(() => location.hash)).toBe("#/?status=failed");
    await shot("many-failed");
    // (records of jobs that never ran: nothing of theirs is on a worker for p prune to remove)
    for (let i = 0; i < 3000; i++) store.remove(`00000000-0000-4000-8000-${String(i).padStart(12, "0")}`);
  });

  test("a rerun records the commit its files come from now, not the one the dashboard saw first", async () => {
    const repo = scratch("ui-repo");
    const git = (...a: string[]) =>
      Bun.spawnSync(["git", "-C", repo, "-c", "user.email=t@t", "-c", "user.name=t", ...a])
        .stdout.toString()
        .trim();
    const commit = (body: string) => {
      writeFileSync(join(repo, "f"), body);
      git("add", "-A");
      git("commit", "-qm", body);
      return git("rev-parse", "HEAD");
    };
    git("init", "-q");
    const first = commit("one");
    const id = (await p(["-d", "--", "true"], { env, cwd: repo })).stdout.trim();
    const rerun = async (of: string) => {
      const res = await api(`/api/jobs/${of}/rerun`, { method: "POST" });
      expect(res.status).toBe(201);
      return (await res.json()) as { id: string; git?: { commit: string } };
    };
    expect((await rerun(id)).git?.commit).toBe(first);
    const second = commit("two");
    expect((await rerun(id)).git?.commit).toBe(second);
  });
});

describe("p ui itself", () => {
  test("runs only while it runs: Ctrl+C ends it, exit 0, and the port no longer answers", async () => {
    ui.kill("SIGINT");
    expect(await ui.exited).toBe(0);
    expect(
      await fetch(`${base}/api/jobs`).then(
        () => "answered",
        () => "refused",
      ),
    ).toBe("refused");
  });
});
