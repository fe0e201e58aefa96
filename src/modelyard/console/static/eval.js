// Eval runs in the console. The start form posts the task file's text to the same JSON API
// the CLI's peers call (POST /api/eval/runs, with the session cookie) and goes to the new
// run's page; a running run's page asks its API for news, shows how many items have an
// answer, and reloads when the run ends.
"use strict";

function startBody(form) {
  const number = (name) => {
    const text = String(form.get(name) || "").trim();
    return text === "" ? null : Number(text);
  };
  const body = {
    task_yaml: String(form.get("task_yaml") || ""),
    model: String(form.get("model") || "").trim(),
    allow_train_overlap: form.get("allow_train_overlap") === "on",
  };
  for (const name of ["limit", "seed", "concurrency"]) {
    const value = number(name);
    if (value !== null) body[name] = value;
  }
  return body;
}

function startForm(form) {
  const status = document.getElementById("eval-status");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.textContent = _("Starting…");
    try {
      const data = await postJson("/api/eval/runs", startBody(new FormData(form)));
      window.location.assign(`/ui/eval/runs/${data.id}`);
    } catch (error) {
      status.textContent = _("Could not start the run: {reason}", { reason: apiMessage(error) });
    }
  });
}

function followRun(root) {
  if (root.dataset.status !== "running") return;
  const done = document.getElementById("done");
  const pollMs = Math.max(Number(root.dataset.pollMs) || 3000, 500);
  const timer = window.setInterval(async () => {
    const response = await fetch(root.dataset.api, { headers: { accept: "application/json" } });
    if (!response.ok) return;
    const run = await response.json();
    if (done) done.textContent = String(run.done);
    if (run.status !== root.dataset.status) {
      window.clearInterval(timer);
      window.location.reload();
    }
  }, pollMs);
}

const form = document.getElementById("start-eval");
const run = document.getElementById("eval-run");
if (form) startForm(form);
if (run) followRun(run);
