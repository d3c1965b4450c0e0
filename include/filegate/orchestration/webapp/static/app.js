// The Filegate page. Reads the REST API next to it (relative URLs, the UI's `_token` cookie) and builds
// every element with textContent: values from the store never become markup.
"use strict";

const STATUSES = ["pending", "downloaded", "queued", "processing", "processed", "failed", "quarantined", "duplicate"];
const REPROCESSABLE = new Set(["failed", "quarantined"]);
const state = { cursors: [null], pageIndex: 0, feeds: [], tabChosen: false, me: null, selected: new Set(), rows: {} };
const SVG = "http://www.w3.org/2000/svg";
const DOWNLOAD_LABELS = { raw: "raw copy", rejected: "rejected rows (CSV)", reason: "reason (JSON)", summary: "summary (JSON)" };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) {
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

// Links to the Airflow UI (a DAG run, a task instance and its log). Standalone, they are plain links (same tab).
// Inside the UI's iframe they change the page around the frame: the iframe's sandbox has no allow-top-navigation
// (nor allow-popups, so no new tab either), but the frame is same-origin, so it may ask the top window's own
// history to go there and tell the UI's router (a popstate event), as a click on one of the UI's own links does.
// The UI then shows the run or the task's log at once, without reloading itself.
function embedded() {
  try { return window.top !== window && window.top.location.origin === location.origin; } catch (err) { return false; }
}

function openInUi(href) {
  const top = window.top;
  const url = new URL(href, location.href);
  top.history.pushState({ usr: null, key: Math.random().toString(36).slice(2, 10), idx: (top.history.state?.idx ?? 0) + 1 },
    "", url.pathname + url.search + url.hash);
  top.dispatchEvent(new PopStateEvent("popstate", { state: top.history.state }));
}

function uiLink(href, text) {
  return el("a", {
    href, class: "ui-link", onclick: (event) => {
      if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || !embedded()) return;
      event.preventDefault();
      openInUi(href);
    },
  }, text);
}

// Downloads: the iframe's sandbox has no allow-downloads, so inside the UI the download is started by a link in
// the top document (same origin, not sandboxed); standalone, the link downloads by itself.
function downloadLink(href, text) {
  return el("a", {
    href, download: "", class: "download", onclick: (event) => {
      if (!embedded()) return;
      event.preventDefault();
      const doc = window.top.document;
      const link = doc.createElement("a");
      link.href = new URL(href, location.href).href;
      link.download = "";
      doc.body.appendChild(link);
      link.click();
      link.remove();
    },
  }, text);
}

// -- confirmation and notices -------------------------------------------------------------------------------
// In the page itself: the iframe's sandbox has no allow-modals, so window.confirm() would answer "no" unasked.

function confirmAction(text) {
  return new Promise((resolve) => {
    const box = $("confirm");
    $("confirm-text").textContent = text;
    box.hidden = false;
    const done = (answer) => { box.hidden = true; $("confirm-yes").onclick = null; $("confirm-no").onclick = null; resolve(answer); };
    $("confirm-yes").onclick = () => done(true);
    $("confirm-no").onclick = () => done(false);
    $("confirm-yes").focus();
  });
}

function notice(...parts) {
  const box = $("notice");
  box.replaceChildren(...parts);
  box.hidden = !parts.length;
}

// -- reprocessing ---------------------------------------------------------------------------------------------

async function reprocess(ids) {
  const names = ids.map(id => state.rows[id] ? `#${id} ${state.rows[id].name}` : `#${id}`);
  const ok = await confirmAction(`Reprocess ${ids.length} file(s) from their raw copies? ${names.join(", ")}. ` +
    "A reprocess_files run starts under your name.");
  if (!ok) return null;
  const result = await api("api/reprocess", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ file_ids: ids }) });
  state.selected.clear();
  notice(`Reprocessing ${result.file_ids.map(i => `#${i}`).join(", ")} requested by ${result.requested_by}: run `,
    uiLink(result.run_url, result.run_id), result.paused ? " (the DAG is paused: the run waits until it is unpaused)" : "");
  return result;
}

