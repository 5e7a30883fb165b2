// The dashboard in the browser: workers, jobs and one job's live log, from p ui's JSON API.
// Plain DOM, no framework: the page is served by the p binary itself, with nothing to build.

const token = document.querySelector('meta[name="p-token"]').content;
const ROW = 30; // px: one job row (the CSS's --row)
const LOG_KEEP = 2_000_000; // characters of a log kept in the page
const STATUSES = ["running", "queued", "done", "failed", "stopped", "timeout", "skipped", "unknown"];
const ACTIVE = new Set(["running", "queued"]);

const state = {
  jobs: [],
  etag: null,
  workers: [],
  workersKnown: false,
  /** When the jobs were last heard of, and whether the last ask failed. */
  heard: 0,
  offline: false,
};

/** A request to the API, with the token. */
function api(path, init = {}) {
  return fetch(path, { ...init, headers: { ...init.headers, authorization: `Bearer ${token}` } });
}

/** An element: h("a", { href: "#/" , class: "x" }, "text", child). Text is always text, never HTML. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false || v === null) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null) el.append(c);
  return el;
}

const short = (id) => id.slice(0, 8);

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return hh ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

/** How long a job has run: to its end, or to now while it runs. */
function duration(job) {
  if (job.status === "queued") return "-";
  if (ACTIVE.has(job.status)) return clock(Date.now() / 1000 - (job.run_started_at ?? job.started_at));
  return clock(job.duration_s ?? 0);
}

function ago(epochS) {
  const s = Date.now() / 1000 - epochS;
  if (s < 60) return `${Math.max(0, Math.floor(s))}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return new Date(epochS * 1000).toLocaleDateString();
}

/** A job's status as a badge: `exit 3` for a job that ended with a code other than 0. */
function badge(job) {
  let text = job.status;
  let kind = job.status;
  if (job.status === "done" && job.exit_code !== 0) {
    text = `exit ${job.exit_code}`;
    kind = "exit";
  }
  if (job.status === "running" && job.slurm?.node) text = `running (${job.slurm.node})`;
  if (job.status === "queued" && (job.slurm?.reason || job.waiting_for))
    text = `queued (${job.slurm?.reason ?? job.waiting_for})`;
  if (job.unverified) text += " ?";
  const title = job.unverified ? "the worker could not be asked: its last known status" : undefined;
  return h("span", { class: `badge s-${kind}`, title, "data-status": job.status }, text);
}

// ---------------------------------------------------------------- routes

/** The view the address names: `#/jobs/<id>`, or the list with its filters (`#/?status=running`). */
function parseHash() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = hash.split("?");
  const job = path.match(/^\/jobs\/([^/]+)$/);
  return job ? { view: "job", id: decodeURIComponent(job[1]) } : { view: "list", query: new URLSearchParams(query) };
}

let current = null; // the view on screen: { kind, update(), dispose() }

function route() {
  current?.dispose?.();
  const view = document.getElementById("view");
  view.replaceChildren();
  const r = parseHash();
  current = r.view === "job" ? jobView(view, r.id) : listView(view, r.query);
  renderWorkers();
}

// ---------------------------------------------------------------- workers

function renderWorkers() {
  const box = document.getElementById("workers");
  const r = parseHash();
  const selected = r.view === "list" ? r.query.get("worker") : null;
  if (state.workersKnown && !state.workers.length) {
    box.replaceChildren(h("p", { class: "dim" }, "No workers registered; add one with: p worker register user@host"));
    return;
  }
  box.replaceChildren(
    ...state.workers.map((w) => {
      const check = w.check;
      const dot = h("span", {
        class: `dot ${check ? (check.reachable ? "up" : "down") : ""}`,
        title: check ? (check.reachable ? "reachable" : check.error) : "checking…",
      });
      const slots = w.kind === "slurm" ? "Slurm places its jobs" : w.slots === undefined ? "no slot limit" : null;
      const use = slots ?? `${w.slots_in_use ?? 0}/${w.slots} slots in use`;
      const rtt = check?.reachable ? ` · ${check.rtt_ms} ms` : check ? " · unreachable" : "";
      return h(
        "button",
        {
          class: `worker${selected === w.name ? " selected" : ""}`,
          "data-worker": w.name,
          title: `${w.connection}${w.default ? " (default)" : ""}: show its jobs`,
          onclick: () => setFilter("worker", selected === w.name ? "" : w.name),
        },
        dot,
        h("span", { class: "name" }, w.name, w.default ? h("span", { class: "dim" }, " ★") : null),
        h("span", { class: "meta" }, `${w.kind} · ${w.connection}`),
        h("span", { class: "meta" }, `${use}${rtt}`),
      );
    }),
  );
}

