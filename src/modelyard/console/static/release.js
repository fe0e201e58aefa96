// Rollout and experiment pages. The charts are drawn from the same JSON the API returns
// (embedded in the page, then polled from /api/... with the session cookie while the
// rollout or experiment runs); when it changed, the page's own tables are swapped in from
// the server's fresh rendering, so they are never rendered twice. Admin buttons POST to
// the API and show its answer, refusals included.
"use strict";

const root = document.getElementById("release");
const kind = root.dataset.kind; // "rollout" or "experiment"
const api = root.dataset.api;
const pollMs = Math.max(Number(root.dataset.pollMs) || 3000, 500);
const initial = JSON.parse(document.getElementById("release-data").textContent);
const lowerIsBetter = new Set(initial.lower_is_better);
const chartsBox = document.getElementById("charts");
const liveStatus = document.getElementById("live-status");
const FINAL = new Set(["promoted", "aborted", "stopped"]);
const COLOURS = {
  Successful: "#12b76a", better: "#12b76a",
  Failed: "#d92d20", worse: "#d92d20",
  Inconclusive: "#98a2b3", undecided: "#98a2b3",
};

function escapeText(value) {
  // plotly renders a subset of HTML in hover text: data goes in as text.
  return String(value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function fmt(value, unbounded) {
  if (value === null || value === undefined) return unbounded;
  return String(Number(Number(value).toPrecision(4)));
}

// -- series: one chart per metric (rollout) or per treatment (experiment) ------------------

function rolloutSeries(measurements) {
  const series = new Map();
  for (const m of measurements) {
    for (const x of m.data.metrics || []) {
      if (!series.has(x.name)) {
        series.set(x.name, { title: x.name, difference: _("candidate − baseline"), points: [] });
      }
      const entry = series.get(x.name);
      const base = x.name.split("[")[0];
      // The margin on the difference's scale: worse is up for lower-is-better metrics.
      const margin = x.margin === null ? null : (lowerIsBetter.has(base) ? x.margin : -x.margin);
      entry.axis = x.compared;
      entry.points.push({
        at: m.at, label: _("step {step}, measurement {seq}", { step: m.step + 1, seq: m.seq }), colour: x.outcome,
        estimate: x.estimate, low: x.low, high: x.high, margin, reason: x.reason,
        detail: _("baseline {baseline} (n {baseline_n}), candidate {candidate} (n {candidate_n})", {
          baseline: fmt(x.baseline, "—"), baseline_n: x.baseline_n,
          candidate: fmt(x.candidate, "—"), candidate_n: x.candidate_n,
        }),
      });
    }
  }
  return series;
}

function experimentSeries(measurements) {
  const spec = initial.subject.spec;
  const control = spec.variants[0].name;
  const series = new Map();
  for (const m of measurements) {
    for (const c of m.data.comparisons || []) {
      if (!series.has(c.variant)) {
        series.set(c.variant, {
          title: `${spec.primary.name}: ${c.variant}`, difference: `${c.variant} − ${control}`, points: [],
        });
      }
      const entry = series.get(c.variant);
      const p = c.primary;
      entry.axis = p.compared;
      entry.points.push({
        at: m.at, label: _("measurement {seq}", { seq: m.seq }), colour: c.verdict,
        estimate: p.estimate, low: p.low, high: p.high, margin: null, reason: p.reason,
        detail: `${control} ${fmt(p.baseline, "—")} (n ${p.baseline_n}), ${c.variant} ${fmt(p.candidate, "—")} (n ${p.candidate_n})`,
      });
    }
  }
  return series;
}

function traces(points) {
  const x = points.map((p) => p.at);
  const offset = (end, sign) => points.map((p) => (p[end] === null ? null : sign * (p[end] - p.estimate)));
  const drawn = [
    { x, y: points.map((p) => p.low), type: "scatter", mode: "lines", line: { width: 0 },
      hoverinfo: "skip", showlegend: false },
    { x, y: points.map((p) => p.high), type: "scatter", mode: "lines", line: { width: 0 },
      fill: "tonexty", fillcolor: "rgba(47, 91, 234, 0.15)", name: _("interval"), hoverinfo: "skip" },
    {
      x, y: points.map((p) => p.estimate), type: "scatter", mode: "lines+markers", name: _("estimate"),
      line: { color: "#667085", width: 1 },
      marker: { size: 10, color: points.map((p) => COLOURS[p.colour] || "#98a2b3"), line: { color: "#fff", width: 1 } },
      error_y: { type: "data", symmetric: false, array: offset("high", 1), arrayminus: offset("low", -1),
        color: "rgba(47, 91, 234, 0.6)", thickness: 1, width: 4 },
      text: points.map((p) => [
        escapeText(p.label),
        `${escapeText(p.colour)}: ${fmt(p.estimate, "—")} [${fmt(p.low, "−∞")}, ${fmt(p.high, "+∞")}]`,
        escapeText(p.detail),
        escapeText(p.reason),
      ].join("<br>")),
      hovertemplate: "%{text}<extra></extra>",
    },
  ];
  if (points.some((p) => p.margin !== null)) {
    drawn.push({ x, y: points.map((p) => p.margin), type: "scatter", mode: "lines", name: _("margin"),
      line: { color: "#b42318", dash: "dash", width: 1 }, hoverinfo: "y" });
  }
  return drawn;
}

function draw(measurements) {
  chartsBox.dataset.measurements = String(measurements.length);
  if (typeof Plotly === "undefined") return;
  const series = kind === "rollout" ? rolloutSeries(measurements) : experimentSeries(measurements);
  let index = 0;
  for (const [name, entry] of series) {
    const id = `chart-${index++}`;
    let box = document.getElementById(id);
    if (!box) {
      box = document.createElement("div");
      box.id = id;
      box.className = "chart";
      chartsBox.appendChild(box);
    }
    box.dataset.series = name;
    Plotly.react(box, traces(entry.points), {
      title: {
        text: `${escapeText(entry.title)}<br><span style="font-size: 11px; color: #667085">`
          + `${escapeText(entry.difference)} · ${escapeText(entry.axis)}</span>`,
        font: { size: 14 },
      },
      height: 320,
      margin: { l: 55, r: 10, t: 55, b: 75 },
      xaxis: { type: "date" },
      yaxis: { title: { text: escapeText(entry.difference), font: { size: 11 } } },
      shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: 0, y1: 0,
        line: { color: "#1d2330", width: 1 } }],
      legend: { orientation: "h", y: -0.3 },
    }, { displayModeBar: false, responsive: true });
  }
  chartsBox.dataset.ready = "true";
}

