// forgetmenot web chat widget. Include with one tag:
//   <script src="https://support.example.com/chat/widget.js" async></script>
// Options (attributes of that tag):
//   data-open="true"        opens the chat at once
//   data-title="…"          the heading (default: the language's "Customer service")
//   data-lang="nl"          the language (default: the page's <html lang>, then the browser's)
//   data-color="#0a7d4f"    the brand colour of the button, heading and own lines
//   data-position="left"    bottom left instead of bottom right
//
// Everything shown is set with textContent, never parsed as HTML: nothing a visitor
// or staff member writes can inject markup. The widget lives in a shadow root
// so the host page's styles do not leak in, nor ours out. The texts come from
// the server's chat templates (configs/chat-templates), built into this script.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__forgetmenotChat) return;
  window.__forgetmenotChat = true;

  var TEXTS = /*TEXTS*/{};
  var MAX_BYTES = /*MAX_BYTES*/4000;

  var base = new URL(script.src, location.href);
  var wsURL = (base.protocol === "https:" ? "wss://" : "ws://") + base.host + "/chat/ws";
  var statusURL = base.protocol + "//" + base.host + "/chat/status";
  var KEY = "forgetmenot.chat." + base.host + ".";
  var store = {
    get: function (k, d) { try { var v = localStorage.getItem(KEY + k); return v === null ? d : JSON.parse(v); } catch (e) { return d; } },
    set: function (k, v) { try { localStorage.setItem(KEY + k, JSON.stringify(v)); } catch (e) { /* private mode: works for this page only */ } }
  };

  function pickLang() {
    var cands = [script.getAttribute("data-lang"), document.documentElement.lang].concat(navigator.languages || [navigator.language]);
    for (var i = 0; i < cands.length; i++) {
      var l = String(cands[i] || "").toLowerCase().split(/[-_]/)[0];
      if (l && TEXTS[l]) return l;
    }
    return "en";
  }
  var lang = pickLang();
  function T(key) { return (TEXTS[lang] && TEXTS[lang][key]) || (TEXTS.en && TEXTS.en[key]) || key; }
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { /* old browser: times in UTC */ }

  var color = script.getAttribute("data-color") || "";
  if (!color || !(window.CSS && CSS.supports && CSS.supports("color", color))) color = "#2f5d8a";
  var side = script.getAttribute("data-position") === "left" ? "left" : "right";

  function newID() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID().replace(/-/g, "");
    var b = new Uint8Array(16); crypto.getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return ("0" + x.toString(16)).slice(-2); }).join("");
  }
  function bytes(s) { return new TextEncoder().encode(s).length; }

  // --- DOM ---------------------------------------------------------------
  var host = document.createElement("div");
  host.id = "forgetmenot-chat";
  var root = host.attachShadow({ mode: "open" });
  var css = document.createElement("style");
  css.textContent = [
    ":host{all:initial;--brand:" + color + "}",
    ".fab{position:fixed;" + side + ":20px;bottom:20px;z-index:2147483000;border:0;border-radius:24px;padding:12px 18px;background:var(--brand);color:#fff;font:600 16px system-ui,sans-serif;cursor:pointer;box-shadow:0 2px 8px rgba(0,0,0,.25)}",
    ".badge{display:inline-block;min-width:20px;margin-left:8px;padding:0 6px;border-radius:10px;background:#d11;color:#fff;font:700 13px/20px system-ui,sans-serif;text-align:center}",
    ".badge[hidden]{display:none}",
    ".panel{position:fixed;" + side + ":20px;bottom:20px;z-index:2147483001;width:360px;max-width:calc(100vw - 40px);height:520px;max-height:calc(100vh - 40px);display:flex;flex-direction:column;background:#fff;border-radius:10px;box-shadow:0 4px 24px rgba(0,0,0,.25);font:15px/1.4 system-ui,sans-serif;color:#222;overflow:hidden;box-sizing:border-box}",
    "@media (max-width:480px){.panel{left:0;right:0;bottom:0;width:100%;max-width:100%;height:85vh;max-height:100%;border-radius:10px 10px 0 0}}",
    ".panel[hidden],.fab[hidden]{display:none}",
    ".head{display:flex;align-items:center;justify-content:space-between;gap:8px;padding:10px 14px;background:var(--brand);color:#fff;font-weight:600}",
    ".head button{background:none;border:0;color:#fff;font-size:22px;cursor:pointer;line-height:1;padding:4px 8px}",
    ".log{flex:1;overflow-y:auto;padding:10px;display:flex;flex-direction:column;gap:6px;background:#f6f7f9}",
    ".greet{align-self:stretch;color:#444;font-size:14px;text-align:center;padding:4px 8px}",
    ".greet span{display:block}",
    ".line{max-width:85%;padding:6px 10px;border-radius:10px;white-space:pre-wrap;overflow-wrap:anywhere}",
    ".visitor{align-self:flex-end;background:var(--brand);color:#fff}",
    ".staff{align-self:flex-start;background:#fff;border:1px solid #dde}",
    ".system{align-self:center;background:none;color:#555;font-size:13px;text-align:center;max-width:95%}",
    ".error{align-self:center;color:#a40000;font-size:13px;text-align:center}",
    ".author{display:block;font-size:12px;font-weight:600;color:var(--brand)}",
    ".visitor .author{display:none}",
    ".time{display:block;font-size:11px;opacity:.7;text-align:right;margin-top:2px}",
    ".state{display:block;font-size:11px;opacity:.75;text-align:right}",
    ".who{display:flex;flex-wrap:wrap;gap:6px;padding:6px 10px 0}",
    ".who[hidden]{display:none}",
    ".who input{flex:1 1 140px;min-width:0;padding:6px 8px;border:1px solid #ccd;border-radius:6px;font:16px system-ui,sans-serif}",
    ".details{align-self:flex-start;margin:4px 10px 0;background:none;border:0;padding:2px 0;color:var(--brand);font:13px system-ui,sans-serif;cursor:pointer;text-decoration:underline}",
    ".details[hidden]{display:none}",
    "form.send{display:flex;gap:6px;padding:4px 10px 10px}",
    "textarea{flex:1;min-width:0;resize:none;height:48px;padding:6px 8px;border:1px solid #ccd;border-radius:6px;font:16px/1.3 system-ui,sans-serif;box-sizing:border-box}",
    "form.send button{border:0;border-radius:6px;background:var(--brand);color:#fff;padding:0 14px;font:600 15px system-ui,sans-serif;cursor:pointer}",
    "form.send button:disabled{opacity:.5;cursor:not-allowed}",
    ".count{font-size:12px;color:#777;padding:0 12px;text-align:right;min-height:0}",
    ".count.over{color:#a40000;font-weight:600}",
    ".status{font-size:12px;color:#777;padding:0 12px 2px;min-height:1em}",
    ".status.blocked{color:#a40000;font-weight:600}"
  ].join("\n");
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  var fab = el("button", "fab");
  fab.type = "button";
  fab.appendChild(el("span", "label", T("open")));
  var badge = el("span", "badge", "");
  badge.hidden = true;
  badge.setAttribute("aria-label", T("unread"));
  fab.appendChild(badge);
  var panel = el("div", "panel");
  panel.hidden = true;
  panel.setAttribute("role", "dialog");
  var head = el("div", "head");
  var titleText = script.getAttribute("data-title") || T("title");
  head.appendChild(el("span", "title", titleText));
  panel.setAttribute("aria-label", titleText);
  var closeBtn = el("button", "", "\u2013");
  closeBtn.type = "button";
  closeBtn.setAttribute("aria-label", T("close"));
  closeBtn.title = T("close");
  head.appendChild(closeBtn);
  var log = el("div", "log");
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  var greet = el("div", "greet");
  var detailsBtn = el("button", "details", T("details"));
  detailsBtn.type = "button";
  var who = el("div", "who");
  var nameIn = el("input"); nameIn.name = "name"; nameIn.placeholder = T("name"); nameIn.maxLength = 200; nameIn.autocomplete = "name";
  var emailIn = el("input"); emailIn.name = "email"; emailIn.type = "email"; emailIn.placeholder = T("email"); emailIn.autocomplete = "email";
  nameIn.setAttribute("aria-label", T("name")); emailIn.setAttribute("aria-label", T("email"));
  who.appendChild(nameIn); who.appendChild(emailIn);
  var status = el("div", "status");
  status.setAttribute("role", "status");
  var count = el("div", "count");
  var form = el("form", "send");
  var input = el("textarea"); input.name = "message"; input.placeholder = T("message"); input.setAttribute("aria-label", T("message"));
  var sendBtn = el("button", "", T("send")); sendBtn.type = "submit";
  form.appendChild(input); form.appendChild(sendBtn);
  panel.appendChild(head); panel.appendChild(log); panel.appendChild(detailsBtn); panel.appendChild(who);
  panel.appendChild(status); panel.appendChild(count); panel.appendChild(form);
  root.appendChild(css); root.appendChild(fab); root.appendChild(panel);

  var profile = store.get("profile", { name: "", email: "" });
  nameIn.value = profile.name || "";
  emailIn.value = profile.email || "";
  function saveProfile() { profile = { name: nameIn.value.trim(), email: emailIn.value.trim() }; store.set("profile", profile); }
  nameIn.addEventListener("change", saveProfile);
  emailIn.addEventListener("change", saveProfile);
  // The name and e-mail fields fold away once the visitor has written.
  function foldDetails(folded) { who.hidden = folded; detailsBtn.hidden = !folded; }
  foldDetails(store.get("wrote", false));
  detailsBtn.addEventListener("click", function () { foldDetails(false); nameIn.focus(); });

  // --- counter -----------------------------------------------------------
  function updateCount() {
    var n = bytes(input.value.trim());
    var over = n > MAX_BYTES;
    if (n >= MAX_BYTES * 0.8) {
      count.textContent = over ? T("too_long") + " (" + n + " / " + MAX_BYTES + ")" : n + " / " + MAX_BYTES;
    } else {
      count.textContent = "";
    }
    count.className = over ? "count over" : "count";
    sendBtn.disabled = over;
    return !over;
  }
  input.addEventListener("input", updateCount);

  // --- conversation ------------------------------------------------------
  var shown = {};    // line id -> element
  var pending = store.get("pending", []); // messages not yet confirmed stored
  function savePending() { store.set("pending", pending); }
  var seenIDs = store.get("seen", []); // staff lines the visitor has seen
  var seenSet = {};
  seenIDs.forEach(function (id) { seenSet[id] = true; });

  function timeText(at) {
    var d = new Date(at);
    if (isNaN(d)) return "";
    var opts = { hour: "2-digit", minute: "2-digit" };
    if (new Date().toDateString() !== d.toDateString()) { opts.day = "numeric"; opts.month = "short"; }
    try { return d.toLocaleString(lang, opts); } catch (e) { return d.toLocaleString(); }
  }
  function render(line) {
    var existing = shown[line.id];
    if (existing) return existing;
    var e = el("div", "line " + line.from);
    e.setAttribute("data-id", line.id);
    if (line.from === "staff" && line.author) e.appendChild(el("span", "author", line.author));
    e.appendChild(el("span", "text", line.text));
    if (line.at) {
      var t = el("time", "time", timeText(line.at));
      t.dateTime = line.at;
      e.appendChild(t);
    }
    log.appendChild(e);
    log.scrollTop = log.scrollHeight;
    shown[line.id] = e;
    if (line.from === "staff" && !seenSet[line.id]) watchSeen(e);
    updateUnread();
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
  function showGreeting(f) {
    while (greet.firstChild) greet.removeChild(greet.firstChild);
    if (f.greeting) greet.appendChild(el("span", "hello", f.greeting));
    if (f.expect) greet.appendChild(el("span", "expect", f.expect));
    log.insertBefore(greet, log.firstChild);
  }

  // --- seen receipts, unread badge, title blink ----------------------------
  // A staff line counts as seen when the panel is open, the page visible and
  // the line on screen; the server records it on the complaint's timeline.
  var unseen = {}; // id -> element, staff lines not yet seen
  var observer = window.IntersectionObserver ? new IntersectionObserver(checkSeen, { root: log, threshold: 0.5 }) : null;
  var onScreen = {};
  function watchSeen(e) {
    var id = e.getAttribute("data-id");
    unseen[id] = e;
    if (observer) observer.observe(e);
  }
  function viewing() { return !panel.hidden && document.visibilityState === "visible"; }
  function checkSeen(entries) {
    (entries || []).forEach(function (en) { onScreen[en.target.getAttribute("data-id")] = en.isIntersecting; });
    if (!viewing()) return;
    var ids = [];
    Object.keys(unseen).forEach(function (id) {
      if (observer ? onScreen[id] : true) ids.push(id);
    });
    if (!ids.length) return;
    ids.forEach(function (id) {
      if (observer) observer.unobserve(unseen[id]);
      delete unseen[id];
      seenSet[id] = true; seenIDs.push(id);
    });
    seenIDs = seenIDs.slice(-300);
    store.set("seen", seenIDs);
    sendSeen(ids);
    updateUnread();
  }
  // Another tab of the same visitor saw lines: they are seen here too, so
  // the badge and the blinking title do not go on in this one.
  window.addEventListener("storage", function (ev) {
    if (ev.key !== KEY + "seen") return;
    var seen = store.get("seen", []);
    var changed = false;
    seen.forEach(function (id) {
      seenSet[id] = true;
      if (unseen[id]) {
        if (observer) observer.unobserve(unseen[id]);
        delete unseen[id];
        changed = true;
      }
    });
    seenIDs = seen;
    if (changed) updateUnread();
  });
  var seenQueue = [];
  function sendSeen(ids) {
    seenQueue = seenQueue.concat(ids);
    if (ready && ws && ws.readyState === 1) {
      while (seenQueue.length) ws.send(JSON.stringify({ type: "seen", ids: seenQueue.splice(0, 50) }));
    }
  }
  var baseTitle = document.title, blink = null, blinkOn = false;
  function updateUnread() {
    var n = Object.keys(unseen).length;
    badge.textContent = n ? String(n) : "";
    badge.hidden = !n || !panel.hidden;
    if (n && !viewing()) {
      if (!blink) {
        baseTitle = document.title;
        blink = setInterval(function () {
          blinkOn = !blinkOn;
          document.title = blinkOn ? "(" + Object.keys(unseen).length + ") " + T("new_message") : baseTitle;
        }, 1000);
        blinkOn = true;
        document.title = "(" + n + ") " + T("new_message");
      }
    } else if (blink) {
      clearInterval(blink); blink = null; document.title = baseTitle;
    }
  }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { checkSeen(); resumeIfPaused(); }
    updateUnread();
  });

  // --- connection --------------------------------------------------------
  var ws = null, ready = false, retry = 0, blocked = false, paused = false, pinger = null, timer = null;
  function setStatus(t, isBlocked) { status.textContent = t; status.className = isBlocked ? "status blocked" : "status"; }
  function connect() {
    if (blocked) return;
    clearTimeout(timer);
    ready = false; paused = false;
    setStatus(T("connecting"));
    var welcomed = false;
    try { ws = new WebSocket(wsURL); } catch (e) { schedule(); return; }
    var sock = ws;
    sock.onopen = function () {
      sock.send(JSON.stringify({ type: "hello", token: store.get("token", ""), lang: lang, zone: zone }));
    };
    sock.onmessage = function (ev) {
      var f;
      try { f = JSON.parse(ev.data); } catch (e) { return; }
      if (f.type === "welcome") welcomed = true;
      handle(f);
    };
    sock.onclose = function (ev) {
      if (sock !== ws) return;
      ready = false;
      clearInterval(pinger);
      if (ev.code === 4000) { paused = true; setStatus(T("paused")); return; } // idle: back when the visitor is
      if (ev.code === 4029) { setStatus(T("busy")); timer = setTimeout(connect, 60000); return; }
      // Live lines were interrupted on the server: reconnect now (spread
      // over a second, as every window of that replica does the same) and
      // rebuild from the history.
      if (ev.code === 4012) { retry = 0; timer = setTimeout(connect, 200 + Math.round(Math.random() * 800)); return; }
      if (ev.code === 1008 && ev.reason) showError(ev.reason);
      if (!welcomed) { diagnose(); return; }
      schedule();
    };
  }
  // A handshake the server refused shows the page nothing: ask why.
  function diagnose() {
    fetch(statusURL, { mode: "cors", credentials: "omit", cache: "no-store" }).then(function (r) { return r.json(); }).then(function (s) {
      if (s.state === "not_enabled") {
        blocked = true;
        setStatus(T("not_enabled"), true);
        input.disabled = true; sendBtn.disabled = true;
        return;
      }
      if (s.state === "busy") { setStatus(T("busy")); timer = setTimeout(connect, 30000); return; }
      schedule();
    }, function () { schedule(); });
  }
  function schedule() {
    retry = Math.min(retry + 1, 6);
    var delay = Math.round(500 * Math.pow(2, retry - 1) * (0.75 + Math.random() / 2));
    setStatus(T("offline"));
    timer = setTimeout(connect, delay);
  }
  function resumeIfPaused() { if (paused && !blocked) connect(); }
  function handle(f) {
    switch (f.type) {
      case "welcome":
        store.set("token", f.token);
        retry = 0; ready = true;
        setStatus("");
        // Rebuild from the history: it is the record of what happened.
        shown = {}; unseen = {}; onScreen = {};
        if (observer) observer.disconnect();
        while (log.firstChild) log.removeChild(log.firstChild);
        showGreeting(f);
        (f.history || []).forEach(render);
        pending.forEach(function (m) { render({ id: m.id, from: "visitor", text: m.text, at: m.at }); markState(m.id, T("sending")); transmit(m); });
        sendSeen([]);
        clearInterval(pinger);
        pinger = setInterval(function () { if (ready && ws.readyState === 1) ws.send('{"type":"ping"}'); }, 50000);
        setTimeout(checkSeen, 50);
        break;
      case "ack":
        pending = pending.filter(function (m) { return m.id !== f.id; }); savePending();
        markState(f.id, "");
        break;
      case "line":
        if (f.line) render(f.line);
        break;
      case "error":
        var text = (f.code && TEXTS[lang] && TEXTS[lang]["error." + f.code]) || f.error || "Something went wrong.";
        if (f.id && f.code !== "unavailable") {
          // Refused for good (too long, too many, a bad address): drop it,
          // say why, and give the text back to be sent again, with the
          // address to correct in view.
          var refused = pending.filter(function (m) { return m.id === f.id; })[0];
          pending = pending.filter(function (m) { return m.id !== f.id; }); savePending();
          markState(f.id, T("not_sent"));
          if (refused && !input.value.trim()) { input.value = refused.text; updateCount(); }
          if (f.code === "bad_email") { foldDetails(false); emailIn.focus(); }
        }
        if (f.id && f.code === "unavailable") {
          markState(f.id, T("waiting"));
          setTimeout(function () { pending.forEach(transmit); }, 3000);
        }
        showError(text);
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
    if (!text || blocked || !updateCount()) return;
    saveProfile();
    // A typo in the address is caught here, with the text kept: the server
    // would refuse the message for it.
    if (profile.email && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(profile.email)) {
      showError(T("error.bad_email"));
      foldDetails(false); emailIn.focus();
      return;
    }
    var m = { id: newID(), text: text, name: profile.name, email: profile.email, at: new Date().toISOString() };
    pending.push(m); savePending();
    render({ id: m.id, from: "visitor", text: text, at: m.at });
    markState(m.id, T("sending"));
    input.value = "";
    updateCount();
    store.set("wrote", true); foldDetails(true);
    if (paused) connect(); else transmit(m);
  });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); form.requestSubmit ? form.requestSubmit() : sendBtn.click(); }
  });
  input.addEventListener("focus", resumeIfPaused);

  var started = false;
  function start() { if (!started) { started = true; connect(); } }
  function open() {
    fab.hidden = true; panel.hidden = false; store.set("open", true);
    // Lines that arrived while the panel was hidden could not scroll it (a
    // hidden box has no height): show the newest, as the visitor expects.
    log.scrollTop = log.scrollHeight;
    start();
    resumeIfPaused();
    updateUnread();
    setTimeout(checkSeen, 50);
    input.focus();
  }
  fab.addEventListener("click", open);
  closeBtn.addEventListener("click", function () { panel.hidden = true; fab.hidden = false; store.set("open", false); updateUnread(); });

  function mount() {
    document.body.appendChild(host);
    if (script.getAttribute("data-open") === "true" || pending.length || store.get("open", false)) open();
    // A visitor with a conversation stays connected while minimised, so a
    // reply shows as a badge and in the tab's title.
    else if (store.get("token", "")) start();
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