async function pollWorkers() {
  try {
    const r = await api("/api/workers");
    if (r.ok) {
      state.workers = await r.json();
      state.workersKnown = true;
      renderWorkers();
    }
  } catch {} // the jobs' poll says when the server is gone
}

// ---------------------------------------------------------------- the list of jobs

function setFilter(name, value) {
  const r = parseHash();
  const query = r.view === "list" ? r.query : new URLSearchParams();
  if (value) query.set(name, value);
  else query.delete(name);
  const q = query.toString();
  location.hash = q ? `#/?${q}` : "#/";
}

/** The jobs the filters keep (the same filters GET /api/jobs takes). */
function filtered(query) {
  const worker = query.get("worker");
  const status = query.get("status");
  const tag = query.get("tag");
  const group = query.get("group");
  const q = query.get("q")?.toLowerCase();
  return state.jobs.filter(
    (j) =>
      (!worker || j.worker === worker) &&
      (!status || (status === "active" ? ACTIVE.has(j.status) : j.status === status)) &&
      (!tag || j.tags?.includes(tag)) &&
      (!group || j.group?.startsWith(group)) &&
      (!q || [j.id, j.name, j.command, j.cwd, j.worker, ...(j.tags ?? [])].some((s) => s?.toLowerCase().includes(q))),
  );
}

/** A filter's menu: `values` are [value, text?]; the chosen value stays offered though no job has it now. */
function select(name, label, values, query) {
  const chosen = query.get(name) ?? "";
  const options = chosen && !values.some(([v]) => v === chosen) ? [[chosen], ...values] : values;
  return h(
    "select",
    { name, "aria-label": label, onchange: (e) => setFilter(name, e.target.value) },
    h("option", { value: "" }, `${label}: all`),
    options.map(([value, text]) => h("option", { value, selected: value === chosen }, text ?? value)),
  );
}

/** The filters' menus, from the workers and the jobs there are now. */
function menus(query) {
  const workers = [...new Set([...state.workers.map((w) => w.name), ...state.jobs.map((j) => j.worker)])];
  const tags = [...new Set(state.jobs.flatMap((j) => j.tags ?? []))].sort();
  const groups = new Map();
  for (const j of state.jobs) if (j.group) groups.set(j.group, (groups.get(j.group) ?? 0) + 1);
  return [
    select(
      "worker",
      "Worker",
      workers.map((w) => [w]),
      query,
    ),
    select("status", "Status", [["active", "running or queued"], ...STATUSES.map((s) => [s])], query),
    select(
      "tag",
      "Tag",
      tags.map((t) => [t]),
      query,
    ),
    select(
      "group",
      "Group",
      [...groups].map(([g, n]) => [g, `${short(g)} (${n} jobs)`]),
      query,
    ),
  ];
}