function selectBox(f) {
  if (!state.me?.can_reprocess || !REPROCESSABLE.has(f.status)) return el("td", {});
  const box = el("input", { type: "checkbox", class: "pick", "aria-label": `select file ${f.id}`, onclick: (e) => e.stopPropagation(),
    onchange: (e) => { if (e.target.checked) state.selected.add(f.id); else state.selected.delete(f.id); renderActions(); } });
  box.checked = state.selected.has(f.id);
  return el("td", { class: "pick" }, box);
}

function renderActions() {
  document.querySelectorAll(".actions").forEach(bar => {
    if (!state.me?.can_reprocess) { bar.replaceChildren(); return; }
    const ids = [...state.selected].sort((a, b) => a - b);
    bar.replaceChildren(el("button", { type: "button", class: "reprocess", disabled: ids.length ? null : "",
      onclick: () => run(reprocess(ids).then(r => r && loaders[currentTab()]())) },
    `Reprocess selected (${ids.length})`),
    el("span", { class: "muted" }, " failed and quarantined files can be selected"));
  });
}

function remember(items) { items.forEach(f => { state.rows[f.id] = f; }); }

// -- overview ---------------------------------------------------------------------------------------------

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) if (value !== null && value !== undefined) node.setAttribute(key, value);
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const step = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 2.5, 5, 10].map(m => m * step).find(v => v >= value);
}

const CHART = { w: 520, h: 220, left: 46, right: 12, top: 12, bottom: 34 };

function axes(days, max, unit) {
  const { w, h, left, right, top, bottom } = CHART;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map(f => f * max);
  const y = v => top + (h - top - bottom) * (1 - v / max);
  const every = Math.ceil(days.length / 8);
  const band = (w - left - right) / days.length;
  return [
    ticks.map(t => [svg("line", { class: "grid", x1: left, x2: w - right, y1: y(t), y2: y(t) }),
      svg("text", { class: "tick", x: left - 4, y: y(t) + 4, "text-anchor": "end" }, `${fmtNum(t, 1)}${unit || ""}`)]),
    days.map((d, i) => i % every ? null : svg("text", { class: "tick", x: left + band * (i + 0.5), y: h - bottom + 14,
      "text-anchor": "middle" }, d.slice(5))),
  ];
}

function chartFrame(label, ...children) {
  return svg("svg", { viewBox: `0 0 ${CHART.w} ${CHART.h}`, role: "img", "aria-label": label, class: "chart-svg" }, ...children);
}

function legend(items) {
  return el("div", { class: "legend" }, items.map(([cls, text]) => el("span", {}, el("i", { class: `key ${cls}` }), text)));
}

function filesChart(series) {
  const { w, h, left, right, top, bottom } = CHART;
  const perDay = series.days.map(d => Object.fromEntries(series.files.filter(r => r.day === d).map(r => [r.status, r.files])));
  const totals = perDay.map(day => Object.values(day).reduce((a, b) => a + b, 0));
  if (!totals.some(Boolean)) return el("p", { class: "muted" }, "No files in this period.");
  const max = niceMax(Math.max(...totals));
  const band = (w - left - right) / series.days.length;
  const scale = v => (h - top - bottom) * v / max;
  const bars = series.days.flatMap((d, i) => {
    let base = h - bottom;
    return STATUSES.filter(st => perDay[i][st]).map(st => {
      const height = scale(perDay[i][st]);
      base -= height;
      return svg("rect", { class: `bar s-${st}`, x: left + band * i + band * 0.15, y: base, width: band * 0.7, height, "data-day": d },
        svg("title", {}, `${d}: ${perDay[i][st]} ${st}`));
    });
  });
  const used = STATUSES.filter(st => series.files.some(r => r.status === st));
  return el("div", {}, chartFrame(`Files per day by status, ${series.since} to ${series.until}`, axes(series.days, max), bars),
    legend(used.map(st => [`s-${st}`, st])));
}