// -- polling ---------------------------------------------------------------------------

class Refused extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

async function call(method, url, body) {
  const response = await fetch(url, {
    method,
    headers: { accept: "application/json", ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = data && data.error;
    const message = error ? `${error.message}${error.code ? ` (${error.code})` : ""}` : `${response.status} ${response.statusText}`;
    throw new Refused(message, response.status);
  }
  return data;
}

async function swapSections() {
  const response = await fetch(window.location.pathname, { headers: { accept: "text/html" } });
  if (!response.ok || response.redirected) return;
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const section of document.querySelectorAll("[data-live]")) {
    const replacement = fresh.getElementById(section.id);
    if (replacement) section.replaceWith(document.importNode(replacement, true));
  }
}

const signature = (subject, measurements) =>
  `${JSON.stringify(subject)}|${measurements.length}|${measurements.length ? measurements[measurements.length - 1].id : 0}`;

let seen = signature(initial.subject, initial.measurements);
let finished = FINAL.has(initial.subject.status);
let timer = null;

async function refresh() {
  const [subject, measurements] = await Promise.all([call("GET", api), call("GET", `${api}/measurements`)]);
  finished = FINAL.has(subject.status);
  const now = signature(subject, measurements.data);
  if (now === seen) return;
  draw(measurements.data);
  await swapSections();
  seen = now; // only once the tables are swapped in too: a failed swap is retried
}

function schedule() {
  if (timer === null && !finished) timer = window.setTimeout(tick, pollMs);
}

function showLive(text) {
  if (liveStatus) liveStatus.textContent = text;
}

// Refresh once; false when polling should stop (the key or session no longer reads).
async function update() {
  try {
    await refresh();
  } catch (error) {
    showLive(_("Could not refresh: {reason}", { reason: error.message }));
    return !(error instanceof Refused && (error.status === 401 || error.status === 403));
  }
  showLive(finished
    ? (kind === "rollout" ? _("The rollout has finished.") : _("The experiment has finished."))
    : _("Updated {time} UTC; next in {s} s.", { time: new Date().toISOString().slice(11, 19), s: pollMs / 1000 }));
  return true;
}

async function tick() {
  timer = null;
  if (!document.hidden && !(await update())) return;
  schedule();
}

draw(initial.measurements);
schedule();

// -- admin actions ---------------------------------------------------------------------

const actions = document.getElementById("actions");
const actionStatus = document.getElementById("action-status");
if (actions) {
  actions.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button || !window.confirm(button.dataset.confirm)) return;
    const action = button.dataset.action;
    const label = button.textContent.trim(); // the action, in the page's language
    const reason = document.getElementById("action-reason").value.trim();
    button.disabled = true;
    actionStatus.textContent = _("{action}…", { action: label });
    let result;
    try {
      result = await call("POST", `${api}/${action}`, reason ? { reason } : {});
    } catch (error) {
      actionStatus.textContent = _("Could not {action}: {reason}", { action: label, reason: error.message });
      button.disabled = false;
      return;
    }
    actionStatus.textContent = _("{action}: now {status}. {message}", { action: label, status: result.status, message: result.message });
    const polling = await update();
    button.disabled = false; // usually swapped out for the new state's buttons by now
    if (polling) schedule();
  });
}