function listView(root, query) {
  const search = h("input", {
    type: "search",
    name: "q",
    placeholder: "Search id, name, command, directory, worker, tag",
    value: query.get("q") ?? "",
    "aria-label": "Search",
  });
  // typing filters at once; the address follows a moment later (no history entry per key)
  let typing;
  search.addEventListener("input", () => {
    query.set("q", search.value);
    if (!search.value) query.delete("q");
    draw(true);
    clearTimeout(typing);
    typing = setTimeout(() => history.replaceState(null, "", query.toString() ? `#/?${query}` : "#/"), 300);
  });
  const count = h("span", { class: "count dim" });
  const selects = h("span", { class: "filters" }, menus(query));
  const filters = h("div", { class: "filters" }, search, selects, count);
  const head = h(
    "div",
    { class: "cols head" },
    ["ID", "Name", "Worker", "Status", "Command", "Directory", "Started", "Duration"].map((t) => h("span", {}, t)),
  );
  const spacer = h("div", {});
  const scroller = h("div", { class: "scroller", role: "list" }, spacer);
  root.append(filters, h("div", { class: "table" }, head, scroller));
  if (query.get("q")) search.focus();

  let shown = [];
  /** Only the rows in sight (and a few beyond) are in the page: thousands of jobs scroll as fast as ten. */
  function paint() {
    const first = Math.max(0, Math.floor(scroller.scrollTop / ROW) - 10);
    const last = Math.min(shown.length, Math.ceil((scroller.scrollTop + scroller.clientHeight) / ROW) + 10);
    const rows = [];
    for (let i = first; i < last; i++) {
      const j = shown[i];
      rows.push(
        h(
          "a",
          { class: "row cols", href: `#/jobs/${j.id}`, role: "listitem", "data-id": j.id, style: `top:${i * ROW}px` },
          h("span", { class: "mono" }, short(j.id)),
          h("span", {}, j.name ?? (j.tags?.length ? h("span", { class: "dim" }, j.tags.join(", ")) : "")),
          h("span", {}, j.worker),
          h("span", {}, badge(j)),
          h("span", { class: "mono", title: j.command }, j.command),
          h("span", { class: "dim", title: j.cwd }, j.cwd),
          h("span", { class: "dim", title: new Date(j.started_at * 1000).toLocaleString() }, ago(j.started_at)),
          h("span", { class: "mono" }, duration(j)),
        ),
      );
    }
    spacer.replaceChildren(...rows);
  }
  function draw(refilter) {
    if (refilter) shown = filtered(query);
    spacer.style.height = `${shown.length * ROW}px`;
    count.textContent =
      shown.length === state.jobs.length ? `${state.jobs.length} jobs` : `${shown.length} of ${state.jobs.length} jobs`;
    if (!shown.length) {
      const why = state.jobs.length
        ? "No job matches these filters."
        : "No jobs yet. Start one with: p -d -- <command>";
      spacer.replaceChildren(h("div", { class: "empty" }, why));
      return;
    }
    paint();
  }
  scroller.addEventListener("scroll", () => requestAnimationFrame(paint), { passive: true });
  draw(true);
  const tick = setInterval(() => draw(false), 1000); // running jobs' durations
  let offered = selects.innerHTML;
  const update = () => {
    // new workers, tags or groups join the menus (left alone while one is open)
    const fresh = h("span", {}, menus(query));
    if (fresh.innerHTML !== offered && !selects.contains(document.activeElement)) {
      selects.replaceChildren(...fresh.childNodes);
      offered = selects.innerHTML;
    }
    draw(true);
  };
  return { update, dispose: () => clearInterval(tick) };
}

async function pollJobs() {
  try {
    const r = await api("/api/jobs", state.etag ? { headers: { "if-none-match": state.etag } } : {});
    if (r.status === 200) {
      state.jobs = await r.json();
      state.etag = r.headers.get("etag");
      current?.update?.();
    }
    state.heard = Date.now();
    state.offline = false;
  } catch {
    state.offline = true;
  }
  document.getElementById("updated").textContent = state.offline
    ? "p ui is not answering: is it still running?"
    : `updated ${new Date(state.heard).toLocaleTimeString()}`;
}

// ---------------------------------------------------------------- one job