function rejectedChart(series) {
  const byFeed = {};
  for (const r of series.rows) {
    const f = byFeed[r.feed] ??= { total: 0, rejected: 0 };
    f.total += r.rows_total; f.rejected += r.rows_rejected;
  }
  const feeds = Object.keys(byFeed).sort();
  if (!feeds.length) return el("p", { class: "muted" }, "No rows checked in this period.");
  const rowH = 26, left = 110, right = 60, width = CHART.w;
  const height = feeds.length * rowH + 24;
  const max = niceMax(Math.max(...feeds.map(f => byFeed[f].total ? byFeed[f].rejected / byFeed[f].total : 0)) * 100) || 1;
  const x = v => left + (width - left - right) * v / max;
  return svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart-svg",
    "aria-label": `Rejected-row share per feed, ${series.since} to ${series.until}` },
    [0, 0.5, 1].map(t => [svg("line", { class: "grid", x1: x(t * max), x2: x(t * max), y1: 4, y2: height - 18 }),
      svg("text", { class: "tick", x: x(t * max), y: height - 4, "text-anchor": "middle" }, `${fmtNum(t * max, 1)} %`)]),
    feeds.map((feed, i) => {
      const { total, rejected } = byFeed[feed];
      const share = total ? 100 * rejected / total : 0;
      return [svg("text", { class: "label", x: left - 6, y: 4 + i * rowH + 16, "text-anchor": "end" }, feed),
        svg("rect", { class: "bar rejected", x: left, y: 4 + i * rowH + 4, width: Math.max(1, x(share) - left), height: rowH - 10, "data-feed": feed },
          svg("title", {}, `${feed}: ${rejected} of ${total} rows rejected`)),
        svg("text", { class: "value", x: x(share) + 4, y: 4 + i * rowH + 16 }, `${share.toFixed(1)} %`)];
    }));
}

function latencyChart(series) {
  const { w, h, left, right, top, bottom } = CHART;
  const byDay = Object.fromEntries(series.latency.map(r => [r.day, r]));
  if (!series.latency.length) return el("p", { class: "muted" }, "No file finished in this period.");
  const max = niceMax(Math.max(...series.latency.map(r => r.p95_s ?? 0)));
  const band = (w - left - right) / series.days.length;
  const y = v => top + (h - top - bottom) * (1 - v / max);
  const line = (key, cls) => {
    const points = series.days.map((d, i) => byDay[d] ? [left + band * (i + 0.5), y(byDay[d][key])] : null).filter(Boolean);
    return [svg("polyline", { class: `line ${cls}`, points: points.map(p => p.join(",")).join(" ") }),
      series.days.map((d, i) => byDay[d] ? svg("circle", { class: `dot ${cls}`, cx: left + band * (i + 0.5), cy: y(byDay[d][key]), r: 3.5 },
        svg("title", {}, `${d}: ${key.replace("_s", "")} ${fmtNum(byDay[d][key], 2)} s over ${byDay[d].files} file(s)`)) : null)];
  };
  return el("div", {}, chartFrame(`Processing latency percentiles per day, ${series.since} to ${series.until}`,
    axes(series.days, max, " s"), line("p95_s", "p95"), line("p50_s", "p50")),
  legend([["p50", "p50"], ["p95", "p95"]]));
}

async function loadCharts(p) {
  const series = await api(`api/series${query(p)}`);
  $("chart-files").replaceChildren(filesChart(series));
  $("chart-rejected").replaceChildren(rejectedChart(series));
  $("chart-latency").replaceChildren(latencyChart(series));
}

async function loadOverview() {
  const p = period();
  const charts = loadCharts(p);
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
  await charts;
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
  remember(page.items);
  renderActions();
  $("file-table").replaceChildren(page.items.length ? table(
    ["", { label: "id", num: true }, "feed", "name", "status", { label: "size", num: true }, "arrived (UTC)", "finished", "reason"],
    page.items.map(f => el("tr", { class: "clickable", "data-id": f.id, onclick: () => run(showDetail(f.id)) },
      selectBox(f), el("td", { class: "num" }, f.id), el("td", {}, f.feed), el("td", {}, f.name), el("td", {}, badge(f.status)),
      el("td", { class: "num" }, fmtNum(f.size_bytes)), el("td", {}, fmtTime(f.created_at)),
      el("td", {}, fmtTime(f.finished_at)), el("td", { class: "reason" }, f.error || "")))) :
    el("p", { class: "muted" }, "No file matches."));
}

