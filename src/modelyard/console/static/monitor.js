// The monitoring dashboard: one plotly chart per measure, one line per version.
"use strict";

const stats = JSON.parse(document.getElementById("stats-data").textContent);
const versions = [...new Set(stats.points.map((p) => p.version))].sort();

function lines(field, scale = 1) {
  return versions.map((version) => {
    const points = stats.points.filter((p) => p.version === version && p[field] !== null);
    return {
      x: points.map((p) => p.at),
      y: points.map((p) => p[field] * scale),
      name: version,
      mode: "lines+markers",
      type: "scatter",
    };
  });
}

function chart(id, title, traces, unit) {
  Plotly.newPlot(id, traces, {
    title: { text: title, font: { size: 14 } },
    height: 260,
    margin: { l: 50, r: 10, t: 40, b: 40 },
    xaxis: { type: "date", range: [stats.since, stats.until] },
    yaxis: { title: unit, rangemode: "tozero" },
    legend: { orientation: "h" },
  }, { displayModeBar: false, responsive: true });
}

if (stats.points.length) {
  chart("chart-throughput", _("Throughput"), lines("per_second"), _("requests/s"));
  chart("chart-latency", _("Latency p50 / p95"),
    [...lines("latency_p50_ms").map((t) => ({ ...t, name: `${t.name} p50` })),
     ...lines("latency_p95_ms").map((t) => ({ ...t, name: `${t.name} p95`, line: { dash: "dot" } }))], "ms");
  chart("chart-ttft", _("Time to first token p50 / p95"),
    [...lines("ttft_p50_ms").map((t) => ({ ...t, name: `${t.name} p50` })),
     ...lines("ttft_p95_ms").map((t) => ({ ...t, name: `${t.name} p95`, line: { dash: "dot" } }))], "ms");
  chart("chart-errors", _("Errors (5xx) and refusals (4xx)"),
    [...lines("errors").map((t) => ({ ...t, name: `${t.name} 5xx` })),
     ...lines("client_errors").map((t) => ({ ...t, name: `${t.name} 4xx`, line: { dash: "dot" } }))], _("requests"));
  chart("chart-tokens", _("Tokens"),
    [...lines("prompt_tokens").map((t) => ({ ...t, name: _("{version} in", { version: t.name }) })),
     ...lines("completion_tokens").map((t) => ({ ...t, name: _("{version} out", { version: t.name }), line: { dash: "dot" } }))], _("tokens"));
  chart("chart-cost", _("Cost"), lines("cost"), _("price unit"));
  chart("chart-energy", _("Energy (estimated)"), lines("energy_wh"), "Wh");
}
const quality = JSON.parse(document.getElementById("quality-data").textContent);
if (quality.series.length) {
  chart("chart-quality", _("Online quality (live judge, 0-1)"), quality.series.map((s) => ({
    x: s.points.map((p) => p.at),
    y: s.points.map((p) => p.mean),
    name: `${s.route} ${s.version}`,
    mode: "lines+markers",
    type: "scatter",
  })), _("mean score"));
}
document.getElementById("charts").dataset.ready = "true";
