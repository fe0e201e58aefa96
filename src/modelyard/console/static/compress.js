// Compression pages: start one (POST /api/compress), and draw a compression's Pareto front
// from the JSON its API route returns (embedded in the page); a running one reloads.
"use strict";

const formStatus = document.getElementById("form-status");

function text(form, name) {
  return String(form.get(name) || "").trim() || null;
}

function compressBody(form) {
  const [model, version] = (text(form, "version") || "").split("@");
  const body = {
    model,
    version: Number(version),
    to: (text(form, "to") || "").split(",").map((m) => m.trim()).filter(Boolean),
    streams: (text(form, "streams") || "1,8").split(",").map(Number),
  };
  const dataset = text(form, "dataset");
  if (dataset) {
    body.texts = {
      dataset, field: text(form, "field"), label_field: text(form, "label_field"),
      limit: Number(form.get("limit") || 200),
    };
  }
  const gate = text(form, "gate");
  if (gate) body.gate = JSON.parse(gate);
  return body;
}

const start = document.getElementById("compress");
if (start) {
  start.addEventListener("submit", async (event) => {
    event.preventDefault();
    formStatus.textContent = _("Starting…");
    try {
      const started = await postJson("/api/compress", compressBody(new FormData(event.target)));
      window.location.assign(`/ui/compress/${started.id}`);
    } catch (error) {
      formStatus.textContent = error instanceof SyntaxError
        ? _("Could not start: the gate is not JSON: {reason}", { reason: error.message })
        : _("Could not start: {reason}", { reason: apiMessage(error) });
    }
  });
}

function escapeText(value) {
  return String(value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function drawFront(element, compression, quality, axis) {
  const rows = compression.variants.filter((row) => row.measurements[axis.metric] !== undefined);
  const trace = (front) => {
    const part = rows.filter((row) => row.pareto === front);
    return {
      x: part.map((row) => row.measurements[axis.metric]),
      y: part.map((row) => row.measurements[quality.metric]),
      text: part.map((row) => escapeText(`${row.method} @${row.version}`)),
      type: "scatter", mode: "markers+text", textposition: "top center",
      name: front ? _("on the front") : _("dominated"),
      marker: { size: 11, symbol: front ? "circle" : "circle-open", color: "#2f5bea" },
    };
  };
  const better = (a) => (a.greater_is_better ? _("higher is better") : _("lower is better"));
  Plotly.newPlot(element, [trace(true), trace(false)], {
    title: { text: _("{quality} against {axis}", { quality: quality.metric, axis: axis.metric }), font: { size: 14 } },
    height: 320, margin: { l: 60, r: 10, t: 40, b: 50 },
    xaxis: { title: { text: `${axis.metric} (${better(axis)})` } },
    yaxis: { title: { text: `${quality.metric} (${better(quality)})` } },
    legend: { orientation: "h", y: -0.3 },
  }, { displayModeBar: false, responsive: true });
}

const data = document.getElementById("compression-data");
if (data) {
  const compression = JSON.parse(data.textContent);
  const axis = (role) => compression.axes.find((a) => a.role === role);
  const quality = axis("quality");
  if (typeof Plotly !== "undefined" && quality) {
    const size = axis("size");
    const speed = axis("speed");
    if (size) drawFront("chart-size", compression, quality, size);
    if (speed) drawFront("chart-speed", compression, quality, speed);
  }
  document.getElementById("charts").dataset.ready = "true";
}

if (document.querySelector("[data-running='yes']")) {
  setTimeout(() => window.location.reload(), 3000);
}
