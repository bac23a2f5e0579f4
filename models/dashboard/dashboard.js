// The streamrec dashboard: polls the worker's own API every second and draws what it answers.
"use strict";

const POLL_MS = 1000;
const WINDOW_MS = 5 * 60 * 1000; // the charts show the last five minutes
const rateSamples = []; // [time ms, events/s]
const lagSamples = new Map(); // shard id -> [[time ms, lag ms], ...]
let userId = new URLSearchParams(location.search).get("user") || "";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

async function getJSON(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

function keepWindow(samples, now) {
  while (samples.length && samples[0][0] < now - WINDOW_MS) samples.shift();
}

function drawLines(svg, series) {
  svg.replaceChildren();
  const all = series.flat();
  if (!all.length) return;
  const now = Date.now();
  const top = Math.max(1, ...all.map(([, v]) => v)) * 1.1;
  for (const samples of series) {
    if (!samples.length) continue;
    const points = samples.map(([t, v]) => {
      const x = ((t - (now - WINDOW_MS)) / WINDOW_MS) * 600;
      const y = 120 - (v / top) * 120;
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    });
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("class", "line");
    line.setAttribute("points", points.join(" "));
    svg.appendChild(line);
  }
  svg.dataset.points = String(all.length);
  svg.dataset.max = String(Math.max(...all.map(([, v]) => v)));
}

function drawBars(svg, counts) {
  svg.replaceChildren();
  const top = Math.max(1, ...counts);
  const width = 300 / Math.max(1, counts.length);
  counts.forEach((count, i) => {
    const bar = document.createElementNS(SVG, "rect");
    const height = (count / top) * 116;
    bar.setAttribute("class", "bar");
    bar.setAttribute("x", String(i * width + 2));
    bar.setAttribute("width", String(width - 4));
    bar.setAttribute("y", String(120 - height));
    bar.setAttribute("height", String(height));
    bar.dataset.count = String(count);
    svg.appendChild(bar);
  });
  svg.dataset.total = String(counts.reduce((a, b) => a + b, 0));
}

function fillList(list, entries, text) {
  list.replaceChildren(
    ...entries.map((entry) => {
      const li = document.createElement("li");
      const [main, reason] = text(entry);
      li.textContent = main;
      li.dataset.item = entry.item_id;
      if (reason) {
        const span = document.createElement("span");
        span.className = "reason";
        span.textContent = reason;
        li.appendChild(span);
      }
      return li;
    }),
  );
}

async function refreshPipeline(now) {
  const pipeline = await getJSON("/pipeline");
  rateSamples.push([now, pipeline.events_per_s]);
  keepWindow(rateSamples, now);
  $("rate-now").textContent = pipeline.events_per_s.toFixed(1);
  drawLines($("rate-chart"), [rateSamples]);
  const rows = pipeline.shards.map((s) => {
    const samples = lagSamples.get(s.shard_id) || [];
    samples.push([now, s.lag_ms ?? 0]);
    keepWindow(samples, now);
    lagSamples.set(s.shard_id, samples);
    const tr = document.createElement("tr");
    for (const value of [s.shard_id, s.owner ?? "–", s.lag_ms ?? "–", s.events_per_s ?? "–",
                         s.checkpoint_age_s ?? "–"]) {
      const td = document.createElement("td");
      td.textContent = typeof value === "number" ? String(Math.round(value * 10) / 10) : value;
      tr.appendChild(td);
    }
    return tr;
  });
  $("shards").tBodies[0].replaceChildren(...rows);
  drawLines($("lag-chart"), [...lagSamples.values()]);
  const f = pipeline.freshness;
  drawBars($("freshness-chart"), f.counts);
  $("freshness-legend").textContent = f.bounds_s
    .map((b, i) => `≤${b === null ? "∞" : b}s: ${f.counts[i]}`)
    .join("  ");
}

async function refreshLists() {
  const [trending, popular] = await Promise.all([
    getJSON("/items/trending?k=10"),
    getJSON("/items/popular?k=10"),
  ]);
  fillList($("trending"), trending.items, (i) => [i.item_id, `×${i.score.toFixed(2)}`]);
  fillList($("popular"), popular.items, (i) => [i.item_id, `${i.score} interactions`]);
}

async function refreshUser() {
  if (!userId) return;
  const recs = await getJSON(`/recommendations/${encodeURIComponent(userId)}?k=10`);
  fillList($("recommendations"), recs.recommendations, (r) => [r.item_id, r.reason]);
  $("rec-note").textContent =
    (recs.cached ? "from the cache" : "computed now") +
    (recs.degraded ? ` · degraded: ${recs.degraded_reasons.join("; ")}` : "");
  try {
    const features = await getJSON(`/users/${encodeURIComponent(userId)}/features`);
    const recent = features.features["user.recent_items"] || [];
    fillList($("recent"), recent.slice(0, 10), (r) => [
      r.item_id,
      `${r.event_type} · ${new Date(r.timestamp).toLocaleTimeString()}`,
    ]);
  } catch {
    $("recent").replaceChildren();
  }
}

async function tick() {
  const now = Date.now();
  const results = await Promise.allSettled([refreshPipeline(now), refreshLists(), refreshUser()]);
  const failed = results.filter((r) => r.status === "rejected");
  const status = $("status");
  status.className = failed.length === results.length ? "status down" : "status live";
  status.textContent =
    (failed.length ? `partly live (${failed.map((r) => r.reason.message).join(", ")})` : "live") +
    ` · updated ${new Date(now).toLocaleTimeString()}`;
  status.dataset.updated = String(now);
}

$("user-form").addEventListener("submit", (event) => {
  event.preventDefault();
  userId = $("user-id").value.trim();
  history.replaceState(null, "", `?user=${encodeURIComponent(userId)}`);
  refreshUser();
});
$("user-id").value = userId;
tick();
setInterval(tick, POLL_MS);
