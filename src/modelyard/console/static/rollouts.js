// Starting a rollout from the console. The form becomes POST /api/rollouts's body, sent with
// the session cookie; the steps go as the text typed (`steps_yaml`), which the server parses,
// since no YAML parser ships with the console. "Plan" sends the same body to
// /api/rollouts/plan and shows what its analyses can detect. Errors show as the API words them.
"use strict";

const form = document.getElementById("start-rollout");
const status = document.getElementById("start-status");
const planBox = document.getElementById("start-plan");
const models = document.getElementById("rollout-models");

function body(fields, planning) {
  const text = (name) => String(fields.get(name) || "").trim();
  const spec = {
    model: text("model"),
    candidate: Number(text("candidate")),
    alias: text("alias") || "production",
    notify: text("notify").split(/[\s,]+/).filter(Boolean),
    reason: text("reason"),
  };
  const steps = String(fields.get("steps") || "");
  if (steps.trim()) spec.steps_yaml = steps; // else the default steps
  if (planning && text("requests_per_s")) spec.requests_per_s = Number(text("requests_per_s"));
  return spec;
}

// -- the plan, as plan_section.html renders a RolloutPlan ----------------------------------

function element(tag, text, className) {
  const made = document.createElement(tag);
  if (text !== undefined) made.textContent = text;
  if (className) made.className = className;
  return made;
}

function pct(x) {
  return x === null || x === undefined ? "—" : `${Math.round(x * 100)}%`;
}

function duration(seconds) {
  // planner.duration_text: 45 s, 6.5 min, 2.1 h
  if (seconds < 120) return `${Number(seconds.toPrecision(3))} s`;
  if (seconds < 7200) return `${Number((seconds / 60).toPrecision(3))} min`;
  return `${Number((seconds / 3600).toPrecision(3))} h`;
}

function warning(text) {
  const notice = element("p", text, "notice warn");
  notice.dataset.warning = "";
  return notice;
}

function stepTable(step) {
  const table = element("table", undefined, "grid plan-step");
  table.dataset.planStep = String(step.step);
  const head = table.createTHead().insertRow();
  for (const title of [_("Metric"), _("Margin"), _("Detectable"), _("Fixed-horizon"), _("Promoted if equal"), _("Warnings")]) {
    head.append(element("th", title));
  }
  const rows = table.createTBody();
  for (const m of step.metrics) {
    const row = rows.insertRow();
    row.dataset.planMetric = m.name;
    const cells = [
      m.name + (m.assumed ? _(" (assumed)") : ""), m.margin_text, m.detectable_text,
      m.fixed_horizon_text, pct(m.promote_if_equal), [...m.warnings, ...m.notes].join("; "),
    ];
    for (const cell of cells) row.insertCell().textContent = cell;
  }
  return table;
}

function showPlan(plan) {
  const traffic = plan.traffic_source === "given"
    ? _("given")
    : _("{n} requests of {model} in the request log", { n: plan.logged_requests, model: plan.model });
  planBox.replaceChildren(element("p",
    _("At {rate} requests/s ({traffic}), the smallest effect each analysis step detects with {power} power, and the chance that a candidate equal to the baseline is promoted.",
      { rate: Number(plan.requests_per_s.toPrecision(3)), traffic, power: pct(plan.power) }), "status"));
  for (const text of plan.warnings) planBox.append(warning(text));
  for (const step of plan.steps) {
    planBox.append(element("h3", _("Step {n}: analysis at {weight}%", { n: step.step + 1, weight: step.weight })));
    let timing = _("{test}, α {alpha}; a measurement every {interval} s, at most {count}; at most {most}", {
      test: step.test, alpha: step.alpha, interval: step.interval_s, count: step.count,
      most: duration(step.duration_s),
    });
    if (step.expected_duration_s !== null) {
      timing += _(", about {duration} for an equal candidate", { duration: duration(step.expected_duration_s) });
    }
    planBox.append(element("p", `${timing}.`, "status"));
    if (step.metrics.length) planBox.append(stepTable(step));
  }
  if (!plan.steps.length) planBox.append(element("p", _("No analysis step: nothing to plan."), "notice"));
  planBox.hidden = false;
}

// -- the form ------------------------------------------------------------------------------

form.elements.model.addEventListener("change", () => {
  // A registered model: its latest version is the likely candidate.
  const option = [...models.options].find((o) => o.value === form.elements.model.value);
  if (option && option.dataset.latest && !form.elements.candidate.value) {
    form.elements.candidate.value = option.dataset.latest;
  }
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const planning = !event.submitter || event.submitter.value === "plan";
  const spec = body(new FormData(form), planning);
  form.elements.steps.removeAttribute("aria-invalid");
  status.textContent = planning ? _("Planning…") : _("Starting…");
  try {
    if (!planning) {
      const started = await postJson("/api/rollouts", spec);
      window.location.assign(`/ui/rollouts/${started.id}`);
      return;
    }
    showPlan(await postJson("/api/rollouts/plan", spec));
    status.textContent = _("Planned: what these steps can detect is below.");
  } catch (error) {
    status.textContent = error.message;
    if (error.param && error.param.startsWith("steps")) {
      form.elements.steps.setAttribute("aria-invalid", "true");
    }
  }
});