const DRIFT_ACTIONS = {
  evolved: "accepted as a new schema version (schema_drift: evolve)",
  warned: "accepted as a new schema version, with an alert (schema_drift: warn)",
  frozen: "refused: the file is quarantined (schema_drift: freeze)",
  not_accepted: "not a new version: the file was quarantined for another reason",
};

/* How the file's columns differ from the feed's schema version: one row per change, coloured by its kind. */
function driftSection(drift) {
  if (!drift) return [];
  const to = drift.to_version ? ` → version ${drift.to_version}` : "";
  return [
    el("h3", {}, "Schema drift"),
    el("div", { id: "schema-drift", class: `drift drift-${drift.action}` },
      el("p", {}, `Against version ${drift.from_version ?? "–"}${to}: ${DRIFT_ACTIONS[drift.action] || drift.action}.`),
      table(["change", "column", "detail"], (drift.changes || []).map(c => el("tr", { class: `drift-${c.kind}` },
        el("td", {}, c.kind), el("td", {}, el("code", {}, c.column)), el("td", { class: "reason" }, c.message)))),
      el("p", { class: "muted" }, "The file's columns: ",
        (drift.columns || []).map(c => `${c.name} ${c.type}${c.nullable ? "?" : ""}`).join(", "))),
  ];
}

// -- lineage: the file's OpenLineage run as inputs → job → outputs ------------------------------------------

function lineageDataset(d) {
  const failed = d.assertions.filter(a => !a.success);
  return el("div", { class: "lineage-dataset" },
    el("code", {}, `${d.namespace}/${d.name.replace(/^\//, "")}`),
    el("div", { class: "muted" }, d.rows != null ? `${fmtNum(d.rows)} rows` : "rows –",
      d.fields.length ? ` · ${d.fields.length} columns` : ""),
    d.assertions.length ? el("div", { class: failed.length ? "lineage-failed" : "lineage-ok" },
      `${d.assertions.length - failed.length}/${d.assertions.length} assertions pass`,
      failed.length ? `: failed ${failed.map(a => `${a.column ? a.column + " " : ""}${a.assertion}`).join(", ")}` : "") : null,
    el("div", { class: "muted lineage-facets" }, `facets: ${d.facets.join(", ") || "–"}`));
}

function lineageView(l) {
  if (!l.finished) return el("p", { class: "muted" }, "Lineage is sent when the file finishes.");
  const received = l.received == null ? "no local lineage receiver configured"
    : `${l.received.length} event(s) received by the lineage backend: ${l.received.map(e => e.eventType).join(", ") || "none yet"}`;
  return el("div", {},
    el("div", { class: "lineage-flow" },
      el("div", { class: "lineage-col" }, el("h4", {}, "inputs"), ...l.inputs.map(lineageDataset)),
      el("div", { class: "lineage-arrow", "aria-hidden": "true" }, "→"),
      el("div", { class: "lineage-col lineage-job" }, el("h4", {}, "job"),
        el("code", {}, `${l.job.namespace}/${l.job.name}`), " ", badge(l.event_type === "COMPLETE" ? "processed" : "failed"),
        el("div", { class: "muted" }, `${fmtNum(l.rows.in)} in · ${fmtNum(l.rows.valid)} valid · ${fmtNum(l.rows.rejected)} rejected`),
        el("div", { class: "muted" }, `parent: ${l.job.task || "–"}`)),
      el("div", { class: "lineage-arrow", "aria-hidden": "true" }, "→"),
      el("div", { class: "lineage-col" }, el("h4", {}, "outputs"), ...l.outputs.map(lineageDataset))),
    el("p", { class: "muted" }, received));
}

