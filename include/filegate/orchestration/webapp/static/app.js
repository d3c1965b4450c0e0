// The Filegate page. Reads the REST API next to it (relative URLs, the UI's `_token` cookie) and builds
// every element with textContent: values from the store never become markup.
"use strict";

const STATUSES = ["pending", "downloaded", "queued", "processing", "processed", "failed", "quarantined", "duplicate"];
const state = { cursors: [null], pageIndex: 0, feeds: [], tabChosen: false };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function $(id) { return document.getElementById(id); }

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function api(path, options) {
  const response = await fetch(path, { credentials: "same-origin", ...(options || {}) });
  const type = response.headers.get("content-type") || "";
  const body = type.includes("application/json") ? await response.json() : await response.text();
  if (!response.ok) {
    const detail = body && body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail))
      : String(body).slice(0, 200);
    throw new Error(`HTTP ${response.status}: ${detail}`);
  }
  return body;
}

function fmtTime(value) {
  if (!value) return "–";
  const d = new Date(value);
  return isNaN(d) ? String(value) : d.toISOString().replace("T", " ").slice(0, 19);
}

function fmtNum(value, digits) {
  if (value === null || value === undefined) return "–";
  return typeof value === "number" ? value.toLocaleString("en-US", { maximumFractionDigits: digits ?? 1 }) : value;
}

function badge(status) { return el("span", { class: `badge s-${status}` }, status); }

function table(headers, rows) {
  return el("table", {},
    el("thead", {}, el("tr", {}, headers.map(h => el("th", { class: h.num ? "num" : null }, h.label ?? h)))),
    el("tbody", {}, rows));
}

