// The consumer's web UI: search the audit trail, chart it, open a user's
// timeline, export what the filters select. Everything comes from the
// consumer's own /api/v1 (see consumer/api); no data is in these files.
import uPlot from "./vendor/uplot/uPlot.esm.js";

const $ = (sel) => document.querySelector(sel);
const TOKEN_KEY = "revoked.apiToken";
const PAGE_SIZE = 25;
const HOUR = 3600;
const DAY = 24 * HOUR;
const RANGES = { "24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY };
const BUCKETS = [60, 300, 900, 1800, HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY];
const MAX_BARS = 180;
const MAX_RULE_SERIES = 7;

// Colours: rules get a categorical palette, outcomes a semantic one.
const PALETTE = ["#2563eb", "#0d9488", "#f59e0b", "#8b5cf6", "#ec4899", "#64748b", "#84cc16", "#06b6d4"];
const OUTCOME_COLORS = {
  confirmed: "#16a34a", unconfirmed: "#84cc16", revoked: "#4ade80", not_effective: "#b91c1c", held: "#8b5cf6", dry_run: "#a78bfa", notified: "#38bdf8",
  rejected: "#f59e0b", dead_lettered: "#dc2626",
};
const OUTCOME_ORDER = ["confirmed", "unconfirmed", "revoked", "notified", "dry_run", "held", "rejected", "not_effective", "dead_lettered"];

const state = {
  user_id: "", token_id: "", rule_id: "", step: "", range: "7d", from: "", to: "",
  offset: 0, by: "rule",
};
let lastStats = null;
let charts = { outcomes: null, latency: null, user: null };
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
function fmtTime(iso, withMs) {
  if (!iso) return "";
  const d = new Date(iso);
  const s = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  return withMs ? `${s}.${pad(d.getUTCMilliseconds(), 3)}` : s;
}
function isoSeconds(d) { return d.toISOString().replace(/\.\d{3}Z$/, "Z"); }
function fmtMs(ms) {
  if (ms == null) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${+(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  return `${+(ms / 60000).toFixed(1)} min`;
}
function fmtDelta(ms) {
  if (ms <= 0) return "";
  return "+" + fmtMs(ms);
}
const fmtCount = (n) => Number(n).toLocaleString("en-US");
const fmtBucket = (s) => (s % DAY === 0 ? `${s / DAY}d` : s % HOUR === 0 ? `${s / HOUR}h` : `${s / 60}m`);

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

// ---------------------------------------------------------------- state

function timeRange() {
  const now = Date.now() / 1000;
  let from, to;
  if (state.range === "custom" && state.from && state.to) {
    from = Date.parse(state.from + "Z") / 1000;
    to = Date.parse(state.to + "Z") / 1000;
  } else {
    const span = RANGES[state.range] || RANGES["7d"];
    to = now;
    from = now - span;
  }
  const bucket = BUCKETS.find((b) => (to - from) / b <= MAX_BARS) || DAY;
  // Whole buckets: the one holding "to" is included.
  to = Math.ceil(to / bucket) * bucket;
  from = Math.floor(from / bucket) * bucket;
  return { from, to, bucket };
}

function filterParams() {
  const p = new URLSearchParams();
  for (const k of ["user_id", "token_id", "rule_id", "step"]) if (state[k]) p.set(k, state[k]);
  const r = timeRange();
  p.set("from", isoSeconds(new Date(r.from * 1000)));
  p.set("to", isoSeconds(new Date(r.to * 1000)));
  return p;
}

function readForm() {
  state.user_id = $("#f-user").value.trim();
  state.token_id = $("#f-token").value.trim();
  state.rule_id = $("#f-rule").value.trim();
  state.step = $("#f-step").value;
  state.range = $("#f-range").value;
  state.from = $("#f-from").value;
  state.to = $("#f-to").value;
}

function writeForm() {
  $("#f-user").value = state.user_id;
  $("#f-token").value = state.token_id;
  $("#f-rule").value = state.rule_id;
  $("#f-step").value = state.step;
  $("#f-range").value = state.range;
  $("#f-from").value = state.from;
  $("#f-to").value = state.to;
  for (const l of document.querySelectorAll(".custom-range")) l.hidden = state.range !== "custom";
}

function loadURL() {
  const p = new URLSearchParams(location.search);
  for (const k of ["user_id", "token_id", "rule_id", "step", "from", "to"]) state[k] = p.get(k) || "";
  state.range = p.get("range") || (state.from && state.to ? "custom" : "7d");
  state.by = p.get("by") === "outcome" ? "outcome" : "rule";
}

function saveURL() {
  const p = new URLSearchParams();
  for (const k of ["user_id", "token_id", "rule_id", "step"]) if (state[k]) p.set(k, state[k]);
  if (state.range !== "7d") p.set("range", state.range);
  if (state.range === "custom") { p.set("from", state.from); p.set("to", state.to); }
  if (state.by !== "rule") p.set("by", state.by);
  const qs = p.toString();
  history.replaceState(null, "", location.pathname + (qs ? "?" + qs : ""));
}

// ---------------------------------------------------------------- rows

async function loadRows() {
  const p = filterParams();
  p.set("limit", PAGE_SIZE);
  p.set("offset", state.offset);
  const tbody = $("#rows tbody");
  const page = await apiJSON("/api/v1/revocations", p);
  tbody.replaceChildren(...page.rows.map(rowElement));
  $("#empty").hidden = page.rows.length > 0;
  const first = state.offset + 1, last = state.offset + page.rows.length;
  $("#page-info").textContent = page.rows.length ? `${fmtCount(first)}–${fmtCount(last)}` : "";
  $("#result-count").textContent = page.rows.length ? `· showing ${fmtCount(first)}–${fmtCount(last)}${page.next_offset ? "" : ` of ${fmtCount(last)}`}` : "";
  $("#prev").disabled = state.offset === 0;
  $("#next").disabled = page.next_offset == null;
  $("#rows").dataset.rows = page.rows.length;
}

function target(r) {
  const id = { user: r.user_id, token: r.token_id, session: r.session_id, client: r.client_id }[r.target_kind] || "";
  return `${r.target_kind}:${id}${r.include_downscoped ? "+downscoped" : ""}`;
}

function rowElement(r) {
  const latency = r.revoke_latency_ms > 0 ? fmtMs(r.revoke_latency_ms) : "–";
  return el("tr", { "data-row-id": r.row_id },
    el("td", { class: "mono" }, fmtTime(r.time)),
    el("td", {}, el("span", { class: `badge ${r.step}` }, r.step.replace("_", " "))),
    el("td", {}, r.user_id ? el("button", { type: "button", class: "user", "data-user": r.user_id, title: "Open timeline" }, r.user_id) : "–"),
    el("td", { class: "mono muted", title: target(r) }, target(r)),
    el("td", {}, r.rule_id),
    el("td", {}, `${r.action} · ${r.mode}`),
    el("td", { class: "num" }, r.tokens_revoked ? fmtCount(r.tokens_revoked) : "–"),
    el("td", { class: "num" }, latency),
    el("td", { class: "mono muted", title: r.command_id }, r.command_id.length > 14 ? r.command_id.slice(0, 13) + "…" : r.command_id),
    el("td", {}, r.user_id ? el("button", { type: "button", class: "tl-open", "data-user": r.user_id }, "Timeline") : ""),
  );
}

// ---------------------------------------------------------------- stats

async function loadStats() {
  const r = timeRange();
  const p = new URLSearchParams();
  if (state.user_id) p.set("user_id", state.user_id);
  if (state.rule_id) p.set("rule_id", state.rule_id);
  p.set("from", isoSeconds(new Date(r.from * 1000)));
  p.set("to", isoSeconds(new Date(r.to * 1000)));
  p.set("bucket", fmtBucket(r.bucket));
  const st = await apiJSON("/api/v1/stats", p);
  lastStats = { st, ...r };
  for (const o of st.outcomes) knownRules.add(o.rule_id);
  $("#rules").replaceChildren(...[...knownRules].sort().map((k) => el("option", { value: k })));
  renderKPIs(st, r);
  renderCharts();
}

function renderKPIs(st) {
  const by = {};
  let total = 0;
  for (const o of st.outcomes) { by[o.outcome] = (by[o.outcome] || 0) + o.count; total += o.count; }
  const bad = (by.dead_lettered || 0) + (by.rejected || 0) + (by.not_effective || 0);
  const revoked = (by.confirmed || 0) + (by.unconfirmed || 0) + (by.revoked || 0);
  $("#k-total").textContent = fmtCount(total);
  $("#k-range").textContent = `${fmtTime(st.from).slice(0, 16)} → ${fmtTime(st.to).slice(0, 16)} UTC`;
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
// timeTicks labels ticks in UTC: the date at midnight, the time otherwise.
function timeTicks(u, splits) {
  return splits.map((ts) => {
    const d = new Date(ts * 1000);
    if (ts % DAY === 0) return `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}`;
    return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  });
}
const xAxis = () => ({ ...axisStyle, values: timeTicks, space: 60 });
const axisStyle = {
  stroke: "#64748b",
  font: "12px system-ui, sans-serif",
  grid: { stroke: "#eef2f6", width: 1 },
  ticks: { stroke: "#e2e8f0", width: 1, size: 4 },
};

function chartWidth(node) { return Math.max(300, node.clientWidth - 20); }

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
  const node = $("#chart-outcomes");
  if (charts.outcomes) { charts.outcomes.destroy(); charts.outcomes = null; }
  charts.outcomes = outcomeChart(node, lastStats, state.by, 300, "No commands in this range");
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
  const bars = uPlot.paths.bars({ size: [0.82, 48], gap: 1 });
  const opts = {
    width: chartWidth(node), height,
    tzDate: utc,
    cursor: { points: { show: false }, drag: { x: false, y: false } },
    legend: { live: true },
    scales: { x: { time: true, range: [from - bucket / 2, to - bucket / 2] }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.08)] } },
    axes: [xAxis(), { ...axisStyle, size: 52, values: (u, vals) => vals.map((v) => (Number.isInteger(v) ? fmtCount(v) : "")) }],
    series: [
      { label: "Time (UTC)", value: (u, v) => (v == null ? "" : fmtTime(new Date(v * 1000).toISOString()).slice(0, 16)) },
      ...keys.map((k, i) => ({
        label: by === "outcome" ? k.replace("_", " ") : k,
        fill: color(k, i), stroke: color(k, i), width: 0,
        paths: bars, points: { show: false },
        value: (u, v, si, di) => (di == null ? "" : fmtCount(raw[si][di])),
      })),
    ],
    bands,
  };
  node.replaceChildren();
  const u = new uPlot(opts, data, node);
  node.dataset.points = String(points.size);
  node.dataset.series = String(keys.length);
  node.dataset.total = String(raw.slice(1).flat().reduce((a, b) => a + b, 0));
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
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true, range: [from, to - bucket] }, y: { range: (u, min, max) => [0, Math.max(10, max * 1.1)] } },
    axes: [xAxis(), { ...axisStyle, size: 60, values: (u, vals) => vals.map((v) => fmtMs(v)) }],
    series: [
      { label: "Time (UTC)", value: (u, v) => (v == null ? "" : fmtTime(new Date(v * 1000).toISOString()).slice(0, 16)) },
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

let overviewScroll = 0;

async function openTimeline(user) {
  const drawer = $("#timeline");
  if (drawer.hidden) overviewScroll = window.scrollY;
  $("#overview").hidden = true;
  drawer.hidden = false;
  window.scrollTo(0, 0);
  drawer.dataset.user = user;
  drawer.dataset.entries = "";
  $("#tl-user").textContent = user;
  $("#tl-summary").textContent = "Loading…";
  $("#tl-body").replaceChildren();
  $("#tl-chart-card").hidden = true;
  const r = timeRange();
  const p = new URLSearchParams({ user_id: user, from: isoSeconds(new Date(r.from * 1000)), to: isoSeconds(new Date(r.to * 1000)) });
  const sp = new URLSearchParams({ user_id: user, from: p.get("from"), to: p.get("to"), bucket: fmtBucket(r.bucket) });
  let tl, st;
  try {
    [tl, st] = await Promise.all([apiJSON("/api/v1/timeline", p), apiJSON("/api/v1/stats", sp)]);
  } catch (err) {
    $("#tl-summary").textContent = "";
    $("#tl-body").replaceChildren(el("p", { class: "warn" }, `Could not load the timeline: ${err.message}`));
    drawer.dataset.entries = "0";
    return;
  }
  if (drawer.dataset.user !== user) return; // another timeline was opened meanwhile
  const groups = new Map();
  for (const e of tl.entries) {
    if (!groups.has(e.command_id)) groups.set(e.command_id, []);
    groups.get(e.command_id).push(e);
  }
  $("#tl-summary").textContent = `${fmtCount(groups.size)} command${groups.size === 1 ? "" : "s"} · ${fmtCount(tl.rows)} audit rows · ` +
    `${fmtTime(new Date(r.from * 1000).toISOString()).slice(0, 16)} → ${fmtTime(new Date(r.to * 1000).toISOString()).slice(0, 16)} UTC`;
  const cards = [...groups.entries()].reverse().map(([id, entries]) => commandCard(id, entries));
  if (tl.truncated) cards.unshift(el("p", { class: "warn" }, `Only the newest ${fmtCount(tl.rows)} audit rows are shown: narrow the time range to see older ones.`));
  if (!cards.length) cards.push(el("p", { class: "empty" }, "No audit rows for this user in the range."));
  $("#tl-body").replaceChildren(...cards);
  if (charts.user) { charts.user.destroy(); charts.user = null; }
  $("#tl-chart-card").hidden = false;
  charts.user = outcomeChart($("#tl-chart"), { st, ...r }, "outcome", 150, "No commands in this range");
  drawer.dataset.entries = String(tl.entries.length);
}

function commandCard(id, entries) {
  const head = entries.find((e) => e.kind === "command") || entries[0];
  const steps = entries.filter((e) => e.kind === "execution" && e.step !== "received");
  const outcome = steps.length ? steps[steps.length - 1].step : "";
  const t0 = Date.parse(entries[0].time);
  return el("article", { class: "card cmd", "data-command-id": id },
    el("div", { class: "cmd-head" },
      head.severity ? el("span", { class: `badge sev-${head.severity}` }, head.severity) : null,
      el("span", { class: "rule" }, head.rule_id || "command"),
      head.action ? el("span", { class: "hint" }, head.action) : null,
      outcome ? el("span", { class: `badge ${outcome}` }, outcome.replace("_", " ")) : null,
      el("span", { class: "cmd-id mono", title: id }, id)),
    el("ol", { class: "steps" }, entries.map((e) => entryItem(e, t0))));
}

function entryItem(e, t0) {
  const delta = Date.parse(e.time) - t0;
  const evidence = e.evidence && e.evidence.length
    ? el("details", {}, el("summary", {}, `${e.evidence.length} event${e.evidence.length === 1 ? "" : "s"} of evidence`),
      el("ul", {}, e.evidence.map((ev) => el("li", {}, ev))))
    : null;
  let span = "";
  if (e.end && e.end !== e.time) span = ` over ${fmtMs(Date.parse(e.end) - Date.parse(e.time))}`;
  return el("li", { class: "entry", "data-kind": e.kind, "data-step": e.step || "" },
    el("span", { class: "dot" }),
    el("span", { class: "when" }, fmtTime(e.time, true).slice(5), el("span", { class: "delta" }, fmtDelta(delta))),
    el("div", { class: "what" },
      el("span", { class: "kind" }, e.kind),
      `${e.summary}${span}`,
      e.detail ? el("div", { class: "detail" }, e.detail) : null,
      evidence));
}

function closeTimeline() {
  $("#timeline").hidden = true;
  $("#overview").hidden = false;
  delete $("#timeline").dataset.user;
  window.scrollTo(0, overviewScroll);
  renderCharts(); // sized while hidden: draw again at the current width
}

// ---------------------------------------------------------------- export

function exportParams(format) {
  const p = filterParams();
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

async function refresh({ rows = true, stats = true } = {}) {
  saveURL();
  updateExportLinks();
  setStatus("Loading…");
  document.body.dataset.loading = "true";
  try {
    await Promise.all([rows && loadRows(), stats && loadStats()]);
    setStatus(`Updated ${fmtTime(new Date().toISOString()).slice(11)} UTC`);
  } catch (err) {
    setStatus(err.message, true);
  } finally {
    document.body.dataset.loading = "false";
    document.body.dataset.ready = "true";
  }
}

function wire() {
  $("#search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    readForm();
    state.offset = 0;
    refresh();
  });
  $("#f-reset").addEventListener("click", () => {
    Object.assign(state, { user_id: "", token_id: "", rule_id: "", step: "", range: "7d", from: "", to: "", offset: 0 });
    writeForm();
    refresh();
  });
  $("#f-range").addEventListener("change", () => {
    const custom = $("#f-range").value === "custom";
    for (const l of document.querySelectorAll(".custom-range")) l.hidden = !custom;
    if (custom && !$("#f-from").value) {
      const r = timeRange();
      $("#f-from").value = new Date(r.from * 1000).toISOString().slice(0, 16);
      $("#f-to").value = new Date(r.to * 1000).toISOString().slice(0, 16);
    }
  });
  $("#prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE_SIZE); refresh({ stats: false }); });
  $("#next").addEventListener("click", () => { state.offset += PAGE_SIZE; refresh({ stats: false }); });
  for (const b of document.querySelectorAll(".seg button")) {
    b.addEventListener("click", () => {
      state.by = b.dataset.by;
      for (const o of document.querySelectorAll(".seg button")) o.classList.toggle("on", o === b);
      saveURL();
      renderOutcomes();
    });
  }
  $("#rows").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-user]");
    if (b) openTimeline(b.dataset.user);
  });
  $("#tl-close").addEventListener("click", closeTimeline);
  document.addEventListener("keydown", (ev) => { if (ev.key === "Escape" && !$("#timeline").hidden) closeTimeline(); });
  for (const b of document.querySelectorAll("button.export")) b.addEventListener("click", () => download(b.dataset.format));
  $("#token-dialog").addEventListener("cancel", (ev) => ev.preventDefault());
  $("#signout").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); location.reload(); });
  $("#signout").hidden = !sessionStorage.getItem(TOKEN_KEY);
}

loadURL();
writeForm();
for (const o of document.querySelectorAll(".seg button")) o.classList.toggle("on", o.dataset.by === state.by);
wire();
refresh();