async function loadLineage(id) {
  const box = $("lineage");
  try {
    const l = await api(`api/files/${encodeURIComponent(id)}/lineage`);
    if ($("lineage") === box) box.replaceChildren(lineageView(l));
  } catch (err) {
    box.replaceChildren(el("p", { class: "muted" }, `Lineage unavailable: ${err.message}`));
  }
}

async function showDetail(id) {
  const d = await api(`api/files/${encodeURIComponent(id)}`);
  const f = d.file;
  const box = $("detail");
  const q = d.quality;
  state.rows[f.id] = f;
  const downloads = Object.entries(d.downloads || {});
  box.replaceChildren(
    el("h2", {}, `File #${f.id}: `, f.name, " ", badge(f.status)),
    el("div", { class: "file-actions" },
      d.can_reprocess ? el("button", { type: "button", class: "reprocess", onclick: () => run(reprocess([f.id]).then(r => r && showDetail(f.id))) },
        "Reprocess this file") : null,
      downloads.length ? el("span", { class: "downloads" }, "Download: ",
        downloads.flatMap(([kind, href]) => [downloadLink(href, DOWNLOAD_LABELS[kind] || kind), " "])) : null),
    el("dl", { class: "kv" },
      [["feed", f.feed], ["source", `${f.source}${f.source_path ? ` (${f.source_path})` : ""}`], ["raw copy", `s3://…/${f.raw_key}`],
        ["sha256", f.sha256 || "–"], ["size", `${fmtNum(f.size_bytes)} bytes`], ["attempts", f.attempts],
        ["arrived", fmtTime(f.created_at)], ["finished", fmtTime(f.finished_at)],
        ["reason", f.error || "–"], ["params", JSON.stringify(f.params || {})]]
        .flatMap(([k, v]) => [el("dt", {}, k), el("dd", { class: k === "reason" ? "reason" : null }, v)])),
    ...driftSection(d.schema_drift),
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
    el("h3", {}, "Lineage (OpenLineage)"),
    el("div", { id: "lineage" }, el("p", { class: "muted" }, "Loading lineage…")),
    el("h3", {}, "API calls"),
    d.api_calls.length ? table([{ label: "batch", num: true }, { label: "attempt", num: true }, { label: "records", num: true },
      { label: "HTTP", num: true }, { label: "ms", num: true }, "acknowledged", "at (UTC)", "error"],
    d.api_calls.map(c => el("tr", {}, el("td", { class: "num" }, c.batch_no), el("td", { class: "num" }, c.attempt),
      el("td", { class: "num" }, c.records), el("td", { class: "num" }, c.status_code ?? "–"), el("td", { class: "num" }, fmtNum(c.latency_ms)),
      el("td", {}, c.acknowledged ? "yes" : "no"), el("td", {}, fmtTime(c.at)), el("td", { class: "reason" }, c.error || ""))))
      : el("p", { class: "muted" }, "No API calls."),
  );
  box.hidden = false;
  box.dataset.id = String(f.id);
  loadLineage(f.id);
  document.querySelectorAll("#file-table tr.selected").forEach(r => r.classList.remove("selected"));
  document.querySelector(`#file-table tr[data-id="${CSS.escape(String(id))}"]`)?.classList.add("selected");
  box.scrollIntoView({ behavior: "smooth", block: "start" });
}

// -- failures, reports, upload, api -----------------------------------------------------------------------

async function loadFailures() {
  const p = period();
  const page = await api(`api/errors${query({ ...p, limit: 200 })}`);
  $("failures-period").textContent = `${p.since} – ${p.until} (UTC): ${page.total}`;
  remember(page.items);
  renderActions();
  $("failure-table").replaceChildren(page.items.length ? table(
    ["", { label: "id", num: true }, "feed", "name", "status", "arrived (UTC)", "reason"],
    page.items.map(f => el("tr", { class: "clickable", "data-id": f.id, onclick: () => { selectTab("files"); run(showDetail(f.id)); } },
      selectBox(f), el("td", { class: "num" }, f.id), el("td", {}, f.feed), el("td", {}, f.name), el("td", {}, badge(f.status)),
      el("td", {}, fmtTime(f.created_at)), el("td", { class: "reason" }, f.error || "")))) :
    el("p", { class: "muted" }, "No failures in this period."));
}