function period() {
  return { since: $("since").value, until: $("until").value };
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (Array.isArray(value)) value.forEach(v => search.append(key, v));
    else if (value !== null && value !== undefined && value !== "") search.append(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// Task log links open in the Airflow UI around this iframe. The sandbox forbids this frame to navigate the top
// window, but the page is same-origin: a link created in the top document and clicked there navigates it.
function uiLink(href, text) {
  return el("a", {
    href, target: "_top", onclick: (event) => {
      if (window.top === window) return;
      try {
        const link = window.top.document.createElement("a");
        link.href = href;
        window.top.document.body.appendChild(link);
        link.click();
        link.remove();
        event.preventDefault();
      } catch (err) { /* cross-origin parent: the plain link is all we can offer */ }
    },
  }, text);
}

// -- overview ---------------------------------------------------------------------------------------------

async function loadOverview() {
  const p = period();
  const counts = await api(`api/counts${query(p)}`);
  $("overview-period").textContent = `${counts.since} – ${counts.until} (UTC)`;
  const tiles = [["files", counts.total], ...STATUSES.filter(s => counts.by_status[s]).map(s => [s, counts.by_status[s]])];
  $("tiles").replaceChildren(...tiles.map(([label, n]) => el("div", { class: "tile" }, el("b", {}, fmtNum(n)), label)));
  const feeds = Object.keys(counts.by_feed).sort();
  const cell = (feed, status) => counts.rows.find(r => r.feed === feed && r.status === status)?.files ?? 0;
  $("counts").replaceChildren(feeds.length ? table(
    [{ label: "feed" }, ...STATUSES.map(s => ({ label: s, num: true })), { label: "total", num: true }],
    feeds.map(feed => el("tr", {}, el("td", {}, feed), STATUSES.map(s => el("td", { class: "num" }, fmtNum(cell(feed, s)))),
      el("td", { class: "num" }, fmtNum(counts.by_feed[feed]))))) : el("p", { class: "muted" }, "No files in this period."));
  const summaries = await Promise.all(feeds.map(feed => api(`api/feeds/${encodeURIComponent(feed)}/summary${query(p)}`)
    .catch(() => null)));
  const stats = summaries.filter(s => s && s.stats);
  $("feed-stats").replaceChildren(stats.length ? table(
    ["feed", { label: "rows in", num: true }, { label: "valid", num: true }, { label: "rejected", num: true },
      { label: "API calls", num: true }, { label: "API success", num: true }, { label: "API p95 ms", num: true },
      { label: "processing p50 s", num: true }, { label: "p95 s", num: true }, "top issue"],
    stats.map(({ stats: s, top_issues: issues }) => el("tr", {},
      el("td", {}, s.feed), el("td", { class: "num" }, fmtNum(s.rows_in)), el("td", { class: "num" }, fmtNum(s.rows_valid)),
      el("td", { class: "num" }, fmtNum(s.rows_rejected)), el("td", { class: "num" }, fmtNum(s.api_calls)),
      el("td", { class: "num" }, s.api_success_rate === null ? "–" : `${(100 * s.api_success_rate).toFixed(1)} %`),
      el("td", { class: "num" }, fmtNum(s.api_latency_ms.p95)), el("td", { class: "num" }, fmtNum(s.processing_latency_s.p50)),
      el("td", { class: "num" }, fmtNum(s.processing_latency_s.p95)),
      el("td", {}, issues.length ? `${issues[0].column} ${issues[0].rule} ×${issues[0].rows}` : "–")))) : "");
}

// -- files ------------------------------------------------------------------------------------------------

function fileFilters() {
  const filters = { feed: $("f-feed").value, status: $("f-status").value, q: $("f-q").value.trim() };
  if ($("f-period").checked) Object.assign(filters, period());
  return filters;
}

async function loadFiles() {
  const cursor = state.cursors[state.pageIndex];
  const page = await api(`api/files${query({ ...fileFilters(), cursor, limit: 50 })}`);
  const first = state.pageIndex * page.limit + (page.items.length ? 1 : 0);
  $("page-info").textContent = `${fmtNum(first)}–${fmtNum(state.pageIndex * page.limit + page.items.length)} of ${fmtNum(page.total)}${page.total_capped ? "+" : ""}`;
  $("prev").disabled = state.pageIndex === 0;
  $("next").disabled = page.next_cursor === null;
  state.cursors[state.pageIndex + 1] = page.next_cursor;
  $("file-table").replaceChildren(page.items.length ? table(
    [{ label: "id", num: true }, "feed", "name", "status", { label: "size", num: true }, "arrived (UTC)", "finished", "reason"],
    page.items.map(f => el("tr", { class: "clickable", "data-id": f.id, onclick: () => showDetail(f.id) },
      el("td", { class: "num" }, f.id), el("td", {}, f.feed), el("td", {}, f.name), el("td", {}, badge(f.status)),
      el("td", { class: "num" }, fmtNum(f.size_bytes)), el("td", {}, fmtTime(f.created_at)),
      el("td", {}, fmtTime(f.finished_at)), el("td", { class: "reason" }, f.error || "")))) :
    el("p", { class: "muted" }, "No file matches."));
}

async function showDetail(id) {
  const d = await api(`api/files/${encodeURIComponent(id)}`);
  const f = d.file;
  const box = $("detail");
  const q = d.quality;
  box.replaceChildren(
    el("h2", {}, `File #${f.id}: `, f.name, " ", badge(f.status)),
    el("dl", { class: "kv" },
      [["feed", f.feed], ["source", `${f.source}${f.source_path ? ` (${f.source_path})` : ""}`], ["raw copy", `s3://…/${f.raw_key}`],
        ["sha256", f.sha256 || "–"], ["size", `${fmtNum(f.size_bytes)} bytes`], ["attempts", f.attempts],
        ["arrived", fmtTime(f.created_at)], ["finished", fmtTime(f.finished_at)],
        ["reason", f.error || "–"], ["params", JSON.stringify(f.params || {})]]
        .flatMap(([k, v]) => [el("dt", {}, k), el("dd", { class: k === "reason" ? "reason" : null }, v)])),
    el("h3", {}, "Steps (Airflow task logs)"),
    d.steps.length ? table(["DAG", "run", "task", "try", "moved the file to"], d.steps.map(s => el("tr", {},
      el("td", {}, s.dag_id), el("td", {}, uiLink(s.run_url, s.run_id)), el("td", {}, uiLink(s.log_url, `${s.task_id} log`)),
      el("td", {}, s.try_number ?? "–"), el("td", {}, s.statuses.join(" → "))))) : el("p", { class: "muted" }, "No Airflow step yet."),
    el("h3", {}, "History"),
    table(["at (UTC)", "from", "to", "task", "message"], d.history.map(e => el("tr", {},
      el("td", {}, fmtTime(e.at)), el("td", {}, e.from_status || "–"), el("td", {}, badge(e.to_status)),
      el("td", {}, e.task_id ? `${e.dag_id || ""}.${e.task_id}` : "–"), el("td", { class: "reason" }, e.message || "")))),
    el("h3", {}, "Quality"),
    q ? el("div", {},
      el("p", {}, `${fmtNum(q.rows_total)} rows: ${fmtNum(q.rows_valid)} valid, ${fmtNum(q.rows_rejected)} rejected`),
      (q.issues || []).length ? table(["column", "rule", { label: "rows", num: true }, "detail"], q.issues.slice(0, 20).map(i => el("tr", {},
        el("td", {}, i.column ?? "*"), el("td", {}, i.rule ?? "?"), el("td", { class: "num" }, fmtNum(i.count)),
        el("td", { class: "reason" }, [i.message, i.sample_rows && `rows ${JSON.stringify(i.sample_rows)}`].filter(Boolean).join(" ")))))
        : el("p", { class: "muted" }, "No quality issues."))
      : el("p", { class: "muted" }, "No quality result."),
    el("h3", {}, "Outputs"),
    d.outputs.length ? table(["output", "S3 key"], d.outputs.map(o => el("tr", {}, el("td", {}, o.name), el("td", {}, el("code", {}, o.uri)))))
      : el("p", { class: "muted" }, "No outputs."),
    el("h3", {}, "API calls"),
    d.api_calls.length ? table([{ label: "batch", num: true }, { label: "attempt", num: true }, { label: "records", num: true },
      { label: "HTTP", num: true }, { label: "ms", num: true }, "acknowledged", "at (UTC)", "error"],
    d.api_calls.map(c => el("tr", {}, el("td", { class: "num" }, c.batch_no), el("td", { class: "num" }, c.attempt),
      el("td", { class: "num" }, c.records), el("td", { class: "num" }, c.status_code ?? "–"), el("td", { class: "num" }, fmtNum(c.latency_ms)),
      el("td", {}, c.acknowledged ? "yes" : "no"), el("td", {}, fmtTime(c.at)), el("td", { class: "reason" }, c.error || ""))))
      : el("p", { class: "muted" }, "No API calls."),
  );
  box.hidden = false;
  document.querySelectorAll("#file-table tr.selected").forEach(r => r.classList.remove("selected"));
  document.querySelector(`#file-table tr[data-id="${CSS.escape(String(id))}"]`)?.classList.add("selected");
  box.scrollIntoView({ behavior: "smooth", block: "start" });
}

// -- failures, reports, upload, api -----------------------------------------------------------------------

async function loadFailures() {
  const p = period();
  const page = await api(`api/errors${query({ ...p, limit: 200 })}`);
  $("failures-period").textContent = `${p.since} – ${p.until} (UTC): ${page.total}`;
  $("failure-table").replaceChildren(page.items.length ? table(
    [{ label: "id", num: true }, "feed", "name", "status", "arrived (UTC)", "reason"],
    page.items.map(f => el("tr", { class: "clickable", onclick: () => { selectTab("files"); showDetail(f.id); } },
      el("td", { class: "num" }, f.id), el("td", {}, f.feed), el("td", {}, f.name), el("td", {}, badge(f.status)),
      el("td", {}, fmtTime(f.created_at)), el("td", { class: "reason" }, f.error || "")))) :
    el("p", { class: "muted" }, "No failures in this period."));
}

async function loadReports() {
  const reports = await api("api/reports");
  const frame = $("report-frame");
  $("report-list").replaceChildren(reports.length ? table(["day", "renderings"], reports.map(r => el("tr", {},
    el("td", {}, el("a", { href: "#", onclick: (e) => { e.preventDefault(); frame.src = r.files["report.html"]; frame.hidden = false; } }, r.day)),
    el("td", {}, Object.entries(r.files).flatMap(([name, href]) => [el("a", { href }, name), " "]))))) :
    el("p", { class: "muted" }, "No report yet: the daily_report DAG writes one per day."));
}

async function loadUploadFeeds() {
  const select = $("u-feed");
  const allowed = state.feeds.filter(f => f.can_upload);
  select.replaceChildren(...allowed.map(f => el("option", { value: f.name }, `${f.name} (${f.pattern})`)));
  $("upload-form").querySelector("button").disabled = !allowed.length;
  if (!allowed.length) $("upload-result").textContent = "Your Airflow role may not trigger any feed's DAG, so it may not upload.";
}

async function upload(event) {
  event.preventDefault();
  const file = $("u-file").files[0];
  const paramsText = $("u-params").value.trim();
  let params = {};
  try { params = paramsText ? JSON.parse(paramsText) : {}; } catch (err) {
    $("upload-result").textContent = `The parameters are not valid JSON: ${err.message}`; return;
  }
  const form = new FormData();
  form.append("metadata", JSON.stringify({ params }));  // before the file: the server streams the file as it comes
  form.append("file", file, file.name);
  $("upload-result").textContent = "Uploading…";
  try {
    const result = await api(`api/feeds/${encodeURIComponent($("u-feed").value)}/files`, { method: "POST", body: form });
    $("upload-result").textContent = `Stored as ${result.raw_key} (${fmtNum(result.size_bytes)} bytes). Processing starts from the S3 event.`;
  } catch (err) { $("upload-result").textContent = err.message; }
}

async function loadApi() {
  const spec = await api("openapi.json");
  const rows = [];
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      rows.push(el("tr", {}, el("td", {}, el("code", {}, method.toUpperCase())), el("td", {}, el("code", {}, path)), el("td", {}, op.summary || "")));
    }
  }
  $("endpoints").replaceChildren(table(["method", "path (under /filegate)", "what"], rows));
}

