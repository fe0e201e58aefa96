// Chat playground: streams from the same /v1/chat/completions the SDKs use.
(() => {
  const $ = (id) => document.getElementById(id);
  const transcript = $("transcript"), prompt = $("prompt"), status = $("status");
  const send = $("send"), stop = $("stop");
  let history = [];
  let controller = null;

  function bubble(role, text) {
    const div = document.createElement("div");
    div.className = `msg ${role}`;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = role;
    const body = document.createElement("span");
    body.className = "body";
    body.textContent = text;
    div.append(who, body);
    transcript.append(div);
    transcript.scrollTop = transcript.scrollHeight;
    return body;
  }

  async function chat(text) {
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
    };
    // Empty means the version's own sampling defaults (see the model page).
    if ($("temperature").value !== "") body.temperature = Number($("temperature").value);
    controller = new AbortController();
    send.disabled = true; stop.disabled = false;
    status.textContent = "…";
    const started = performance.now();
    let firstToken = null, reply = "";
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
          const delta = event.choices?.[0]?.delta?.content;
          if (delta) {
            if (firstToken === null) firstToken = performance.now();
            reply += delta;
            out.textContent = reply;
            transcript.scrollTop = transcript.scrollHeight;
          }
        }
      }
      history.push({ role: "assistant", content: reply });
      const ttft = firstToken ? Math.round(firstToken - started) : "–";
      const tokens = usage ? `${usage.prompt_tokens} in / ${usage.completion_tokens} out` : "";
      status.textContent = `${tokens} · first token ${ttft} ms · ${Math.round(performance.now() - started)} ms total`;
    } catch (error) {
      if (error.name === "AbortError") {
        status.textContent = "stopped";
        if (reply) history.push({ role: "assistant", content: reply });
      } else {
        out.parentElement.className = "msg error";
        out.textContent = error.message;
        history.pop();
        status.textContent = "error";
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
    prompt.value = "";
    chat(text);
  });
  prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("send-form").requestSubmit();
    }
  });
  stop.addEventListener("click", () => controller && controller.abort());
  $("clear").addEventListener("click", () => { history = []; transcript.textContent = ""; status.textContent = ""; });
})();
