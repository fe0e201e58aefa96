// Erasing a user's data from the console: the same JSON API the CLI's peers call, with the
// session cookie, after the admin types the user id again.
"use strict";

const actions = document.getElementById("user-actions");
const eraseStatus = document.getElementById("erase-status");

document.getElementById("erase-user").addEventListener("click", async () => {
  const user = actions.dataset.user;
  const typed = window.prompt(
    _("Erase everything stored about '{user}': prompts and answers, feedback comments, dataset items made from their requests. Usage and cost stay. This cannot be undone.", { user })
      + "\n" + _("Type the user id to confirm:"),
  );
  if (typed === null) return;
  if (typed !== user) {
    eraseStatus.textContent = _("Not erased: the id typed is not the user's.");
    return;
  }
  try {
    const done = await postJson(actions.dataset.erase);
    const counts = Object.entries(done.counts).map(([name, n]) => `${n} ${name.replaceAll("_", " ")}`);
    eraseStatus.textContent = _("Erased as {pseudonym}: {counts} (audit record {audit}).", { pseudonym: done.pseudonym, counts: counts.join(", "), audit: done.audit_id });
  } catch (error) {
    eraseStatus.textContent = _("Could not erase: {reason}", { reason: apiMessage(error) });
  }
});