// -- wiring -----------------------------------------------------------------------------------------------

const loaders = { overview: loadOverview, files: loadFiles, failures: loadFailures, reports: loadReports,
  upload: loadUploadFeeds, api: loadApi };

function run(promise) { return promise.then(() => showError("")).catch(err => showError(err.message)); }

function selectTab(name) {
  document.querySelectorAll("#tabs button").forEach(b => b.setAttribute("aria-selected", String(b.dataset.tab === name)));
  document.querySelectorAll("main > section").forEach(s => { s.hidden = s.id !== name; });
  return run(loaders[name]());
}

function currentTab() { return document.querySelector("#tabs button[aria-selected=true]").dataset.tab; }

async function init() {
  const today = new Date();
  const weekAgo = new Date(today.getTime() - 6 * 86400000);
  $("until").value = today.toISOString().slice(0, 10);
  $("since").value = weekAgo.toISOString().slice(0, 10);
  STATUSES.forEach(s => $("f-status").append(el("option", { value: s }, s)));
  document.querySelectorAll("#tabs button").forEach(b => b.addEventListener("click", () => {
    state.tabChosen = true;
    selectTab(b.dataset.tab);
  }));
  $("period").addEventListener("submit", (e) => { e.preventDefault(); state.cursors = [null]; state.pageIndex = 0; selectTab(currentTab()); });
  $("file-filters").addEventListener("submit", (e) => { e.preventDefault(); state.cursors = [null]; state.pageIndex = 0; run(loadFiles()); });
  $("next").addEventListener("click", () => { state.pageIndex += 1; run(loadFiles()); });
  $("prev").addEventListener("click", () => { state.pageIndex = Math.max(0, state.pageIndex - 1); run(loadFiles()); });
  $("upload-form").addEventListener("submit", upload);
  await run((async () => {
    const me = await api("api/me");
    $("who").textContent = `signed in as ${me.name}${me.role ? ` (${me.role})` : ""}`;
    state.feeds = await api("api/feeds");
    state.feeds.forEach(f => $("f-feed").append(el("option", { value: f.name }, f.name)));
    if (!state.feeds.length) {
      $("who").textContent += " — your Airflow role may read no feed's DAG (process_<feed>), so there is nothing to show";
    }
  })());
  const wanted = new URLSearchParams(location.search).get("tab");
  if (!state.tabChosen) await selectTab(loaders[wanted] ? wanted : "overview");  // unless a click came first
}

document.addEventListener("DOMContentLoaded", init);
