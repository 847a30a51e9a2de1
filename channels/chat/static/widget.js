// forgetmenot web chat widget. Include with one tag:
//   <script src="https://support.example.com/chat/widget.js" async></script>
// Options (attributes of that tag): data-open="true" opens the chat at once,
// data-title="…" sets the heading.
//
// Everything shown is set with textContent, never parsed as HTML: nothing a visitor
// or staff member writes can inject markup. The widget lives in a shadow root
// so the host page's styles do not leak in, nor ours out.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__forgetmenotChat) return;
  window.__forgetmenotChat = true;

  var base = new URL(script.src, location.href);
  var wsURL = (base.protocol === "https:" ? "wss://" : "ws://") + base.host + "/chat/ws";
  var KEY = "forgetmenot.chat." + base.host + ".";
  var store = {
    get: function (k, d) { try { var v = localStorage.getItem(KEY + k); return v === null ? d : JSON.parse(v); } catch (e) { return d; } },
    set: function (k, v) { try { localStorage.setItem(KEY + k, JSON.stringify(v)); } catch (e) { /* private mode: works for this page only */ } }
  };

  function newID() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID().replace(/-/g, "");
    var b = new Uint8Array(16); crypto.getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return ("0" + x.toString(16)).slice(-2); }).join("");
  }

  // --- DOM ---------------------------------------------------------------
  var host = document.createElement("div");
  host.id = "forgetmenot-chat";
  var root = host.attachShadow({ mode: "open" });
  var css = document.createElement("style");
  css.textContent = [
    ":host{all:initial}",
    ".fab{position:fixed;right:20px;bottom:20px;z-index:2147483000;border:0;border-radius:24px;padding:12px 18px;background:#2f5d8a;color:#fff;font:600 15px system-ui,sans-serif;cursor:pointer;box-shadow:0 2px 8px rgba(0,0,0,.25)}",
    ".panel{position:fixed;right:20px;bottom:20px;z-index:2147483001;width:340px;max-width:calc(100vw - 40px);height:480px;max-height:calc(100vh - 40px);display:flex;flex-direction:column;background:#fff;border-radius:10px;box-shadow:0 4px 24px rgba(0,0,0,.25);font:14px/1.4 system-ui,sans-serif;color:#222;overflow:hidden}",
    ".panel[hidden],.fab[hidden]{display:none}",
    ".head{display:flex;align-items:center;justify-content:space-between;padding:10px 14px;background:#2f5d8a;color:#fff;font-weight:600}",
    ".head button{background:none;border:0;color:#fff;font-size:20px;cursor:pointer;line-height:1}",
    ".log{flex:1;overflow-y:auto;padding:10px;display:flex;flex-direction:column;gap:6px;background:#f6f7f9}",
    ".line{max-width:85%;padding:6px 10px;border-radius:10px;white-space:pre-wrap;word-wrap:break-word}",
    ".visitor{align-self:flex-end;background:#2f5d8a;color:#fff}",
    ".staff{align-self:flex-start;background:#fff;border:1px solid #dde}",
    ".system{align-self:center;background:none;color:#555;font-size:12.5px;text-align:center;max-width:95%}",
    ".error{align-self:center;color:#a40000;font-size:12.5px;text-align:center}",
    ".author{display:block;font-size:11.5px;font-weight:600;color:#2f5d8a}",
    ".state{display:block;font-size:11px;opacity:.75;text-align:right}",
    ".who{display:flex;gap:6px;padding:6px 10px 0}",
    ".who input{flex:1;min-width:0;padding:5px 7px;border:1px solid #ccd;border-radius:6px;font:inherit}",
    "form.send{display:flex;gap:6px;padding:8px 10px 10px}",
    "textarea{flex:1;resize:none;height:44px;padding:6px 8px;border:1px solid #ccd;border-radius:6px;font:inherit}",
    "form.send button{border:0;border-radius:6px;background:#2f5d8a;color:#fff;padding:0 14px;font:600 14px system-ui,sans-serif;cursor:pointer}",
    ".status{font-size:11.5px;color:#777;padding:0 12px 4px;min-height:1em}"
  ].join("\n");
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  var fab = el("button", "fab", "Chat with us");
  fab.type = "button";
  var panel = el("div", "panel");
  panel.hidden = true;
  var head = el("div", "head");
  head.appendChild(el("span", "", script.getAttribute("data-title") || "Customer service"));
  var closeBtn = el("button", "", "×");
  closeBtn.type = "button";
  closeBtn.setAttribute("aria-label", "Close chat");
  head.appendChild(closeBtn);
  var log = el("div", "log");
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  var who = el("div", "who");
  var nameIn = el("input"); nameIn.name = "name"; nameIn.placeholder = "Your name (optional)"; nameIn.maxLength = 200;
  var emailIn = el("input"); emailIn.name = "email"; emailIn.type = "email"; emailIn.placeholder = "E-mail, to hear back if you leave (optional)";
  who.appendChild(nameIn); who.appendChild(emailIn);
  var status = el("div", "status");
  var form = el("form", "send");
  var input = el("textarea"); input.name = "message"; input.placeholder = "Type your message…";
  var sendBtn = el("button", "", "Send"); sendBtn.type = "submit";
  form.appendChild(input); form.appendChild(sendBtn);
  panel.appendChild(head); panel.appendChild(log); panel.appendChild(who); panel.appendChild(status); panel.appendChild(form);
  root.appendChild(css); root.appendChild(fab); root.appendChild(panel);

  var profile = store.get("profile", { name: "", email: "" });
  nameIn.value = profile.name || "";
  emailIn.value = profile.email || "";
  function saveProfile() { profile = { name: nameIn.value.trim(), email: emailIn.value.trim() }; store.set("profile", profile); }
  nameIn.addEventListener("change", saveProfile);
  emailIn.addEventListener("change", saveProfile);

  // --- conversation ------------------------------------------------------
  var shown = {};    // line id -> element
  var pending = store.get("pending", []); // messages not yet confirmed stored
  function savePending() { store.set("pending", pending); }

  function render(line) {
    var existing = shown[line.id];
    if (existing) return existing;
    var e = el("div", "line " + line.from);
    e.setAttribute("data-id", line.id);
    if (line.from === "staff" && line.author) e.appendChild(el("span", "author", line.author));
    e.appendChild(el("span", "text", line.text));
    log.appendChild(e);
    log.scrollTop = log.scrollHeight;
    shown[line.id] = e;
    return e;
  }
  function markState(id, text) {
    var e = shown[id];
    if (!e) return;
    var s = e.querySelector(".state");
    if (!text) { if (s) s.remove(); return; }
    if (!s) { s = el("span", "state"); e.appendChild(s); }
    s.textContent = text;
  }
  function showError(text) {
    var e = el("div", "error", text);
    log.appendChild(e);
    log.scrollTop = log.scrollHeight;
  }

  // --- connection --------------------------------------------------------
  var ws = null, ready = false, retry = 0;
  function setStatus(t) { status.textContent = t; }
  function connect() {
    ready = false;
    setStatus("Connecting…");
    try { ws = new WebSocket(wsURL); } catch (e) { schedule(); return; }
    ws.onopen = function () {
      ws.send(JSON.stringify({ type: "hello", token: store.get("token", "") }));
    };
    ws.onmessage = function (ev) {
      var f;
      try { f = JSON.parse(ev.data); } catch (e) { return; }
      handle(f);
    };
    ws.onclose = function (ev) {
      ready = false;
      if (ev.code === 1008 && ev.reason) showError(ev.reason);
      schedule();
    };
  }
  function schedule() {
    retry = Math.min(retry + 1, 6);
    var delay = Math.round(500 * Math.pow(2, retry - 1) * (0.75 + Math.random() / 2));
    setStatus("Offline — reconnecting…");
    setTimeout(connect, delay);
  }
  function handle(f) {
    switch (f.type) {
      case "welcome":
        store.set("token", f.token);
        retry = 0; ready = true;
        setStatus("");
        // Rebuild from the history: it is the record of what happened.
        shown = {};
        while (log.firstChild) log.removeChild(log.firstChild);
        (f.history || []).forEach(render);
        pending.forEach(function (m) { render({ id: m.id, from: "visitor", text: m.text }); markState(m.id, "sending…"); transmit(m); });
        break;
      case "ack":
        pending = pending.filter(function (m) { return m.id !== f.id; }); savePending();
        markState(f.id, "");
        break;
      case "line":
        if (f.line) render(f.line);
        break;
      case "error":
        if (f.id && f.code !== "unavailable") {
          // Refused for good (too long, too many): drop it, say why.
          pending = pending.filter(function (m) { return m.id !== f.id; }); savePending();
          markState(f.id, "not sent");
        }
        if (f.id && f.code === "unavailable") {
          markState(f.id, "waiting…");
          setTimeout(function () { pending.forEach(transmit); }, 3000);
        }
        showError(f.error || "Something went wrong.");
        break;
    }
  }
  function transmit(m) {
    if (ready && ws && ws.readyState === 1) {
      ws.send(JSON.stringify({ type: "message", id: m.id, text: m.text, name: m.name, email: m.email }));
    }
  }
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    saveProfile();
    var m = { id: newID(), text: text, name: profile.name, email: profile.email };
    pending.push(m); savePending();
    render({ id: m.id, from: "visitor", text: text });
    markState(m.id, "sending…");
    input.value = "";
    transmit(m);
  });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); form.requestSubmit ? form.requestSubmit() : sendBtn.click(); }
  });

  var started = false;
  function open() {
    fab.hidden = true; panel.hidden = false; store.set("open", true);
    if (!started) { started = true; connect(); }
    input.focus();
  }
  fab.addEventListener("click", open);
  closeBtn.addEventListener("click", function () { panel.hidden = true; fab.hidden = false; store.set("open", false); });

  function mount() {
    document.body.appendChild(host);
    if (script.getAttribute("data-open") === "true" || pending.length || store.get("open", false)) open();
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