// -- expected deliveries: a calendar of days × feeds -----------------------------------------------------------

const SLOT_STATES = ["missed", "late", "expected", "arrived"];  // a day's cell takes the first state among its slots

function fmtDelay(seconds) {
  if (!seconds) return "";
  const minutes = Math.round(seconds / 60);
  return minutes >= 60 ? `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min` : `${minutes} min`;
}

function slotLine(s) {
  const came = `${s.files.length} of ${s.files_expected} file(s)`;
  const delay = s.delay_seconds ? `, ${fmtDelay(s.delay_seconds)} after the slot time` : "";
  return `${s.local_time} ${s.state}: ${came}${delay}`;
}

function showSlots(feed, day, slots) {
  const box = $("delivery-detail");
  box.replaceChildren(el("h3", {}, `${feed}, ${day}`),
    table(["slot (local)", "state", "pattern", "files", "delay", "deadline (UTC)"], slots.map(s => el("tr", { class: "slot-row" },
      el("td", {}, s.local_time), el("td", {}, el("span", { class: `badge d-${s.state}` }, s.state)), el("td", {}, el("code", {}, s.pattern)),
      el("td", {}, s.files.length ? s.files.map((f, i) => [i ? ", " : "", el("a", { href: "#", onclick: (e) => {
        e.preventDefault(); selectTab("files"); run(showDetail(f.file_id)); } }, `#${f.file_id} ${f.name}`)]) : `none of ${s.files_expected}`),
      el("td", {}, fmtDelay(s.delay_seconds) || "–"), el("td", {}, fmtTime(s.deadline_at))))));
  box.hidden = false;
}

