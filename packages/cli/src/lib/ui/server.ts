import { timingSafeEqual } from "node:crypto";
import { type OutputSink, PError } from "@p/exec";
import { type Config, type JobRecord, JobStore, type Worker } from "@p/store";
import { AnsiUp } from "ansi_up";
import type { Server } from "bun";
import { codeOf } from "../../_errors.ts";
import { jobJson } from "../../_format.ts";
import { checkWorker, stopJob, type WorkerCheck, workerRows } from "../control.ts";
import { followJob } from "../follow.ts";
import { applyState, isActive, KeptConnections, reconcile, stateOfFollow, workerOf } from "../records.ts";
import { rerunRequest } from "../rerun.ts";
import { runJob } from "../run.ts";
import { openWorker, retryFor } from "../workers.ts";
import style from "./app.css" with { type: "text" };
import script from "./app.mjs" with { type: "text" };
import pageBundle from "./page.html" with { type: "text" };

// (bun-types takes every .html import for a bundle; with type "text" it is the file's text)
const page = pageBundle as unknown as string;

/** How long an answer about the workers' jobs, or about the workers themselves, stays fresh. */
const JOBS_FRESH_MS = 1000;
const WORKERS_FRESH_MS = 5000;
/** How long a request waits for the workers' answers before saying what the store knows. */
const WAIT_FOR_WORKERS_MS = 300;

export interface DashboardOptions {
  /** The secret every request must carry (`?token=` or `Authorization: Bearer`). */
  token: string;
  store?: JobStore;
  /** The config as it is now: read again for each request, as each p command does. */
  config: () => Config;
}

const HTTP_STATUS: Partial<Record<ReturnType<typeof codeOf>, number>> = {
  invalid_argument: 400,
  ambiguous_job_id: 400,
  config_invalid: 500,
  job_not_found: 404,
  worker_not_found: 404,
  worker_unreachable: 502,
  auth_failed: 502,
  host_key_mismatch: 502,
  host_key_unknown: 502,
  connection_lost: 502,
  remote_failed: 502,
  sync_failed: 502,
  sync_stale: 502,
};

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", ...headers },
  });

const failure = (err: unknown) => {
  const code = codeOf(err);
  return json({ error: { code, message: (err as Error).message } }, HTTP_STATUS[code] ?? 500);
};

/** What a browser may do with the pages: scripts and styles of this server only, no frames, no referrer. */
const PAGE_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; " +
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
  "cache-control": "no-store",
};

/** Newest first: by when the job was made (to the millisecond where the record has it). */
const newestFirst = (a: JobRecord, b: JobRecord) =>
  (b.created_ms ?? b.started_at * 1000) - (a.created_ms ?? a.started_at * 1000);

/** The filters GET /api/jobs takes, as the page offers them. */
export function jobFilter(query: URLSearchParams): (j: JobRecord) => boolean {
  const worker = query.get("worker");
  const status = query.get("status");
  const tag = query.get("tag");
  const group = query.get("group")?.toLowerCase();
  const q = query.get("q")?.toLowerCase();
  return (j) =>
    (!worker || j.worker === worker) &&
    (!status || (status === "active" ? isActive(j) : j.status === status)) &&
    (!tag || Boolean(j.tags?.includes(tag))) &&
    (!group || Boolean(j.group?.startsWith(group))) &&
    (!q || [j.id, j.name, j.command, j.cwd, j.worker, ...(j.tags ?? [])].some((s) => s?.toLowerCase().includes(q)));
}

/** Where a chunk of UTF-8 can be cut without splitting a character: the bytes before it are whole. */
export function wholeUtf8(bytes: Uint8Array): number {
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const b = bytes[bytes.length - back]!;
    if ((b & 0xc0) === 0x80) continue; // a continuation byte: look further back
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? bytes.length - back : bytes.length;
  }
  return bytes.length;
}

/**
 * The dashboard's server: the page, and the JSON API it and anyone else use, over the same
 * store and workers as the CLI. Workers are asked only while someone asks the server, over
 * connections kept between requests.
 */
export class Dashboard {
  private readonly store: JobStore;
  private readonly kept = new KeptConnections();
  private readonly token: Buffer;
  private asking?: Promise<void>;
  private askedAt = 0;
  private unreachable = new Map<string, string>();
  private probing?: Promise<void>;
  private probedAt = 0;
  private checks = new Map<string, WorkerCheck>();
  private readonly streams = new Set<AbortController>();

  constructor(private readonly opts: DashboardOptions) {
    this.store = opts.store ?? new JobStore();
    this.token = Buffer.from(opts.token);
  }

