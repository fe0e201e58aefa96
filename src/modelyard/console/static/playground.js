// Chat playground: streams from the same /v1/chat/completions the SDKs use.
// Optional: a JSON response format (object or schema), tools with a tool choice, and the
// tokens' probabilities (logprobs), all read from the "advanced" panel.
(() => {
  const $ = (id) => document.getElementById(id);
  const transcript = $("transcript"), prompt = $("prompt"), status = $("status");
  const send = $("send"), stop = $("stop");
  const format = $("format"), schema = $("schema"), tools = $("tools"), toolChoice = $("tool-choice");
  let history = [];
  let controller = null;
  const ROLE_NAMES = { user: _("user"), assistant: _("assistant") };

  function bubble(role, text) {
    const div = document.createElement("div");
    div.className = `msg ${role}`;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = ROLE_NAMES[role] || role;
    const body = document.createElement("span");
    body.className = "body";
    body.textContent = text;
    div.append(who, body);
    transcript.append(div);
    transcript.scrollTop = transcript.scrollHeight;
    return body;
  }

  // A textarea's JSON, or an error shown under it (and null) when it does not parse.
  function parsed(area, errorId, check) {
    const error = $(errorId);
    error.textContent = "";
    area.removeAttribute("aria-invalid");
    try {
      const value = JSON.parse(area.value);
      const problem = check(value);
      if (problem) throw new Error(problem);
      return value;
    } catch (failure) {
      error.textContent = failure instanceof SyntaxError ? _("Not JSON: {reason}", { reason: failure.message }) : failure.message;
      area.setAttribute("aria-invalid", "true");
      return null;
    }
  }

  function parsedTools() {
    if (!tools.value.trim()) { $("tools-error").textContent = ""; tools.removeAttribute("aria-invalid"); return []; }
    return parsed(tools, "tools-error", (value) => {
      if (!Array.isArray(value)) return _("Tools must be a JSON array of tool definitions.");
      const unnamed = value.findIndex((t) => typeof t?.function?.name !== "string");
      return unnamed >= 0 ? _("Tool {n} has no function.name.", { n: unnamed + 1 }) : null;
    });
  }

  // The request's optional fields; null when an editor holds invalid JSON.
  function extras() {
    const out = {};
    if (format.value === "json_object") out.response_format = { type: "json_object" };
    if (format.value === "json_schema") {
      const value = parsed(schema, "schema-error", (v) => (v && typeof v === "object" && !Array.isArray(v) ? null : _("A schema is a JSON object.")));
      if (value === null) return null;
      const name = $("schema-name").value.trim() || "answer";
      out.response_format = { type: "json_schema", json_schema: { name, schema: value, strict: true } };
    }
    const defined = parsedTools();
    if (defined === null) return null;
    if (defined.length) {
      out.tools = defined;
      const choice = toolChoice.value;
      out.tool_choice = ["auto", "none", "required"].includes(choice)
        ? choice : { type: "function", function: { name: choice } };
    }
    if ($("logprobs").checked) { out.logprobs = true; out.top_logprobs = 5; }
    return out;
  }

  // The tool choice offers each defined function by name (after auto, none, required).
  function refreshToolChoice() {
    const defined = tools.value.trim() ? parsedTools() : [];
    const chosen = toolChoice.value;
    for (const option of [...toolChoice.options].slice(3)) option.remove();
    for (const tool of defined || []) {
      const option = document.createElement("option");
      option.value = option.textContent = tool.function.name;
      toolChoice.append(option);
    }
    toolChoice.value = [...toolChoice.options].some((o) => o.value === chosen) ? chosen : "auto";
  }

  // Streamed tool calls come in pieces: the name first, then the arguments, by index.
  function addToolCalls(calls, pieces) {
    for (const piece of pieces) {
      const call = calls[piece.index ?? 0] ??= { id: "", name: "", arguments: "" };
      if (piece.id) call.id = piece.id;
      call.name += piece.function?.name ?? "";
      call.arguments += piece.function?.arguments ?? "";
    }
  }

  function showToolCalls(out, calls) {
    for (const call of calls.filter(Boolean)) {
      const box = document.createElement("div");
      box.className = "tool-call";
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = `${call.name}()`;
      const args = document.createElement("pre");
      args.className = "args";
      try { args.textContent = JSON.stringify(JSON.parse(call.arguments || "{}"), null, 2); }
      catch { args.textContent = call.arguments; }
      box.append(name, args);
      out.parentElement.append(box);
    }
  }

  const percent = (logprob) => `${(100 * Math.exp(logprob)).toFixed(1)}%`;

  // Each token shaded by how unsure the model was; its probability and the alternatives on
  // hover, and all of them in a table.
  function showTokens(out, tokens) {
    if (!tokens.length) return;
    const strip = document.createElement("div");
    strip.className = "tokens";
    const rows = [];
    for (const t of tokens) {
      const span = document.createElement("span");
      span.className = "token";
      span.textContent = t.token;
      const others = (t.top_logprobs || []).map((o) => `${JSON.stringify(o.token)} ${percent(o.logprob)}`);
      span.title = percent(t.logprob) + (others.length ? _(" · top: {alternatives}", { alternatives: others.join(", ") }) : "");
      span.dataset.p = Math.exp(t.logprob).toFixed(4);
      span.style.setProperty("--p", ((1 - Math.exp(t.logprob)) * 0.5).toFixed(3));
      strip.append(span);
      rows.push([t.token, percent(t.logprob), others.join(", ")]);
    }
    const details = document.createElement("details");
    const summary = document.createElement("summary");
    summary.textContent = _("{n} tokens", { n: tokens.length });
    const table = document.createElement("table");
    table.className = "grid";
    for (const row of [[_("token"), _("probability"), _("top alternatives")], ...rows]) {
      const tr = table.insertRow();
      for (const cell of row) tr.insertCell().textContent = cell;
    }
    details.append(summary, table);
    strip.append(details);
    out.parentElement.append(strip);
  }

  async function chat(text, fields) {
    const system = $("system").value.trim();
    history.push({ role: "user", content: text });
    bubble("user", text);
    const out = bubble("assistant", "");
    out.parentElement.dataset.state = "streaming";
    const messages = system ? [{ role: "system", content: system }, ...history] : history;
    const body = {
      model: $("model").value,
      messages,
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: Number($("max-tokens").value),
      ...fields,
    };
    // Empty means the version's own sampling defaults (see the model page).
    if ($("temperature").value !== "") body.temperature = Number($("temperature").value);
    controller = new AbortController();
    send.disabled = true; stop.disabled = false;
    status.textContent = "…";
    const started = performance.now();
    let firstToken = null, reply = "", finish = null;
    const calls = [], tokens = [];
    try {
      const response = await fetch("/v1/chat/completions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      if (!response.ok) {
        const err = await response.json().catch(() => ({ error: { message: response.statusText } }));
        throw new Error(err.error?.message || response.statusText);
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "", usage = null;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const line = buffer.slice(0, cut).trim();
          buffer = buffer.slice(cut + 2);
          if (!line.startsWith("data:")) continue;
          const data = line.slice(5).trim();
          if (data === "[DONE]") continue;
          const event = JSON.parse(data);
          if (event.error) throw new Error(event.error.message);
          if (event.usage) usage = event.usage;
          const choice = event.choices?.find((c) => (c.index ?? 0) === 0);
          if (!choice) continue;
          if (choice.finish_reason) finish = choice.finish_reason;
          const delta = choice.delta?.content;
          if (firstToken === null && (delta || choice.delta?.tool_calls)) firstToken = performance.now();
          if (choice.delta?.tool_calls) addToolCalls(calls, choice.delta.tool_calls);
          if (choice.logprobs?.content) tokens.push(...choice.logprobs.content);
          if (delta) {
            reply += delta;
            out.textContent = reply;
            transcript.scrollTop = transcript.scrollHeight;
          }
        }
      }
      // Tool calls are shown, not kept: the next turn would need each call's result.
      if (reply) history.push({ role: "assistant", content: reply });
      showToolCalls(out, calls);
      showTokens(out, tokens);
      const ttft = firstToken ? Math.round(firstToken - started) : "–";
      const tokensUsed = usage ? _("{prompt} in / {completion} out", { prompt: usage.prompt_tokens, completion: usage.completion_tokens }) : "";
      const ended = finish ? ` · ${finish}` : "";
      status.textContent = tokensUsed + ended + _(" · first token {ttft} ms · {total} ms total",
        { ttft, total: Math.round(performance.now() - started) });
    } catch (error) {
      if (error.name === "AbortError") {
        status.textContent = _("stopped");
        if (reply) history.push({ role: "assistant", content: reply });
      } else {
        out.parentElement.className = "msg error";
        out.textContent = error.message;
        history.pop();
        status.textContent = _("error");
      }
    } finally {
      out.parentElement.dataset.state = "done";
      controller = null;
      send.disabled = false; stop.disabled = true;
    }
  }

  $("send-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = prompt.value.trim();
    if (!text || controller) return;
    const fields = extras();
    if (fields === null) {
      $("advanced").open = true;
      status.textContent = _("fix the JSON above first");
      return;
    }
    prompt.value = "";
    chat(text, fields);
  });
  prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("send-form").requestSubmit();
    }
  });
  format.addEventListener("change", () => {
    const asSchema = format.value === "json_schema";
    $("schema-field").hidden = !asSchema;
    $("schema-name-field").hidden = !asSchema;
  });
  schema.addEventListener("input", () => format.value === "json_schema" && extras());
  tools.addEventListener("input", refreshToolChoice);
  stop.addEventListener("click", () => controller && controller.abort());
  $("clear").addEventListener("click", () => { history = []; transcript.textContent = ""; status.textContent = ""; });
})();