async function loadDeliveries() {
  const p = period();
  const data = await api(`api/deliveries${query(p)}`);
  $("deliveries-period").textContent = `${data.since} – ${data.until} (local days)`;
  $("delivery-detail").hidden = true;
  if (!data.feeds.length) {
    $("delivery-calendar").replaceChildren(el("p", { class: "muted" },
      "No feed you may read has an expect: block (see the docs: Expected deliveries)."));
    return;
  }
  const byCell = {};
  for (const s of data.slots) (byCell[`${s.feed}|${s.local_day}`] ??= []).push(s);
  const head = el("tr", {}, el("th", {}, "feed"), data.days.map(d => el("th", { class: "day" }, d.slice(5))));
  const rows = data.feeds.map(f => el("tr", { "data-feed": f.feed },
    el("th", { class: "feed", title: `${f.schedule} (${f.timezone}), ${f.files} file(s), grace ${f.grace_minutes} min` }, f.feed),
    data.days.map(d => {
      const slots = byCell[`${f.feed}|${d}`] || [];
      if (!slots.length) return el("td", { class: "cell none", "data-day": d, title: `${d}: no slot` });
      const worst = SLOT_STATES.find(st => slots.some(s => s.state === st));
      return el("td", { class: `cell d-${worst}`, "data-day": d, "data-state": worst, tabindex: "0",
        title: `${d}\n${slots.map(slotLine).join("\n")}`, onclick: () => showSlots(f.feed, d, slots),
        onkeydown: (e) => { if (e.key === "Enter") showSlots(f.feed, d, slots); } },
      slots.length > 1 ? String(slots.length) : "");
    })));
  $("delivery-calendar").replaceChildren(el("table", { class: "calendar" }, el("thead", {}, head), el("tbody", {}, rows)),
    legend(SLOT_STATES.map(st => [`d-${st}`, st])));
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

// -- ask --------------------------------------------------------------------------------------------------

const ASK_EXAMPLES = ["top 5 sellers by revenue last week", "units of product P00001 per day in November",
  "files per status today", "failures per feed in the last 7 days", "average price per product yesterday"];

function askChart(answer) {
  const spec = answer.chart;
  if (!spec) return null;
  const { w, h, left, right, top, bottom } = CHART;
  const labels = answer.rows.map(r => String(r[spec.x]));
  const series = spec.y.map(col => answer.rows.map(r => Number(r[col] ?? 0)));
  const max = niceMax(Math.max(0, ...series.flat()));
  const band = (w - left - right) / labels.length;
  const y = v => top + (h - top - bottom) * (1 - v / max);
  const every = Math.ceil(labels.length / 8);
  const xLabels = labels.map((l, i) => i % every ? null : svg("text", { class: "tick", x: left + band * (i + 0.5),
    y: h - bottom + 14, "text-anchor": "middle" }, spec.x === "day" ? l.slice(5) : l));
  const width = band * 0.7 / series.length;
  const marks = series.map((values, k) => spec.kind === "line"
    ? [svg("polyline", { class: `line ask-s${k}`, points: values.map((v, i) => `${left + band * (i + 0.5)},${y(v)}`).join(" ") }),
      values.map((v, i) => svg("circle", { class: `dot ask-s${k}`, cx: left + band * (i + 0.5), cy: y(v), r: 3 },
        svg("title", {}, `${labels[i]}: ${spec.y[k]} ${fmtNum(v, 2)}`)))]
    : values.map((v, i) => svg("rect", { class: `bar ask-s${k}`, x: left + band * (i + 0.15) + width * k, y: y(v),
      width, height: Math.max(0, h - bottom - y(v)) }, svg("title", {}, `${labels[i]}: ${spec.y[k]} ${fmtNum(v, 2)}`))));
  return el("figure", { class: "chart ask-chart" }, chartFrame(`${spec.y.join(", ")} per ${spec.x}`, axes(labels, max)[0], xLabels, marks),
    spec.y.length > 1 ? legend(spec.y.map((col, k) => [`ask-s${k}`, col])) : null);
}

function showAnswer(answer) {
  const rows = answer.rows.map(r => el("tr", {}, answer.columns.map(c => el("td", {}, fmtNum(r[c], 2)))));
  $("ask-answer").replaceChildren(
    el("p", {}, `Understood (${answer.engine === "llm" ? "by the LLM" : "by the built-in grammar"}): `, answer.understood),
    el("pre", { id: "ask-sql", class: "sql" }, answer.sql),
    askChart(answer),
    rows.length ? table(answer.columns, rows) : el("p", { class: "muted" }, "No rows."),
    el("p", { class: "muted" }, `${answer.rows.length} row(s)${answer.truncated ? " (cut at the row limit)" : ""}, ${answer.elapsed_ms} ms`));
}

async function askQuestion(event) {
  event.preventDefault();
  $("ask-answer").replaceChildren(el("p", { class: "muted" }, "Asking…"));
  try {
    showAnswer(await api("api/ask", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ question: $("ask-question").value }) }));
  } catch (err) { $("ask-answer").replaceChildren(el("p", { id: "ask-refusal", class: "error" }, err.message)); }
}

async function loadAsk() {
  if ($("ask-form").dataset.wired) return;
  $("ask-form").dataset.wired = "1";
  $("ask-form").addEventListener("submit", askQuestion);
  $("ask-examples").replaceChildren("Try: ", ...ASK_EXAMPLES.flatMap((q, i) => [i ? " · " : "",
    el("a", { href: "#", class: "ask-example", onclick: (e) => { e.preventDefault(); $("ask-question").value = q; $("ask-form").requestSubmit(); } }, q)]));
}

// -- wiring -----------------------------------------------------------------------------------------------

const loaders = { overview: loadOverview, files: loadFiles, failures: loadFailures, deliveries: loadDeliveries, reports: loadReports,
  upload: loadUploadFeeds, api: loadApi, ask: loadAsk };

function run(promise) { return promise.then(() => showError("")).catch(err => showError(err.message)); }

function selectTab(name) {
  notice();
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
    state.me = me;
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