function jobView(root, id) {
  const title = h("h1", { class: "mono" }, short(id));
  const status = h("span", {});
  const stop = h("button", { class: "danger", name: "stop", disabled: true }, "Stop");
  const rerun = h("button", { name: "rerun" }, "Rerun");
  const said = h("span", { class: "dim", role: "status" });
  const facts = h("dl", {});
  const log = h("pre", { class: "log", "aria-label": "Output" });
  root.append(
    h(
      "div",
      { class: "job" },
      h("a", { href: "#/", class: "dim" }, "← all jobs"),
      title,
      h("div", { class: "bar" }, status, stop, rerun, said),
      facts,
      log,
    ),
  );
  let job = null;
  let disposed = false;

  function show(j) {
    job = j;
    title.textContent = j.name ? `${j.name} · ${j.command}` : j.command;
    status.replaceChildren(badge(j));
    stop.disabled = !ACTIVE.has(j.status);
    const fact = (k, v) => (v === undefined || v === null || v === "" ? [] : [h("dt", {}, k), h("dd", {}, v)]);
    facts.replaceChildren(
      ...fact("Job", h("span", { class: "mono" }, j.id)),
      ...fact("Worker", j.worker),
      ...fact("Directory", j.cwd),
      ...fact("Started", new Date(j.started_at * 1000).toLocaleString()),
      ...fact("Duration", duration(j)),
      ...fact("Exit code", j.exit_code),
      ...fact("Why it failed", j.error),
      ...fact("Git", j.git ? `${j.git.commit.slice(0, 12)}${j.git.dirty ? " (with changes)" : ""}` : null),
      ...fact("Tags", j.tags?.join(", ")),
      ...fact("Group", j.group ? h("a", { href: `#/?group=${j.group}` }, short(j.group)) : null),
      ...fact(
        "Values",
        j.each
          ? Object.entries(j.each)
              .map(([k, v]) => `${k}=${v}`)
              .join(" ")
          : null,
      ),
      ...fact("Slurm job", j.slurm?.job_id),
      ...fact("Re-run of", j.rerun_of ? h("a", { href: `#/jobs/${j.rerun_of}` }, short(j.rerun_of)) : null),
    );
  }

  async function refresh() {
    try {
      const r = await api(`/api/jobs/${encodeURIComponent(id)}`);
      const body = await r.json();
      if (disposed) return;
      if (!r.ok) {
        said.textContent = body.error?.message ?? `HTTP ${r.status}`;
        said.className = "error";
        return;
      }
      show(body);
    } catch {}
  }

  // the log, live: output events until the end event; the browser reconnects by itself
  // after a cut, from the last byte it had (Last-Event-ID)
  const stream = new EventSource(`/api/jobs/${encodeURIComponent(id)}/log?token=${encodeURIComponent(token)}`);
  const atBottom = () => log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  const note = (text) => log.append(h("span", { class: "note" }, `\n— ${text} —\n`));
  // a log of many megabytes keeps its last LOG_KEEP characters in the page (p logs has it all)
  let kept = 0;
  let trimmed = false;
  stream.addEventListener("output", (e) => {
    const follow = atBottom();
    const { text, html } = JSON.parse(e.data);
    const chunk = document.createElement("span");
    // (html from the server's ANSI renderer, which escapes the output's own text)
    chunk.innerHTML = html;
    log.append(chunk);
    kept += text.length;
    while (kept > LOG_KEEP && log.childElementCount > 1) {
      const first = log.firstElementChild;
      kept -= first.textContent.length;
      first.remove();
      if (!trimmed) {
        trimmed = true;
        log.before(h("p", { class: "dim" }, "The start of this log is cut here; p logs shows all of it."));
      }
    }
    if (follow) log.scrollTop = log.scrollHeight;
  });
  stream.addEventListener("end", (e) => {
    stream.close();
    const j = JSON.parse(e.data);
    show(j);
    note(j.status === "done" ? `exited with code ${j.exit_code}` : j.status);
    log.scrollTop = log.scrollHeight;
  });
  stream.addEventListener("problem", (e) => {
    stream.close();
    note(JSON.parse(e.data).message);
  });

  /** A button's action: POST it, say that it is under way, then what came of it (or why not). */
  async function act(button, action, pending, done) {
    button.disabled = true;
    said.className = "dim";
    said.textContent = pending;
    const r = await api(`/api/jobs/${encodeURIComponent(id)}/${action}`, { method: "POST" });
    const body = await r.json();
    button.disabled = false;
    if (!r.ok) {
      said.className = "error";
      said.textContent = body.error?.message ?? `HTTP ${r.status}`;
      return;
    }
    done(body);
  }
  stop.addEventListener("click", () =>
    act(stop, "stop", "Stopping…", (body) => {
      show(body);
      said.textContent = body.stopped ? "Stopped." : `It had already ended (${body.status}).`;
    }),
  );
  rerun.addEventListener("click", () =>
    act(rerun, "rerun", "Starting it again…", (body) => {
      location.hash = `#/jobs/${body.id}`;
    }),
  );

  refresh();
  // the status while it is on (a stop from elsewhere, a queued job starting), and its duration
  const tick = setInterval(() => {
    if (job && ACTIVE.has(job.status)) refresh();
  }, 2000);
  return {
    update: () => {},
    dispose: () => {
      disposed = true;
      clearInterval(tick);
      stream.close();
    },
  };
}

// ---------------------------------------------------------------- start

window.addEventListener("hashchange", route);
// the jobs first: a worker slow to answer its probe must not hold the page up
pollWorkers();
await pollJobs();
route();
setInterval(pollJobs, 2000);
setInterval(pollWorkers, 5000);
