// Labelling and distillation in the console: the JSON API with the session cookie.
"use strict";

const formStatus = document.getElementById("form-status");

function text(form, name) {
  return String(form.get(name) || "").trim() || null;
}

function labelBody(form) {
  const labels = (text(form, "labels") || "").split(",").map((l) => l.trim()).filter(Boolean);
  const body = {
    dataset: text(form, "dataset"),
    teacher: text(form, "teacher"),
    input_field: text(form, "input_field"),
    concurrency: Number(form.get("concurrency") || 4),
    fresh: form.get("fresh") === "on",
  };
  if (labels.length) body.labels = labels;
  else body.labels_from = text(form, "labels_from");
  return body;
}

function distilBody(form) {
  return {
    dataset: text(form, "dataset"),
    model: text(form, "model"),
    label_field: text(form, "label_field") || "label",
    gold_field: text(form, "gold_field"),
    c: Number(form.get("c") || 10),
    holdout: Number(form.get("holdout") || 0.2),
    embedding_model: text(form, "embedding_model") || "default-embedding",
  };
}

function submit(id, url, body, page) {
  const form = document.getElementById(id);
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formStatus.textContent = _("Starting…");
    try {
      const started = await postJson(url, body(new FormData(event.target)));
      window.location.assign(`${page}/${started.id}`);
    } catch (error) {
      formStatus.textContent = _("Could not start: {reason}", { reason: error.message });
    }
  });
}

submit("label", "/api/label", labelBody, "/ui/label");
submit("distil", "/api/distil", distilBody, "/ui/distil");

const resume = document.getElementById("resume");
if (resume) {
  resume.addEventListener("click", async () => {
    try {
      await postJson(`/api/label/${resume.dataset.run}/resume`);
      window.location.reload();
    } catch (error) {
      formStatus.textContent = _("Could not resume: {reason}", { reason: error.message });
    }
  });
}

// A running job's page shows its progress: read again every few seconds.
if (document.querySelector("[data-running='yes']")) {
  setTimeout(() => window.location.reload(), 3000);
}
