// The consumer's web UI: search the audit trail, chart it, open a user's
// or a command's timeline, export what the filters select. Everything
// comes from the consumer's own /api/v1 (see consumer/api); no data is in
// these files.
//
// The address is the state: /ui/?<filters>&range=… is the overview,
// /ui/timeline?user_id=…|command_id=…&range=… a timeline. Every search,
// preset, zoom and timeline is a history entry, so links can be shared
// and the back button undoes them.
import uPlot from "./vendor/uplot/uPlot.esm.js";

const $ = (sel) => document.querySelector(sel);
const TOKEN_KEY = "revoked.apiToken";
const PAGE_SIZE = 25;
const MINUTE = 60;
const HOUR = 3600;
const DAY = 24 * HOUR;
// Presets: the last span of time, or, when the filters select nothing in
// it, the same span up to the newest row they select (/api/v1/activity).
const PRESETS = { "15m": 15 * MINUTE, "1h": HOUR, "6h": 6 * HOUR, "24h": DAY, "7d": 7 * DAY };
const PRESET_NAMES = { "15m": "15 minutes", "1h": "hour", "6h": "6 hours", "24h": "24 hours", "7d": "7 days" };
const DEFAULT_RANGE = "1h";
const BUCKETS = [MINUTE, 5 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY];
const MAX_BARS = 180;
const MIN_ZOOM = MINUTE;
const MAX_RULE_SERIES = 7;
const FILTERS = ["q", "q_in", "user_id", "token_id", "command_id", "rule_id", "step"];

// Colours: rules get a categorical palette, outcomes a semantic one.
const PALETTE = ["#2563eb", "#0d9488", "#f59e0b", "#8b5cf6", "#ec4899", "#64748b", "#84cc16", "#06b6d4"];
const OUTCOME_COLORS = {
  confirmed: "#16a34a", unconfirmed: "#84cc16", revoked: "#4ade80", not_effective: "#b91c1c", held: "#8b5cf6", dry_run: "#a78bfa", notified: "#38bdf8",
  rejected: "#f59e0b", dead_lettered: "#dc2626",
};
const OUTCOME_ORDER = ["confirmed", "unconfirmed", "revoked", "notified", "dry_run", "held", "rejected", "not_effective", "dead_lettered"];

// Every revocation ends confirmed (a proof shows the tokens inactive),
// unconfirmed (the IdP accepted and offers no proof) or not effective (a
// proof shows a token still active). Older trails recorded revoked and
// then verified: read as unconfirmed and confirmed.
const OUTCOME_OF = { confirmed: "confirmed", verified: "confirmed", unconfirmed: "unconfirmed", revoked: "unconfirmed", not_effective: "not_effective" };
const REVOCATION_STEPS = new Set(["confirmed", "unconfirmed", "not_effective"]);

const state = {
  view: "overview",
  q: "", q_in: "", user_id: "", token_id: "", command_id: "", rule_id: "", step: "",
  range: DEFAULT_RANGE, from: "", to: "",
  offset: 0, by: "rule",
  // The timeline's subject.
  subject: { kind: "", id: "" },
};
// The range on screen: Unix seconds, whole buckets, and why it ends where
// it does.
let view = null;
// The precision the store keeps times at: "ms" or "s" (/api/v1/activity).
let precision = "s";
let lastStats = null;
const charts = { outcomes: null, latency: null, user: null };
const knownRules = new Set();