  /** Every request: the token first, then the route. */
  fetch = async (req: Request, server?: Server<unknown>): Promise<Response> => {
    const url = new URL(req.url);
    if (!this.authorized(req, url))
      return json({ error: { code: "forbidden", message: "this needs the token p ui printed" } }, 403);
    try {
      return await this.route(req, url, server);
    } catch (err) {
      return failure(err);
    }
  };

  /** Close the kept connections and end the log streams. */
  close(): void {
    for (const s of this.streams) s.abort();
    this.kept.closeAll();
  }

  private authorized(req: Request, url: URL): boolean {
    const bearer = req.headers.get("authorization")?.match(/^Bearer\s+(\S+)$/i)?.[1];
    const given = Buffer.from(bearer ?? url.searchParams.get("token") ?? "");
    return given.length === this.token.length && timingSafeEqual(given, this.token);
  }

  private async route(req: Request, url: URL, server?: Server<unknown>): Promise<Response> {
    const path = url.pathname;
    const get = req.method === "GET" || req.method === "HEAD";
    if (get && path === "/") return this.page();
    if (get && path === "/app.mjs")
      return new Response(script, { headers: { ...PAGE_HEADERS, "content-type": "text/javascript; charset=utf-8" } });
    if (get && path === "/app.css")
      return new Response(style, { headers: { ...PAGE_HEADERS, "content-type": "text/css; charset=utf-8" } });
    if (get && path === "/api/workers") return json(await this.workers());
    if (get && path === "/api/jobs") return this.jobs(req, url);
    const m = path.match(/^\/api\/jobs\/([^/]+)(\/log|\/stop|\/rerun)?$/);
    if (m) {
      const id = decodeURIComponent(m[1]!);
      if (get && !m[2]) {
        await this.fresh();
        const job = this.store.find(id);
        return json(jobJson(job, this.unverified(job)));
      }
      if (get && m[2] === "/log") {
        server?.timeout(req, 0); // a quiet log is not an idle connection
        return this.log(req, this.store.find(id));
      }
      if (req.method === "POST" && m[2] === "/stop") return this.stop(this.store.find(id));
      if (req.method === "POST" && m[2] === "/rerun") return this.rerun(this.store.find(id));
      if (m[2] === "/stop" || m[2] === "/rerun")
        return json({ error: { code: "method_not_allowed", message: `${path} takes POST` } }, 405, { allow: "POST" });
    }
    return json({ error: { code: "not_found", message: `nothing here: ${req.method} ${path}` } }, 404);
  }

  /** The page, with the token its script needs for the API. */
  private page(): Response {
    const html = page.replaceAll("{{TOKEN}}", this.opts.token);
    return new Response(html, { headers: { ...PAGE_HEADERS, "content-type": "text/html; charset=utf-8" } });
  }

  private unverified(job: JobRecord): boolean {
    return isActive(job) && this.unreachable.has(job.worker);
  }

  /**
   * Ask the workers how their running jobs are, at most once a second whoever asks; a
   * request waits a moment for the answer, then says what the store knows.
   */
  private async fresh(): Promise<void> {
    if (!this.asking && Date.now() - this.askedAt > JOBS_FRESH_MS)
      this.asking = reconcile(this.store, this.store.list(), 5000, this.kept)
        .then((r) => {
          this.unreachable = r.unreachable;
        })
        .catch(() => {})
        .finally(() => {
          this.askedAt = Date.now();
          this.asking = undefined;
        });
    if (this.asking) await Promise.race([this.asking, Bun.sleep(WAIT_FOR_WORKERS_MS)]);
  }

  /** GET /api/jobs: as p ls -a --json, newest first, filtered as the query says; 304 if unchanged. */
  private async jobs(req: Request, url: URL): Promise<Response> {
    await this.fresh();
    const keep = jobFilter(url.searchParams);
    const shown = this.store.list().filter(keep).sort(newestFirst);
    const body = JSON.stringify(shown.map((j) => jobJson(j, this.unverified(j))));
    const etag = `"${Bun.hash(body).toString(36)}"`;
    if (req.headers.get("if-none-match") === etag) return new Response(null, { status: 304, headers: { etag } });
    return new Response(body, {
      headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-cache", etag },
    });
  }

  /** GET /api/workers: as p worker ls --check --json, each probed at most every few seconds. */
  private async workers() {
    const config = this.opts.config();
    if (!this.probing && Date.now() - this.probedAt > WORKERS_FRESH_MS)
      this.probing = Promise.all(
        config.workers.map(async (w) => {
          const found = await checkWorker(w, (x) => this.kept.get(x, () => openWorker(x, { timeoutMs: 5000 })));
          if (!found.reachable) this.kept.forget(w);
          this.checks.set(w.name, found);
        }),
      )
        .then(() => {})
        .finally(() => {
          this.probedAt = Date.now();
          this.probing = undefined;
        });
    if (this.probing) await Promise.race([this.probing, Bun.sleep(this.checks.size ? WAIT_FOR_WORKERS_MS : 1500)]);
    return workerRows(
      config,
      this.store.list(),
      config.workers.map((w) => this.checks.get(w.name)),
    );
  }

