// Review queues in the console: the JSON API with the session cookie. On a review's page
// the keyboard drives the reviewer: a accept, e/c correct, r reject, s skip, u undo,
// 1-9 correct to that label (a labelled review); in the editor Ctrl+Enter (Enter for a
// label) saves and Esc cancels.
"use strict";

function field(form, name) {
  return String(form.get(name) || "").trim() || null;
}

function createBody(form) {
  const [dataset, version] = (field(form, "dataset") || "").split("@");
  const body = {
    dataset,
    version: version ? Number(version) : null,
    label_field: field(form, "label_field"),
    instructions: field(form, "instructions") || "",
    lease_minutes: Number(form.get("lease_minutes") || 10),
  };
  const split = field(form, "split");
  if (split) body.filter = { split };
  return body;
}

const createForm = document.getElementById("create-review");
if (createForm) {
  createForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = document.getElementById("form-status");
    status.textContent = _("Creating…");
    try {
      const review = await postJson("/api/reviews", createBody(new FormData(createForm)));
      window.location.assign(`/ui/reviews/${review.id}`);
    } catch (error) {
      status.textContent = _("Could not create: {reason}", { reason: error.message });
    }
  });
}

const finishForm = document.getElementById("finish");
if (finishForm) {
  finishForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(finishForm);
    const status = document.getElementById("finish-status");
    status.textContent = _("Writing the version…");
    try {
      const body = { undecided: form.get("undecided"), name: field(form, "name") };
      await postJson(`/api/reviews/${finishForm.dataset.review}/finish`, body);
      window.location.reload();
    } catch (error) {
      status.textContent = _("Could not finish: {reason}", { reason: error.message });
    }
  });
}

const RENEW_MS = 60_000; // renew the lease on activity at most this often

class Reviewer {
  constructor(panel) {
    this.panel = panel;
    this.base = `/api/reviews/${panel.dataset.review}`;
    this.labels = JSON.parse(panel.dataset.labels || "[]");
    this.labelled = Boolean(panel.dataset.labelField);
    this.item = null;
    this.busy = false;
    this.renewed = 0;
    this.form = document.getElementById("correction-form");
    this.editor = document.getElementById("correction");
    this.status = document.getElementById("review-status");
  }

  async run(step) {
    if (this.busy) return; // one step at a time: keys pressed meanwhile are ignored
    this.busy = true;
    this.panel.dataset.busy = "yes";
    try {
      this.show(await step());
    } catch (error) {
      this.status.textContent = error.message;
    } finally {
      this.busy = false;
      this.panel.dataset.busy = "no";
    }
  }

  next() {
    return this.run(() => postJson(`${this.base}/next`));
  }

  decide(decision, correction) {
    if (this.item === null) return undefined;
    const body = decision === "correct" ? { decision, correction } : { decision };
    const url = `${this.base}/items/${this.item.index}/decision`;
    return this.run(async () => {
      await postJson(url, body);
      const decided = { accept: _("accepted"), correct: _("corrected"), reject: _("rejected"), skip: _("skipped") };
      this.status.textContent = _("Item {index}: {decision}", { index: this.item.index, decision: decided[decision] || decision });
      return postJson(`${this.base}/next`);
    });
  }

  undo() {
    return this.run(() => postJson(`${this.base}/undo`));
  }

  renew() {
    if (this.item === null || Date.now() - this.renewed < RENEW_MS) return;
    this.renewed = Date.now();
    postJson(`${this.base}/items/${this.item.index}/lease`).catch((error) => {
      this.status.textContent = _("Lost this item: {reason}", { reason: error.message });
    });
  }

  show(step) {
    showProgress(step.progress);
    this.item = step.item;
    this.renewed = Date.now();
    this.closeEditor();
    document.getElementById("item").hidden = step.item === null;
    this.panel.dataset.index = step.item === null ? "none" : String(step.item.index);
    if (step.item === null) {
      this.status.textContent = step.message;
      return;
    }
    const { view } = step.item;
    document.getElementById("item-index").textContent = step.item.index;
    document.getElementById("item-state").textContent = step.item.decision || "undecided";
    document.getElementById("item-skipped").hidden = !step.item.skipped_before;
    document.getElementById("question").textContent = view.question ?? conversation(view.messages);
    document.getElementById("answer").textContent = view.answer ?? "—";
    document.getElementById("label-line").hidden = !this.labelled;
    document.getElementById("label").textContent = view.label ?? "—";
    const fixed = step.item.correction ?? view.corrected;
    document.getElementById("corrected-line").hidden = fixed === null;
    document.getElementById("corrected").textContent = fixed ?? "";
    const feedback = document.getElementById("feedback");
    feedback.replaceChildren(
      ...view.feedback.map((f) => {
        const line = document.createElement("li");
        line.textContent = `${f.name}: ${JSON.stringify(f.value)}${f.comment ? ` — ${f.comment}` : ""}`;
        return line;
      }),
    );
  }

  edit() {
    if (this.item === null) return;
    const { view } = this.item;
    this.form.hidden = false;
    this.editor.value =
      this.item.correction ?? view.corrected ?? (this.labelled ? view.label : view.answer) ?? "";
    this.editor.focus();
    this.editor.select();
  }

  closeEditor() {
    this.form.hidden = true;
    this.editor.blur();
  }

  save() {
    const correction = this.editor.value.trim();
    if (!correction) {
      this.status.textContent = _("A correction cannot be empty (r rejects the item).");
      return;
    }
    this.decide("correct", correction);
  }

  onKey(event) {
    this.renew();
    if (event.target === this.editor) {
      const saves = event.key === "Enter" && (event.ctrlKey || event.metaKey || this.labelled);
      if (saves) {
        event.preventDefault();
        this.save();
      } else if (event.key === "Escape") {
        this.closeEditor();
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
    const actions = {
      a: () => this.decide("accept"),
      e: () => this.edit(),
      c: () => this.edit(),
      r: () => this.decide("reject"),
      s: () => this.decide("skip"),
      u: () => this.undo(),
    };
    const label = this.labels[Number(event.key) - 1];
    if (actions[event.key]) {
      event.preventDefault();
      actions[event.key]();
    } else if (/^[1-9]$/.test(event.key) && label !== undefined) {
      event.preventDefault();
      this.decide("correct", label);
    }
  }
}

function isTyping(target) {
  return ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName) || target.isContentEditable;
}

function conversation(messages) {
  if (!messages) return "—";
  return messages.map((m) => `${m.role}: ${typeof m.content === "string" ? m.content : JSON.stringify(m.content)}`).join("\n");
}

function showProgress(progress) {
  const bar = document.getElementById("progress-bar");
  bar.max = progress.items || 1;
  bar.value = progress.decided;
  const d = progress.by_decision;
  document.getElementById("progress-text").textContent =
    _("{decided}/{items} decided: {accepted} accepted, {corrected} corrected, {rejected} rejected; {skips} skips; {held} held now", {
      decided: progress.decided, items: progress.items, accepted: d.accept, corrected: d.correct,
      rejected: d.reject, skips: d.skip, held: progress.leased,
    });
}

const panel = document.getElementById("reviewer");
if (panel) {
  const reviewer = new Reviewer(panel);
  document.addEventListener("keydown", (event) => reviewer.onKey(event));
  reviewer.form.addEventListener("submit", (event) => {
    event.preventDefault();
    reviewer.save();
  });
  reviewer.next();
}
