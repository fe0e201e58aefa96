// Tuning pages. The study page draws its charts from the JSON its API route returns
// (embedded in the page) and, while the study runs, asks that route for news and reloads
// when a trial ended or the status changed. Start, stop and resume POST to the API.
"use strict";

function escapeText(value) {
  // plotly renders a subset of HTML in labels: data goes in as text.
  return String(value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function drawHistory(study) {
  const points = study.history;
  const colour = (p) => (p.feasible === false ? "#d92d20" : p.value === null ? "#98a2b3" : "#2f5bea");
  const trials = {
    x: points.map((p) => p.number), y: points.map((p) => p.value), type: "scatter", mode: "markers",
    name: _("{objective} per trial", { objective: escapeText(study.objective) }), marker: { size: 9, color: points.map(colour) },
    text: points.map((p) => (p.feasible === false ? _("infeasible") : "")),
    hovertemplate: "trial %{x}: %{y} %{text}<extra></extra>",
  };
  const best = {
    x: points.map((p) => p.number), y: points.map((p) => p.best), type: "scatter", mode: "lines",
    line: { shape: "hv", color: "#12b76a" }, name: _("best so far (feasible)"),
  };
  Plotly.newPlot("chart-history", [trials, best], {
    title: { text: _("History: {objective} ({direction}); red: infeasible", { objective: escapeText(study.objective), direction: study.direction }), font: { size: 14 } },
    height: 300, margin: { l: 50, r: 10, t: 40, b: 60 },
    xaxis: { title: { text: _("trial") }, dtick: 1 }, legend: { orientation: "h", y: -0.25 },
  }, { displayModeBar: false, responsive: true });
}

function drawImportances(study) {
  const found = study.importances;
  if (!found || !found.values) return;
  const names = Object.keys(found.values).reverse();
  Plotly.newPlot("chart-importances", [{
    x: names.map((n) => found.values[n]), y: names.map(escapeText), type: "bar", orientation: "h",
    marker: { color: "#2f5bea" },
  }], {
    title: { text: _("Parameter importances ({evaluator}, {n} trials)", { evaluator: escapeText(found.evaluator), n: found.trials }), font: { size: 14 } },
    height: 300, margin: { l: 110, r: 10, t: 40, b: 40 }, xaxis: { range: [0, 1] },
  }, { displayModeBar: false, responsive: true });
}

function studyPage(root) {
  const study = JSON.parse(document.getElementById("study-data").textContent);
  if (typeof Plotly !== "undefined") {
    drawHistory(study);
    drawImportances(study);
  }
  document.getElementById("charts").dataset.ready = "true";
  const status = document.getElementById("action-status");
  for (const button of document.querySelectorAll("[data-action]")) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await postJson(`${root.dataset.api}/${button.dataset.action}`);
        window.location.reload();
      } catch (error) {
        status.textContent = apiMessage(error);
        button.disabled = false;
      }
    });
  }
  if (root.dataset.status !== "running") return;
  const pollMs = Math.max(Number(root.dataset.pollMs) || 3000, 500);
  window.setInterval(async () => {
    const response = await fetch(root.dataset.api, { headers: { accept: "application/json" } });
    if (!response.ok) return;
    const now = await response.json();
    if (now.status !== root.dataset.status || String(now.trials.length) !== root.dataset.trials
        || JSON.stringify(now.confirmation) !== JSON.stringify(study.confirmation)) {
      window.location.reload();
    }
  }, pollMs);
}

function listPage(form) {
  const status = document.getElementById("tune-status");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let body;
    try {
      body = JSON.parse(String(new FormData(form).get("body") || ""));
    } catch (error) {
      status.textContent = _("Not JSON: {reason}", { reason: error.message });
      return;
    }
    status.textContent = _("Starting…");
    try {
      const study = await postJson("/api/tune/studies", body);
      window.location.assign(`/ui/tune/${study.id}`);
    } catch (error) {
      status.textContent = apiMessage(error);
    }
  });
}

const studyRoot = document.getElementById("study");
const startForm = document.getElementById("start-study");
if (studyRoot) studyPage(studyRoot);
if (startForm) listPage(startForm);