  /** POST /api/jobs/:id/stop: as p stop --json. */
  private async stop(job: JobRecord): Promise<Response> {
    if (!isActive(job)) return json({ ...jobJson(job), stopped: false });
    const r = await stopJob(workerOf(job), job.id, this.store);
    return json({ ...jobJson(r.job ?? job), stopped: r.stopped });
  }

  /** POST /api/jobs/:id/rerun: the job again on its worker, detached, as p rerun -d --json. */
  private async rerun(job: JobRecord): Promise<Response> {
    const config = this.opts.config();
    const worker: Worker = config.workers.find((w) => w.name === job.worker) ?? workerOf(job);
    const outcome = await runJob({
      ...rerunRequest(job, worker, config),
      worker,
      detach: true,
      store: this.store,
      out: { write: () => true, once: () => undefined },
      resume: (id) => `p logs -f ${id.slice(0, 8)}`,
    });
    if (outcome.kind !== "launched") throw new PError("remote_failed", "the job did not start");
    return json(jobJson(outcome.job), 201);
  }

  /**
   * GET /api/jobs/:id/log: the job's output as server-sent events, from the start (or from
   * the byte of Last-Event-ID, so a reconnecting EventSource loses nothing), to its end:
   * `output` events ({text, html}, the html with ANSI colours as spans; the id is the byte
   * after them), then one `end` event (the job as GET /api/jobs/:id gives it), or `problem`.
   */
  private log(req: Request, job: JobRecord): Response {
    const from = Number(req.headers.get("last-event-id") ?? new URL(req.url).searchParams.get("offset") ?? 0);
    const start = Number.isSafeInteger(from) && from >= 0 ? from : 0;
    const abort = new AbortController();
    this.streams.add(abort);
    req.signal.addEventListener("abort", () => abort.abort(), { once: true });
    const encoder = new TextEncoder();
    const decoder = new TextDecoder();
    const ansi = new AnsiUp();
    let drained: (() => void) | undefined;
    let heartbeat: ReturnType<typeof setInterval> | undefined;
    const { store, streams } = this;
    return new Response(
      new ReadableStream<Uint8Array>(
        {
          async start(controller) {
            const send = (text: string) => {
              if (!abort.signal.aborted) controller.enqueue(encoder.encode(text));
            };
            const event = (name: string, data: unknown, id?: number) =>
              send(`event: ${name}\n${id === undefined ? "" : `id: ${id}\n`}data: ${JSON.stringify(data)}\n\n`);
            heartbeat = setInterval(() => send(": still here\n\n"), 15_000);
            let offset = start;
            let held = new Uint8Array(0);
            const out: OutputSink = {
              write(chunk) {
                const bytes = held.length ? Buffer.concat([held, chunk]) : chunk;
                const cut = wholeUtf8(bytes);
                held = bytes.slice(cut);
                if (cut > 0) {
                  offset += cut;
                  const text = decoder.decode(bytes.subarray(0, cut));
                  event("output", { text, html: ansi.ansi_to_html(text) }, offset);
                }
                return (controller.desiredSize ?? 1) > 0;
              },
              once(_event, listener) {
                drained = listener;
              },
            };
            const worker = workerOf(job);
            try {
              const backend = await openWorker(worker);
              let followed: Awaited<ReturnType<typeof followJob>>;
              try {
                const watch = { id: job.id, worker: worker.name, resume: `p logs -f ${job.id.slice(0, 8)}` };
                followed = await followJob(backend, watch, {
                  out,
                  offset: start,
                  signal: abort.signal,
                  retry: retryFor(worker),
                });
              } finally {
                backend.close();
              }
              if (followed.kind === "ended") {
                const status = followed.status;
                const now = store.update(job.id, (current) => applyState(current, stateOfFollow(status))) ?? job;
                event("end", jobJson(now));
              }
            } catch (err) {
              event("problem", { code: codeOf(err), message: (err as Error).message });
            } finally {
              clearInterval(heartbeat);
              streams.delete(abort);
              if (!abort.signal.aborted) controller.close();
            }
          },
          pull() {
            drained?.();
            drained = undefined;
          },
          cancel() {
            clearInterval(heartbeat);
            abort.abort();
          },
        },
        new CountQueuingStrategy({ highWaterMark: 64 }),
      ),
      {
        headers: {
          "content-type": "text/event-stream; charset=utf-8",
          "cache-control": "no-store",
          "x-accel-buffering": "no",
        },
      },
    );
  }
}
