// MARK: - The chat page at GET /

/// One self-contained page (no external scripts, styles or fonts: it works offline) that chats with the server
/// through its own /v1 API: a model and adapter picker, sampling settings, streamed answers with a stop button,
/// and the conversation kept in the page.
enum ChatPage {
    static let html = #"""
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Hone chat</title>
<style>
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, sans-serif; background: #f4f4f2; color: #222; display: flex; height: 100vh; }
  aside { width: 260px; padding: 14px; background: #fff; border-right: 1px solid #ddd; overflow-y: auto; }
  aside label { display: block; margin: 10px 0 2px; font-size: 13px; color: #555; }
  aside input, aside select, aside textarea { width: 100%; padding: 4px 6px; font: inherit; }
  aside button { margin-top: 14px; width: 100%; }
  main { flex: 1; display: flex; flex-direction: column; min-width: 0; }
  #log { flex: 1; overflow-y: auto; padding: 18px; }
  .message { max-width: 760px; margin: 0 auto 12px; padding: 10px 14px; border-radius: 8px; white-space: pre-wrap; word-wrap: break-word; }
  .user { background: #dbe8ff; }
  .assistant { background: #fff; border: 1px solid #e2e2e2; }
  .error { background: #ffe1e1; }
  .meta { font-size: 12px; color: #888; margin-top: 4px; }
  form { display: flex; gap: 8px; padding: 12px 18px; background: #fff; border-top: 1px solid #ddd; }
  #input { flex: 1; font: inherit; padding: 8px; resize: none; height: 58px; }
  button { font: inherit; padding: 6px 14px; cursor: pointer; }
  h1 { font-size: 18px; margin: 0 0 6px; }
</style>
</head>
<body>
<aside>
  <h1>Hone</h1>
  <label for="model">Model or adapter</label>
  <select id="model"></select>
  <label for="system">System prompt</label>
  <textarea id="system" rows="3"></textarea>
  <label for="temperature">Temperature</label>
  <input id="temperature" type="number" min="0" max="2" step="0.05" value="0.7">
  <label for="top_p">Top-p</label>
  <input id="top_p" type="number" min="0" max="1" step="0.05" value="0.95">
  <label for="top_k">Top-k (0: off)</label>
  <input id="top_k" type="number" min="0" step="1" value="0">
  <label for="max_tokens">Max tokens</label>
  <input id="max_tokens" type="number" min="1" step="1" value="512">
  <label for="seed">Seed (empty: random)</label>
  <input id="seed" type="number" step="1">
  <label for="key">API key (if the server needs one)</label>
  <input id="key" type="password" autocomplete="off">
  <button id="reset" type="button">New conversation</button>
</aside>
<main>
  <div id="log"></div>
  <form id="form">
    <textarea id="input" placeholder="Type a message; Enter sends, Shift+Enter adds a line"></textarea>
    <button id="send" type="submit">Send</button>
    <button id="stop" type="button" disabled>Stop</button>
  </form>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let conversation = [];
let controller = null;

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("key").value.trim();
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

function addMessage(role, text) {
  const div = document.createElement("div");
  div.className = "message " + role;
  div.textContent = text;
  $("log").appendChild(div);
  $("log").scrollTop = $("log").scrollHeight;
  return div;
}

async function loadModels() {
  try {
    const response = await fetch("/v1/models", { headers: headers() });
    const body = await response.json();
    if (response.status === 401) {
      // The page itself is open; every API call needs the key, so ask for it.
      addMessage("error", "This server needs an API key: type it in the 'API key' field.");
      $("key").focus();
      return;
    }
    if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
    const select = $("model");
    select.innerHTML = "";
    for (const model of body.data) {
      const option = document.createElement("option");
      option.value = model.id;
      option.textContent = model.parent ? model.id + " (adapter)" : model.id;
      select.appendChild(option);
    }
  } catch (error) {
    addMessage("error", "Could not list models: " + error.message);
  }
}

function number(id) {
  const value = $(id).value.trim();
  return value === "" ? undefined : Number(value);
}

async function send(text) {
  conversation.push({ role: "user", content: text });
  addMessage("user", text);
  const answer = addMessage("assistant", "");
  const meta = document.createElement("div");
  meta.className = "meta";
  const messages = [];
  const system = $("system").value.trim();
  if (system) messages.push({ role: "system", content: system });
  messages.push(...conversation);
  const request = {
    model: $("model").value, messages, stream: true, stream_options: { include_usage: true },
    temperature: number("temperature"), top_p: number("top_p"), top_k: number("top_k"),
    max_tokens: number("max_tokens"), seed: number("seed"),
  };
  controller = new AbortController();
  $("send").disabled = true;
  $("stop").disabled = false;
  let content = "";
  let finish = "";
  const started = performance.now();
  let tokens = 0;
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(), body: JSON.stringify(request), signal: controller.signal,
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(body.error ? body.error.message : response.statusText);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        if (!event.startsWith("data: ")) continue;
        const data = event.slice(6);
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        if (chunk.usage) tokens = chunk.usage.completion_tokens;
        for (const choice of chunk.choices || []) {
          if (choice.delta && choice.delta.content) {
            content += choice.delta.content;
            answer.textContent = content;
            $("log").scrollTop = $("log").scrollHeight;
          }
          if (choice.finish_reason) finish = choice.finish_reason;
        }
      }
    }
  } catch (error) {
    if (error.name === "AbortError") {
      finish = "stopped";
    } else {
      answer.className = "message error";
      answer.textContent = content + (content ? "\n" : "") + "Error: " + error.message;
    }
  } finally {
    controller = null;
    $("send").disabled = false;
    $("stop").disabled = true;
  }
  conversation.push({ role: "assistant", content });
  const seconds = (performance.now() - started) / 1000;
  meta.textContent = (finish ? finish + " · " : "") + (tokens ? tokens + " tokens · " : "") + seconds.toFixed(1) + " s";
  answer.appendChild(meta);
  answer.dataset.done = "true";
}

$("form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("input").value.trim();
  if (!text || controller) return;
  $("input").value = "";
  send(text);
});
$("input").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("form").requestSubmit();
  }
});
$("stop").addEventListener("click", () => { if (controller) controller.abort(); });
$("reset").addEventListener("click", () => { conversation = []; $("log").innerHTML = ""; });
$("key").addEventListener("change", loadModels);
// Settings can be given in the address (/?temperature=0&max_tokens=64&model=NAME), and /?message=TEXT asks TEXT
// at once: a link that starts a conversation.
const query = new URLSearchParams(location.search);
for (const id of ["system", "temperature", "top_p", "top_k", "max_tokens", "seed"]) {
  if (query.has(id)) $(id).value = query.get(id);
}
loadModels().then(() => {
  if (query.has("model")) $("model").value = query.get("model");
  if (query.get("message")) send(query.get("message"));
});
</script>
</body>
</html>
"""#
}
