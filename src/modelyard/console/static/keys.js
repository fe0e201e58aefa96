// Key management in the console: the same JSON API the CLI's peers call, with the session cookie.
"use strict";

const status = document.getElementById("key-status");

function showSecret(secret) {
  document.getElementById("secret-value").textContent = secret;
  document.getElementById("new-secret").hidden = false;
}

document.getElementById("create-key").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const limits = {};
  if (form.get("rpm")) limits.requests_per_minute = Number(form.get("rpm"));
  if (form.get("daily_tokens")) limits.daily_tokens = Number(form.get("daily_tokens"));
  const routes = String(form.get("routes") || "*").split(",").map((r) => r.trim()).filter(Boolean);
  try {
    const created = await callJson("POST", "/api/keys", {
      name: form.get("name"), role: form.get("role"), allowed_routes: routes, limits,
    });
    showSecret(created.secret);
    status.textContent = _("Created {prefix}… ({role}). Reload to see it listed.", { prefix: created.prefix, role: _(created.role) });
  } catch (error) {
    status.textContent = _("Could not create the key: {reason}", { reason: error.message });
  }
});

document.getElementById("keys").addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const id = button.closest("tr").dataset.key;
  const action = button.dataset.action;
  if (action === "revoke" && !window.confirm(_("Revoke key {id}? Clients using it stop at once.", { id }))) return;
  try {
    const result = await callJson("POST", `/api/keys/${id}/${action}`, action === "rotate" ? {} : undefined);
    if (result.secret) showSecret(result.secret);
    status.textContent = (action === "rotate" ? _("Rotated {id}. Reload to see the change.", { id })
      : _("Revoked {id}. Reload to see the change.", { id }));
  } catch (error) {
    status.textContent = (action === "rotate" ? _("Could not rotate {id}: {reason}", { id, reason: error.message })
      : _("Could not revoke {id}: {reason}", { id, reason: error.message }));
  }
});
