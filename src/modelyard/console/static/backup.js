// Take a backup from the console: POST /api/backup with the session cookie, save the answer.
"use strict";

const backupStatus = document.getElementById("backup-status");

document.getElementById("take-backup").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  if (form.get("passphrase") !== form.get("again")) {
    backupStatus.textContent = _("The two passphrases differ.");
    return;
  }
  backupStatus.textContent = _("Taking the backup…");
  const response = await fetch("/api/backup", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ passphrase: form.get("passphrase") }),
  });
  if (!response.ok) {
    const data = await response.json().catch(() => null);
    backupStatus.textContent = _("No backup: {reason}", { reason: data && data.error ? data.error.message : response.statusText });
    return;
  }
  const disposition = response.headers.get("content-disposition") || "";
  const name = (disposition.match(/filename="?([^";]+)"?/) || [])[1] || "modelyard.backup";
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = name;
  link.click();
  URL.revokeObjectURL(link.href);
  event.target.reset();
  backupStatus.textContent = _("Saved {name}. Restore it with: modelyard restore {name}", { name });
});
