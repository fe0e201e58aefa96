// The console's way to call the JSON API with the session cookie: JSON in, JSON out, and an
// OpenAI-shaped error answer thrown as an Error carrying its message (and status, param).
"use strict";

// The page's language: the translations of the scripts' messages, handed over by base.html.
const CONSOLE_MESSAGES = JSON.parse(document.getElementById("console-messages")?.textContent || "{}");

function _(text, fields) {
  // A message in the page's language, its {name} fields filled from `fields`.
  const translated = CONSOLE_MESSAGES[text] || text;
  return translated.replace(/\{(\w+)\}/g, (whole, name) =>
    fields && name in fields ? String(fields[name]) : whole);
}

async function callJson(method, url, body) {
  const response = await fetch(url, {
    method,
    headers: { accept: "application/json", "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error(data && data.error ? data.error.message : response.statusText);
    error.status = response.status;
    error.param = data && data.error ? data.error.param : null;
    throw error;
  }
  return data;
}

function postJson(url, body) {
  return callJson("POST", url, body);
}

function apiMessage(error) {
  // The message, with the request field it names when there is one.
  return error.param ? `${error.message} (${error.param})` : error.message;
}