// ---------------------------------------------------------------- helpers

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("data-")) e.dataset[k.slice(5).replace(/-(\w)/g, (_, c) => c.toUpperCase())] = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const pad = (n, w = 2) => String(n).padStart(w, "0");
// fmtTime prints a time in UTC at the precision the store keeps: with
// milliseconds only when the store has them.
function fmtTime(iso, prec = precision) {
  if (!iso) return "";
  const d = new Date(iso);
  const s = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  return prec === "ms" ? `${s}.${pad(d.getUTCMilliseconds(), 3)}` : s;
}
const fmtUnix = (secs, prec = "s") => fmtTime(new Date(secs * 1000).toISOString(), prec);
const isoSeconds = (secs) => new Date(secs * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
function fmtMs(ms) {
  if (ms == null) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${+(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  return `${+(ms / 60000).toFixed(1)} min`;
}
const fmtDelta = (ms) => (ms <= 0 ? "" : "+" + fmtMs(ms));
const fmtCount = (n) => Number(n).toLocaleString("en-US");
const fmtBucket = (s) => (s % DAY === 0 ? `${s / DAY}d` : s % HOUR === 0 ? `${s / HOUR}h` : `${s / 60}m`);
const stepLabel = (s) => (REVOCATION_STEPS.has(s) ? "revocation" : s.replace("_", " "));
const outcomeLabel = (o) => o.replace("_", " ");

function setStatus(text, isError) {
  const s = $("#status");
  s.textContent = text;
  s.classList.toggle("error", !!isError);
}

// ---------------------------------------------------------------- API

let tokenPrompt = null;

// api fetches path with the bearer token kept in session storage, asking
// for the token when the consumer answers 401.
async function api(path, params) {
  const qs = params ? params.toString() : "";
  const url = path + (qs ? "?" + qs : "");
  for (let attempt = 0; attempt < 5; attempt++) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    const resp = await fetch(url, { headers, cache: "no-store" });
    if (resp.status !== 401) return resp;
    if (token && sessionStorage.getItem(TOKEN_KEY) === token) sessionStorage.removeItem(TOKEN_KEY);
    await askToken(!!token);
  }
  throw new Error("the API token was refused");
}

async function apiJSON(path, params) {
  const resp = await api(path, params);
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(body.error || `${resp.status} ${resp.statusText}`);
  return body;
}

function askToken(refused) {
  if (!tokenPrompt) {
    tokenPrompt = new Promise((resolve) => {
      const dlg = $("#token-dialog");
      $("#token-error").hidden = !refused;
      $("#token-input").value = "";
      $("#token-form").addEventListener("submit", () => {
        sessionStorage.setItem(TOKEN_KEY, $("#token-input").value.trim());
        $("#signout").hidden = false;
        resolve();
      }, { once: true });
      dlg.showModal();
      $("#token-input").focus();
    }).finally(() => { tokenPrompt = null; });
  }
  return tokenPrompt;
}

// ---------------------------------------------------------------- address

// The directory of the UI (/ui/), whichever page is open.
const base = () => location.pathname.replace(/timeline$/, "");

function rangeParams(p) {
  if (state.range === "custom") {
    p.set("from", state.from);
    p.set("to", state.to);
  } else if (state.range !== DEFAULT_RANGE) {
    p.set("range", state.range);
  }
  return p;
}

function overviewURL() {
  const p = new URLSearchParams();
  for (const k of FILTERS) if (state[k]) p.set(k, state[k]);
  rangeParams(p);
  if (state.by !== "rule") p.set("by", state.by);
  if (state.offset) p.set("offset", state.offset);
  const qs = p.toString();
  return base() + (qs ? "?" + qs : "");
}

function timelineURL(kind, id) {
  const p = new URLSearchParams({ [kind === "command" ? "command_id" : "user_id"]: id });
  return base() + "timeline?" + rangeParams(p).toString();
}

function currentURL() {
  return state.view === "timeline" ? timelineURL(state.subject.kind, state.subject.id) : overviewURL();
}

function loadURL() {
  const p = new URLSearchParams(location.search);
  state.view = /\/timeline$/.test(location.pathname) ? "timeline" : "overview";
  state.from = p.get("from") || "";
  state.to = p.get("to") || "";
  const r = p.get("range");
  state.range = state.from && state.to ? "custom" : PRESETS[r] ? r : DEFAULT_RANGE;
  if (state.view === "timeline") {
    const cmd = p.get("command_id");
    state.subject = cmd ? { kind: "command", id: cmd } : { kind: "user", id: p.get("user_id") || "" };
    return;
  }
  for (const k of FILTERS) state[k] = p.get(k) || "";
  state.by = p.get("by") === "outcome" ? "outcome" : "rule";
  state.offset = Math.max(0, parseInt(p.get("offset") || "0", 10) || 0);
}

// entryState is what a history entry of the current view remembers:
// depth counts the timeline entries since the overview they were opened
// from (0: none, the timeline was opened by its address), so Back in the
// page returns to that overview with its filters.
function entryState(replace) {
  const cur = history.state || {};
  if (state.view !== "timeline") return { ui: true, overview: true, depth: 0 };
  if (replace) return { ui: true, depth: cur.depth || 0 };
  if (cur.overview) return { ui: true, depth: 1 };
  return { ui: true, depth: cur.depth ? cur.depth + 1 : 0 };
}

// go makes the state the address (a new history entry unless replace) and
// shows it.
function go({ replace = false } = {}) {
  const url = currentURL();
  if (replace || url !== location.pathname + location.search) {
    history[replace ? "replaceState" : "pushState"](entryState(replace), "", url);
  }
  return render();
}

// navigate opens an address of the UI as a new history entry.
function navigate(href) {
  const url = new URL(href, location.href);
  const timeline = /\/timeline$/.test(url.pathname);
  const prev = history.state || {};
  const depth = !timeline ? 0 : prev.overview ? 1 : prev.depth ? prev.depth + 1 : 0;
  history.pushState({ ui: true, overview: !timeline, depth }, "", url.pathname + url.search);
  loadURL();
  return render();
}

// ---------------------------------------------------------------- form

function readForm() {
  state.q = $("#f-q").value.trim();
  state.q_in = $("#f-in").value;
  state.rule_id = $("#f-rule").value.trim();
  state.step = $("#f-step").value;
}

function writeForm() {
  $("#f-q").value = state.q;
  $("#f-in").value = state.q_in;
  $("#f-rule").value = state.rule_id;
  $("#f-step").value = state.step;
  for (const b of document.querySelectorAll(".presets button")) b.classList.toggle("on", b.dataset.range === state.range);
  for (const b of document.querySelectorAll("[data-by]")) b.classList.toggle("on", b.dataset.by === state.by);
  const chips = [["user_id", "user"], ["token_id", "token"], ["command_id", "command"]].filter(([k]) => state[k]);
  $("#chips").hidden = chips.length === 0;
  $("#chips").replaceChildren(...chips.map(([k, name]) => el("span", { class: "chip", "data-filter": k },
    el("span", { title: state[k] }, `${name} = ${state[k]}`),
    el("button", { type: "button", "aria-label": `Remove the ${name} filter`, "data-clear": k }, "×"))));
}

// ---------------------------------------------------------------- range

function filterParams() {
  const p = new URLSearchParams();
  if (state.view === "timeline") {
    p.set(state.subject.kind === "command" ? "command_id" : "user_id", state.subject.id);
  } else {
    for (const k of FILTERS) if (state[k]) p.set(k, state[k]);
  }
  return p;
}

function bucketFor(span) { return BUCKETS.find((b) => span / b <= MAX_BARS) || DAY; }

// resolveRange decides the range to show: a custom range as given, or a
// preset's span up to now, or, when the filters select nothing in it, up
// to the newest row they select (looked for in the last 31 days). It also
// learns the store's time precision.
async function resolveRange() {
  const now = Math.floor(Date.now() / 1000);
  const act = await apiJSON("/api/v1/activity", filterParams());
  if (act.time_precision) precision = act.time_precision;
  const latest = act.latest ? Date.parse(act.latest) / 1000 : null;
  if (state.range === "custom") {
    let from = Date.parse(state.from) / 1000, to = Date.parse(state.to) / 1000;
    if (!(to > from)) { from = now - HOUR; to = now; }
    const bucket = bucketFor(to - from);
    return { from: Math.floor(from / bucket) * bucket, to: Math.ceil(to / bucket) * bucket, bucket, custom: true, latest };
  }
  const span = PRESETS[state.range];
  const bucket = bucketFor(span);
  let end = now, anchored = false;
  if (latest != null && latest < now - span) { end = latest + 1; anchored = true; }
  // Whole buckets: the one holding the end is included.
  const to = Math.ceil(end / bucket) * bucket;
  return { from: to - span, to, bucket, anchored, latest, none: latest == null };
}

function showRange() {
  const r = view;
  for (const b of document.querySelectorAll(".presets button")) b.classList.toggle("on", b.dataset.range === state.range);
  const fmt = (s) => fmtUnix(s).slice(0, r.to - r.from < DAY ? 19 : 16).replace(/:00$/, "");
  const span = `${fmt(r.from)} → ${fmt(r.to)} UTC`;
  const name = PRESET_NAMES[state.range];
  let label = span, note = "";
  if (r.anchored) {
    label = `${name[0].toUpperCase() + name.slice(1)} up to the latest activity · ${span}`;
    note = `Nothing in the last ${name}; the latest activity was at ${fmtUnix(r.latest)} UTC.`;
  } else if (!r.custom) {
    label = `Last ${name} · ${span}`;
    if (r.none) note = "No activity in the last 31 days.";
  }
  $("#range-label").textContent = label;
  $("#range-note").textContent = note;
  document.body.dataset.from = isoSeconds(r.from);
  document.body.dataset.to = isoSeconds(r.to);
  document.body.dataset.anchored = r.anchored ? "true" : "false";
  $("#rangebar").dataset.range = state.range;
}

function rangeQuery(p = filterParams()) {
  p.set("from", isoSeconds(view.from));
  p.set("to", isoSeconds(view.to));
  return p;
}

// zoom narrows the range to [from, to) (Unix seconds), picked on a chart.
function zoom(from, to) {
  from = Math.max(Math.floor(from), view.from);
  to = Math.min(Math.ceil(to), view.to);
  if (to - from < MIN_ZOOM) {
    const mid = (from + to) / 2;
    from = Math.floor(mid - MIN_ZOOM / 2);
    to = from + MIN_ZOOM;
  }
  // Whole buckets of the new range, so the address is what is shown.
  const bucket = bucketFor(to - from);
  from = Math.floor(from / bucket) * bucket;
  to = Math.ceil(to / bucket) * bucket;
  Object.assign(state, { range: "custom", from: isoSeconds(from), to: isoSeconds(to), offset: 0 });
  go();
}

// A drag across a chart selects a range of its x axis: zoom into it.
const zoomHooks = {
  setSelect: [(u) => {
    const { left, width } = u.select;
    if (width < 3) return;
    const from = u.posToVal(left, "x"), to = u.posToVal(left + width, "x");
    u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    zoom(from, to);
  }],
};
const dragX = { x: true, y: false, setScale: false };

// ---------------------------------------------------------------- rows

async function loadRows() {
  const p = rangeQuery();
  p.set("limit", PAGE_SIZE);
  p.set("offset", state.offset);
  const page = await apiJSON("/api/v1/revocations", p);
  // The year is in the range above the table, unless the range spans
  // two years.
  const withYear = new Date(view.from * 1000).getUTCFullYear() !== new Date((view.to - 1) * 1000).getUTCFullYear();
  $("#rows").classList.toggle("precision-s", precision !== "ms");
  $("#rows").classList.toggle("with-year", withYear);
  $("#rows tbody").replaceChildren(...page.rows.map((r) => rowElement(r, withYear)));
  $("#empty").hidden = page.rows.length > 0;
  const first = state.offset + 1, last = state.offset + page.rows.length;
  $("#page-info").textContent = page.rows.length ? `${fmtCount(first)}–${fmtCount(last)}` : "";
  $("#result-count").textContent = page.rows.length ? `· showing ${fmtCount(first)}–${fmtCount(last)}${page.next_offset ? "" : ` of ${fmtCount(last)}`}` : "";
  $("#prev").disabled = state.offset === 0;
  $("#next").disabled = page.next_offset == null;
  $("#rows").dataset.rows = page.rows.length;
}

// target names what the command revoked: its kind, and its id unless
// that is the row's user.
function target(r) {
  const id = { user: r.user_id, token: r.token_id, session: r.session_id, client: r.client_id }[r.target_kind] || "";
  const what = r.target_kind === "user" && id === r.user_id ? "the user" : `${r.target_kind} ${id}`;
  return `${what}${r.include_downscoped ? " + downscoped" : ""}`;
}

// link is an <a> to an address of the UI; a plain click navigates within
// the page (see the click handler in wire).
const link = (href, attrs, ...children) => el("a", { href, "data-nav": "", ...attrs }, ...children);

function rowElement(r, withYear) {
  const latency = r.revoke_latency_ms > 0 ? fmtMs(r.revoke_latency_ms) : "–";
  const outcome = OUTCOME_OF[r.step];
  const tgt = target(r);
  return el("tr", { "data-row-id": r.row_id, "data-step": r.step, "data-outcome": outcome || "" },
    el("td", { class: "mono", title: r.time }, withYear ? fmtTime(r.time) : fmtTime(r.time).slice(5)),
    el("td", {}, el("span", { class: `badge ${REVOCATION_STEPS.has(r.step) ? "revocation" : r.step}` }, stepLabel(r.step))),
    el("td", { class: "outcome" }, outcome ? el("span", { class: `badge ${outcome}` }, outcomeLabel(outcome)) : "–"),
    el("td", {}, r.user_id
      ? link(timelineURL("user", r.user_id), { class: "user clip", title: `Timeline of ${r.user_id}` }, r.user_id)
      : "–"),
    el("td", { class: "mono muted" }, el("span", { class: "clip", title: tgt }, tgt)),
    el("td", {}, el("span", { class: "clip", title: r.rule_id }, r.rule_id)),
    el("td", { title: `${r.action} · ${r.mode}` }, r.mode === "enforce" ? r.action : `${r.action} · ${r.mode.replace("_", " ")}`),
    el("td", { class: "num" }, r.tokens_revoked ? fmtCount(r.tokens_revoked) : "–"),
    el("td", { class: "num" }, latency),
    el("td", { class: "mono" }, link(timelineURL("command", r.command_id), { class: "cmd-link clip", title: `Timeline of command ${r.command_id}` }, r.command_id)),
  );
}

// ---------------------------------------------------------------- stats

async function loadStats() {
  const p = rangeQuery(new URLSearchParams());
  // Stats filter by user and rule; the other filters narrow the rows only.
  if (state.user_id) p.set("user_id", state.user_id);
  if (state.rule_id) p.set("rule_id", state.rule_id);
  p.set("bucket", fmtBucket(view.bucket));
  const st = await apiJSON("/api/v1/stats", p);
  lastStats = { st, ...view };
  for (const o of st.outcomes) knownRules.add(o.rule_id);
  $("#rules").replaceChildren(...[...knownRules].sort().map((k) => el("option", { value: k })));
  renderKPIs(st);
  renderCharts();
}

function renderKPIs(st) {
  const by = {};
  let total = 0;
  for (const o of st.outcomes) { by[o.outcome] = (by[o.outcome] || 0) + o.count; total += o.count; }
  const bad = (by.dead_lettered || 0) + (by.rejected || 0) + (by.not_effective || 0);
  const revoked = (by.confirmed || 0) + (by.unconfirmed || 0) + (by.revoked || 0);
  $("#k-total").textContent = fmtCount(total);
  // The summary and the charts count terminal steps by user and rule: the
  // search, the token, command and step filters narrow the rows only.
  const scope = [state.user_id, state.rule_id].filter(Boolean).join(" · ") || "all users and rules";
  const rowsOnly = state.q || state.token_id || state.command_id || state.step;
  $("#k-range").textContent = rowsOnly ? `${scope} (the search narrows the rows below)` : scope;
  $("#k-revoked").textContent = fmtCount(revoked);
  $("#k-revoked-note").textContent = total
    ? `${fmtCount(by.confirmed || 0)} confirmed · ${fmtCount((by.unconfirmed || 0) + (by.revoked || 0))} unconfirmed`
    : "";
  $("#k-failed").textContent = fmtCount(bad);
  $("#k-failed-note").textContent =
    `${fmtCount(by.not_effective || 0)} not effective · ${fmtCount(by.dead_lettered || 0)} dead-lettered · ${fmtCount(by.rejected || 0)} rejected`;
  const rl = st.revoke_latency_ms, dl = st.detect_latency_ms;
  $("#k-latency").textContent = rl.count ? `${fmtMs(rl.p50)} · ${fmtMs(rl.p99)}` : "–";
  $("#k-detect").textContent = dl.count ? `detection p50 ${fmtMs(dl.p50)} · max ${fmtMs(rl.max)}` : "";
}

function xs(from, to, bucket) {
  const out = [];
  for (let t = from; t < to; t += bucket) out.push(t);
  return out;
}

// stack turns series (bottom first) into cumulative ones with uPlot bands
// between neighbours, so bars and fills stack.
function stack(data) {
  const acc = new Array(data[0].length).fill(0);
  const out = [data[0]];
  for (let i = 1; i < data.length; i++) out.push(data[i].map((v, j) => (acc[j] += v || 0)));
  const bands = [];
  for (let i = 1; i < data.length - 1; i++) bands.push({ series: [i + 1, i] });
  return { data: out, bands };
}

const utc = (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC");
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
// timeTicks labels ticks in UTC: the date at midnight, the time otherwise
// (with seconds when the ticks are less than a minute apart).
function timeTicks(u, splits) {
  const fine = splits.length > 1 && splits[1] - splits[0] < MINUTE;
  return splits.map((ts) => {
    const d = new Date(ts * 1000);
    if (ts % DAY === 0) return `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}`;
    return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}${fine ? ":" + pad(d.getUTCSeconds()) : ""}`;
  });
}
const axisStyle = {
  stroke: "#64748b",
  font: "12px system-ui, sans-serif",
  grid: { stroke: "#eef2f6", width: 1 },
  ticks: { stroke: "#e2e8f0", width: 1, size: 4 },
};
const xAxis = () => ({ ...axisStyle, values: timeTicks, space: 64 });
const xLabel = (u, v) => (v == null ? "" : fmtUnix(v).slice(0, 16));

function chartWidth(node) { return Math.max(240, node.clientWidth - 20); }

function placeholder(node, text) {
  node.replaceChildren(el("div", { class: "placeholder" }, text));
  node.dataset.points = "0";
}

function renderCharts() {
  if (!lastStats) return;
  renderOutcomes();
  renderLatency();
}

function renderOutcomes() {
  if (charts.outcomes) { charts.outcomes.destroy(); charts.outcomes = null; }
  charts.outcomes = outcomeChart($("#chart-outcomes"), lastStats, state.by, 300, "No commands in this range");
}

// outcomeChart draws stats as bars per bucket, stacked by rule or by
// outcome, into node, and marks node with what it drew (data-points: the
// buckets with data; data-series; data-total: the commands).
function outcomeChart(node, { st, from, to, bucket }, by, height, empty) {
  if (!st.outcomes.length) { placeholder(node, empty); return null; }
  const x = xs(from, to, bucket);
  const index = new Map(x.map((t, i) => [t, i]));
  const keyOf = by === "rule" ? (o) => o.rule_id : (o) => o.outcome;
  const totals = new Map();
  for (const o of st.outcomes) totals.set(keyOf(o), (totals.get(keyOf(o)) || 0) + o.count);
  let keys;
  if (by === "outcome") {
    keys = [...totals.keys()].sort((a, b) => {
      const ia = OUTCOME_ORDER.indexOf(a), ib = OUTCOME_ORDER.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
    });
  } else {
    keys = [...totals.keys()].sort((a, b) => totals.get(b) - totals.get(a) || a.localeCompare(b));
  }
  let other = null;
  if (keys.length > MAX_RULE_SERIES + 1) { other = new Set(keys.slice(MAX_RULE_SERIES)); keys = keys.slice(0, MAX_RULE_SERIES).concat(["other"]); }
  const raw = [x, ...keys.map(() => new Array(x.length).fill(0))];
  const points = new Set();
  for (const o of st.outcomes) {
    const i = index.get(Date.parse(o.start) / 1000);
    if (i === undefined) continue;
    let k = keyOf(o);
    if (other && other.has(k)) k = "other";
    raw[1 + keys.indexOf(k)][i] += o.count;
    points.add(i);
  }
  const { data, bands } = stack(raw);
  const color = (k, i) => (by === "outcome" ? OUTCOME_COLORS[k] || PALETTE[i % PALETTE.length] : k === "other" ? "#cbd5e1" : PALETTE[i % PALETTE.length]);
  const label = (k) => (by !== "outcome" ? k : k === "revoked" ? "revoked (older trail)" : outcomeLabel(k));
  const bars = uPlot.paths.bars({ size: [0.82, 48], gap: 1 });
  const opts = {
    width: chartWidth(node), height,
    tzDate: utc,
    cursor: { points: { show: false }, drag: dragX },
    hooks: zoomHooks,
    legend: { live: true },
    scales: { x: { time: true, range: [from - bucket / 2, to - bucket / 2] }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.08)] } },
    axes: [xAxis(), { ...axisStyle, size: 52, values: (u, vals) => vals.map((v) => (Number.isInteger(v) ? fmtCount(v) : "")) }],
    series: [
      { label: "Time (UTC)", value: xLabel },
      ...keys.map((k, i) => ({
        label: label(k),
        fill: color(k, i), stroke: color(k, i), width: 0,
        paths: bars, points: { show: false },
        value: (u, v, si, di) => (di == null ? "" : fmtCount(raw[si][di])),
      })),
    ],
    bands,
  };
  node.replaceChildren();
  // Bars are centred on their bucket: a drag maps to the buckets under it.
  const u = new uPlot(opts, data, node);
  node.dataset.points = String(points.size);
  node.dataset.series = String(keys.length);
  node.dataset.total = String(raw.slice(1).flat().reduce((a, b) => a + b, 0));
  node.dataset.from = isoSeconds(from);
  node.dataset.to = isoSeconds(to);
  return u;
}

function renderLatency() {
  const { st, from, to, bucket } = lastStats;
  const node = $("#chart-latency");
  if (charts.latency) { charts.latency.destroy(); charts.latency = null; }
  if (!st.latency.length) { placeholder(node, "No revocations in this range"); return; }
  const x = xs(from, to, bucket);
  const index = new Map(x.map((t, i) => [t, i]));
  const p50 = new Array(x.length).fill(null), p90 = p50.slice(), p99 = p50.slice();
  let n = 0;
  for (const l of st.latency) {
    const i = index.get(Date.parse(l.start) / 1000);
    if (i === undefined) continue;
    p50[i] = l.p50; p90[i] = l.p90; p99[i] = l.p99; n++;
  }
  // Sparse data (one user, a quiet rule) has buckets without neighbours:
  // dots show them where a line cannot.
  const sparse = n < x.length / 3;
  const line = (label, stroke, extra) => ({
    label, stroke, width: 1.75, spanGaps: false, points: { show: sparse, size: 6, fill: stroke },
    value: (u, v) => (v == null ? "" : fmtMs(v)), ...extra,
  });
  const opts = {
    width: chartWidth(node), height: 300,
    tzDate: utc,
    cursor: { drag: dragX },
    hooks: zoomHooks,
    scales: { x: { time: true, range: [from, to - bucket] }, y: { range: (u, min, max) => [0, Math.max(10, max * 1.1)] } },
    axes: [xAxis(), { ...axisStyle, size: 60, values: (u, vals) => vals.map((v) => fmtMs(v)) }],
    series: [
      { label: "Time (UTC)", value: xLabel },
      line("p50", "#2563eb", { fill: "rgba(37, 99, 235, .08)" }),
      line("p90", "#8b5cf6"),
      line("p99", "#dc2626", { dash: [5, 4] }),
    ],
  };
  node.replaceChildren();
  charts.latency = new uPlot(opts, [x, p50, p90, p99], node);
  node.dataset.points = String(n);
}

const resize = new ResizeObserver(() => {
  for (const [id, c, height] of [["#chart-outcomes", charts.outcomes, 300], ["#chart-latency", charts.latency, 300], ["#tl-chart", charts.user, 150]]) {
    if (c && $(id).clientWidth > 0) c.setSize({ width: chartWidth($(id)), height });
  }
});
resize.observe(document.querySelector(".charts"));
resize.observe(document.querySelector("#tl-chart-card"));

// ---------------------------------------------------------------- timeline

let loadSeq = 0;

async function showTimeline(seq) {
  const { kind, id } = state.subject;
  const node = $("#timeline");
  node.dataset.kind = kind;
  node.dataset.subject = id;
  node.dataset.entries = "";
  $("#tl-kind").textContent = kind === "command" ? "command" : "user";
  $("#tl-subject").textContent = id;
  $("#tl-summary").textContent = "Loading…";
  $("#tl-body").replaceChildren();
  $("#tl-chart-card").hidden = true;
  if (!id) {
    $("#tl-summary").textContent = "";
    $("#tl-body").replaceChildren(el("p", { class: "warn" }, "No user or command named: the address needs ?user_id= or ?command_id=."));
    node.dataset.entries = "0";
    return;
  }
  const calls = [apiJSON("/api/v1/timeline", rangeQuery())];
  if (kind === "user") {
    const sp = rangeQuery();
    sp.set("bucket", fmtBucket(view.bucket));
    calls.push(apiJSON("/api/v1/stats", sp));
  }
  let tl, st;
  try {
    [tl, st] = await Promise.all(calls);
  } catch (err) {
    $("#tl-summary").textContent = "";
    $("#tl-body").replaceChildren(el("p", { class: "warn" }, `Could not load the timeline: ${err.message}`));
    node.dataset.entries = "0";
    return;
  }
  if (seq !== loadSeq) return; // another view was opened meanwhile
  const groups = new Map();
  for (const e of tl.entries) {
    if (!groups.has(e.command_id)) groups.set(e.command_id, []);
    groups.get(e.command_id).push(e);
  }
  $("#tl-summary").textContent = `${fmtCount(groups.size)} command${groups.size === 1 ? "" : "s"} · ${fmtCount(tl.rows)} audit rows · ` +
    `${fmtUnix(view.from).slice(0, 16)} → ${fmtUnix(view.to).slice(0, 16)} UTC`;
  const cards = [...groups.entries()].reverse().map(([cid, entries]) => commandCard(cid, entries));
  if (tl.truncated) cards.unshift(el("p", { class: "warn" }, `Only the newest ${fmtCount(tl.rows)} audit rows are shown: narrow the time range to see older ones.`));
  if (!cards.length) cards.push(el("p", { class: "empty" }, `No audit rows for this ${kind} in the range.`));
  $("#tl-body").replaceChildren(...cards);
  if (charts.user) { charts.user.destroy(); charts.user = null; }
  if (st) {
    $("#tl-chart-card").hidden = false;
    charts.user = outcomeChart($("#tl-chart"), { st, ...view }, "outcome", 150, "No commands in this range");
  }
  node.dataset.entries = String(tl.entries.length);
}

// A command's outcome: that of its revocation (confirmed, unconfirmed, not
// effective), else its last step.
function commandOutcome(entries) {
  const steps = entries.map((e) => e.step).filter((st) => st && st !== "received");
  const revocations = steps.filter((st) => OUTCOME_OF[st]);
  return revocations.length ? OUTCOME_OF[revocations[revocations.length - 1]] : steps[steps.length - 1] || "";
}

function commandCard(id, entries) {
  const head = entries.find((e) => e.kind === "command") || entries[0];
  const outcome = commandOutcome(entries);
  const t0 = Date.parse(entries[0].time);
  return el("article", { class: "card cmd", "data-command-id": id, "data-outcome": outcome },
    el("div", { class: "cmd-head" },
      head.severity ? el("span", { class: `badge sev-${head.severity}` }, head.severity) : null,
      el("span", { class: "rule" }, head.rule_id || "command"),
      head.action ? el("span", { class: "hint" }, head.action) : null,
      outcome ? el("span", { class: `badge ${outcome}` }, outcomeLabel(outcome)) : null,
      state.subject.kind === "command"
        ? el("span", { class: "cmd-id mono" }, id)
        : link(timelineURL("command", id), { class: "cmd-id mono", title: "Timeline of this command" }, id)),
    el("ol", { class: "steps" }, entries.map((e) => entryItem(e, t0))));
}

// Country names for ISO 3166 codes, in the browser's English.
const regionNames = (() => {
  try { return new Intl.DisplayNames(["en"], { type: "region" }); } catch { return null; }
})();
const countryName = (cc) => {
  try { return (regionNames && regionNames.of(cc)) || cc; } catch { return cc; }
};

// evidenceDetails lists a detection's evidence events with where each
// came from (address, country, autonomous system, kind of network), as
// the detector knew it when it issued the command (evidence_context).
// Events it no longer held, or that had no address, show none.
function evidenceDetails(e) {
  const ctx = new Map((e.evidence_context || []).map((c) => [c.event_id, c]));
  const n = e.evidence.length;
  const addrs = new Set([...ctx.values()].map((c) => c.ip));
  const countries = [...new Set([...ctx.values()].map((c) => c.country).filter(Boolean))].sort();
  let sum = `${n} event${n === 1 ? "" : "s"} of evidence`;
  if (addrs.size) sum += ` · ${addrs.size} address${addrs.size === 1 ? "" : "es"}`;
  if (countries.length) sum += ` · ${countries.join(", ")}`;
  const rows = e.evidence.map((id) => {
    const c = ctx.get(id);
    const idCell = el("td", { class: "mono", title: id }, id);
    if (!c) {
      return el("tr", { class: "ev", "data-event-id": id }, idCell,
        el("td", { class: "hint", colspan: 4 }, "no address recorded"));
    }
    const as = c.asn ? `AS${c.asn}${c.as_org ? " " + c.as_org : ""}` : "";
    const country = c.country ? `${countryName(c.country)} (${c.country})` : "";
    return el("tr", { class: "ev", "data-event-id": id, "data-ip": c.ip, "data-country": c.country || "", "data-asn": c.asn ? String(c.asn) : "" },
      idCell,
      el("td", { class: "mono ev-ip", title: c.ip }, c.ip),
      el("td", { class: "ev-country", title: country }, country || "–"),
      el("td", { class: "ev-as", title: as }, as || "–"),
      el("td", { class: "ev-net" }, c.network || "–"));
  });
  return el("details", { class: "evidence" }, el("summary", {}, sum),
    el("table", { class: "ev-table" },
      el("thead", {}, el("tr", {}, ["Event", "Address", "Country", "Autonomous system", "Network"].map((h) => el("th", {}, h)))),
      el("tbody", {}, rows)));
}

function entryItem(e, t0) {
  const delta = Date.parse(e.time) - t0;
  const evidence = e.evidence && e.evidence.length ? evidenceDetails(e) : null;
  let span = "";
  if (e.end && e.end !== e.time) span = ` over ${fmtMs(Date.parse(e.end) - Date.parse(e.time))}`;
  return el("li", { class: "entry", "data-kind": e.kind, "data-step": e.step || "" },
    el("span", { class: "dot" }),
    el("span", { class: "when" }, fmtTime(e.time).slice(5), el("span", { class: "delta" }, fmtDelta(delta))),
    el("div", { class: "what" },
      el("span", { class: "kind" }, e.kind),
      `${e.summary}${span}`,
      e.detail ? el("div", { class: "detail" }, e.detail) : null,
      evidence));
}

// ---------------------------------------------------------------- export

function exportParams(format) {
  const p = rangeQuery();
  p.set("format", format);
  return p;
}

function updateExportLinks() {
  for (const b of document.querySelectorAll("button.export")) {
    b.dataset.url = "/api/v1/export?" + exportParams(b.dataset.format).toString();
  }
}

async function download(format) {
  setStatus(`Exporting ${format.toUpperCase()}…`);
  try {
    const resp = await api("/api/v1/export", exportParams(format));
    if (!resp.ok) {
      const body = await resp.json().catch(() => ({}));
      throw new Error(body.error || resp.statusText);
    }
    const blob = await resp.blob();
    const name = /filename="([^"]+)"/.exec(resp.headers.get("Content-Disposition") || "")?.[1] || `revocations.${format}`;
    const url = URL.createObjectURL(blob);
    const a = el("a", { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    setStatus(`Exported ${name} (${fmtCount(Math.ceil(blob.size / 1024))} KB)`);
  } catch (err) {
    setStatus(`Export failed: ${err.message}`, true);
  }
}

// ---------------------------------------------------------------- wiring

// render shows what the state (the address) names: the range is resolved
// first (it needs the filters' newest activity), then rows, stats or the
// timeline load together.
async function render({ rows = true, stats = true } = {}) {
  const seq = ++loadSeq;
  document.body.dataset.view = state.view;
  $("#overview").hidden = state.view !== "overview";
  $("#timeline").hidden = state.view !== "timeline";
  writeForm();
  setStatus("Loading…");
  document.body.dataset.loading = "true";
  try {
    view = await resolveRange();
    if (seq !== loadSeq) return;
    showRange();
    if (state.view === "timeline") {
      await showTimeline(seq);
    } else {
      updateExportLinks();
      await Promise.all([rows && loadRows(), stats && loadStats()]);
    }
    if (seq !== loadSeq) return;
    setStatus(`Updated ${fmtTime(new Date().toISOString(), "s").slice(11)} UTC`);
  } catch (err) {
    if (seq === loadSeq) setStatus(err.message, true);
  } finally {
    if (seq === loadSeq) {
      document.body.dataset.loading = "false";
      document.body.dataset.ready = "true";
    }
  }
}

function wire() {
  $("#search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    readForm();
    state.offset = 0;
    go();
  });
  $("#f-reset").addEventListener("click", () => {
    for (const k of FILTERS) state[k] = "";
    Object.assign(state, { range: DEFAULT_RANGE, from: "", to: "", offset: 0 });
    go();
  });
  $("#chips").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-clear]");
    if (!b) return;
    state[b.dataset.clear] = "";
    state.offset = 0;
    go();
  });
  for (const b of document.querySelectorAll(".presets button")) {
    b.addEventListener("click", () => {
      if (b.dataset.range === "custom") {
        const form = $("#custom-range");
        form.hidden = !form.hidden;
        if (!form.hidden && view) {
          $("#f-from").value = isoSeconds(view.from).slice(0, 19);
          $("#f-to").value = isoSeconds(view.to).slice(0, 19);
        }
        return;
      }
      $("#custom-range").hidden = true;
      Object.assign(state, { range: b.dataset.range, from: "", to: "", offset: 0 });
      go();
    });
  }
  $("#custom-range").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const from = Date.parse($("#f-from").value + "Z") / 1000, to = Date.parse($("#f-to").value + "Z") / 1000;
    if (!(to > from)) { setStatus("The custom range must end after it starts", true); return; }
    $("#custom-range").hidden = true;
    Object.assign(state, { range: "custom", from: isoSeconds(from), to: isoSeconds(to), offset: 0 });
    go();
  });
  $("#prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE_SIZE); go({ replace: true }); });
  $("#next").addEventListener("click", () => { state.offset += PAGE_SIZE; go({ replace: true }); });
  for (const b of document.querySelectorAll("[data-by]")) {
    b.addEventListener("click", () => {
      state.by = b.dataset.by;
      for (const o of document.querySelectorAll("[data-by]")) o.classList.toggle("on", o === b);
      history.replaceState(history.state, "", overviewURL());
      renderOutcomes();
    });
  }
  // Links within the UI (users, commands, timelines) change the view
  // without reloading the page; other clicks (a new tab) are the browser's.
  document.addEventListener("click", (ev) => {
    const a = ev.target.closest("a[data-nav]");
    if (!a || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    ev.preventDefault();
    navigate(a.getAttribute("href"));
  });
  window.addEventListener("popstate", () => { loadURL(); render(); });
  $("#tl-close").addEventListener("click", closeTimeline);
  document.addEventListener("keydown", (ev) => { if (ev.key === "Escape" && state.view === "timeline") closeTimeline(); });
  for (const b of document.querySelectorAll("button.export")) b.addEventListener("click", () => download(b.dataset.format));
  $("#token-dialog").addEventListener("cancel", (ev) => ev.preventDefault());
  $("#signout").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); location.reload(); });
  $("#signout").hidden = !sessionStorage.getItem(TOKEN_KEY);
}

// closeTimeline goes back to where the timeline was opened from, or, for a
// timeline opened by its address, to the overview of the same range.
function closeTimeline() {
  const depth = (history.state && history.state.depth) || 0;
  if (depth > 0) {
    history.go(-depth);
    return;
  }
  state.view = "overview";
  go();
}

loadURL();
wire();
go({ replace: true });
