// Curation in the console: the same JSON API the CLI's peers call, with the session cookie.
"use strict";

const status = document.getElementById("curate-status");
const preview = document.getElementById("preview");

function body(form) {
  const text = (name) => String(form.get(name) || "").trim() || null;
  const [train, dev, test] = String(form.get("split") || "80/10/10").split("/").map(Number);
  const cleaning = {};
  for (const rule of ["failed", "empty", "truncated", "refused", "shadow"]) {
    cleaning[rule] = form.get(`clean_${rule}`) === "on";
  }
  return {
    name: text("name"),
    log: {
      route: text("route"),
      days: Number(form.get("days") || 7),
      feedback: text("feedback"),
      negative_only: form.get("negative_only") === "on",
    },
    datasets: (text("datasets") || "").split(",").map((d) => d.trim()).filter(Boolean),
    label: text("label"),
    scrub_pii: form.get("scrub_pii") === "on",
    cleaning,
    dedup: { threshold: Number(form.get("threshold") || 0.6) },
    outliers: { action: form.get("outliers") },
    splits: { train, dev, test },
  };
}

function showSteps(report) {
  const rows = preview.querySelector("tbody");
  rows.replaceChildren();
  for (const step of report.steps) {
    const row = rows.insertRow();
    const counts = Object.entries(step.counts).map(([k, n]) => `${k} ${n}`).join(", ");
    for (const cell of [step.step, step.seen, step.dropped, step.flagged, counts, step.what]) {
      row.insertCell().textContent = String(cell);
    }
  }
  preview.hidden = false;
}

document.getElementById("curate").addEventListener("submit", async (event) => {
  event.preventDefault();
  const building = event.submitter && event.submitter.value === "build";
  status.textContent = building ? _("Building…") : _("Previewing…");
  try {
    const url = building ? "/api/curate" : "/api/curate/preview";
    const data = await postJson(url, body(new FormData(event.target)));
    if (building) {
      window.location.assign(`/ui/curate/${encodeURIComponent(data.dataset.name)}/${data.dataset.version}`);
      return;
    }
    status.textContent = _("{read} rows read, {kept} would be kept.", { read: data.report.read, kept: data.report.kept });
    showSteps(data.report);
  } catch (error) {
    status.textContent = _("Could not curate: {reason}", { reason: error.message });
  }
});
