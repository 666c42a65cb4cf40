// The live activity monitor: the gateway's SSE feed, filtered, pausable,
// reconnecting by itself. Every value from an event is shown as text.
"use strict";
(function () {
  const { el } = window.luthien;
  const MAX_SHOWN = 500;      // events kept on the page
  const MAX_HELD = 2000;      // events held while paused or waiting for a model
  let source = null, paused = false, held = [], retry = 1000, shown = 0, dropped = 0;
  const models = new Map();   // call_id → model, learned from requests
  const waiting = new Map();  // call_id → events waiting for the call's model

  const form = document.getElementById("filters");
  const list = document.getElementById("events");
  const conn = document.getElementById("conn");
  const counts = document.getElementById("counts");
  const empty = document.getElementById("empty");
  const pauseBtn = document.getElementById("pause");

  const filter = () => Object.fromEntries(new FormData(form).entries());

  const setConn = (text, cls) => { conn.textContent = text; conn.className = "conn " + cls; };
  const updateCounts = () => {
    counts.textContent = `${shown} shown` + (held.length ? ` · ${held.length} held` : "") + (dropped ? ` · ${dropped} missed (slow reader)` : "");
  };

  const modelOf = (ev) => {
    const p = ev.payload;
    if (p && typeof p === "object" && typeof p.model === "string") return p.model;
    return undefined;
  };

  const render = (ev) => {
    const time = ev.time ? new Date(ev.time) : new Date();
    const model = models.get(ev.call_id);
    const type = ev.event_type || "";
    const cls = type.startsWith("policy.") ? "pill warn" : type === "error" || type.endsWith(".blocked") ? "pill bad" : "pill";
    const summary = el("summary", {},
      el("span", { class: "mono" }, time.toISOString().slice(11, 23)), " ",
      el("span", { class: cls + " event-type" }, type), " ",
      ev.call_id ? el("a", { href: "/calls/" + encodeURIComponent(ev.call_id), class: "mono call-link" }, ev.call_id) : "",
      ev.session_id ? [" · session ", el("a", { href: "/sessions/" + encodeURIComponent(ev.session_id), class: "mono" }, ev.session_id)] : "",
      model ? [" · ", el("span", { class: "model" }, model)] : "");
    const body = el("pre", { class: "event-json" }, JSON.stringify(ev, null, 2));
    const item = el("details", { class: "event", "data-type": type, "data-call": ev.call_id || "" }, summary, body);
    list.prepend(item);
    shown++;
    while (list.childElementCount > MAX_SHOWN) list.lastElementChild.remove();
    empty.hidden = true;
  };

  // show applies the model filter: an event of a call whose model is not
  // known yet waits (bounded) for the call's request.
  const show = (ev) => {
    const m = modelOf(ev);
    if (m && ev.call_id && !models.has(ev.call_id)) {
      models.set(ev.call_id, m);
      const w = waiting.get(ev.call_id);
      waiting.delete(ev.call_id);
      if (w) w.forEach(show);
    }
    const want = filter().model.trim();
    if (want) {
      const got = models.get(ev.call_id);
      if (got === undefined) {
        if (ev.call_id) {
          const w = waiting.get(ev.call_id) || [];
          if (w.length < 100 && waiting.size < MAX_HELD) { w.push(ev); waiting.set(ev.call_id, w); }
        }
        return;
      }
      if (!got.includes(want)) return;
    }
    render(ev);
  };

  const receive = (msg) => {
    let data;
    try { data = JSON.parse(msg.data); } catch (e) { return; }
    if (data.dropped) dropped += Number(data.dropped) || 0;
    const ev = data.event || {};
    if (paused) {
      if (held.length < MAX_HELD) held.push(ev); else dropped++;
    } else {
      show(ev);
    }
    updateCounts();
  };

  const connect = () => {
    if (source) source.close();
    const f = filter();
    const q = new URLSearchParams();
    for (const k of ["call_id", "session_id", "type"]) if (f[k] && f[k].trim()) q.set(k, f[k].trim());
    setConn("connecting…", "");
    source = new EventSource("/api/activity/stream?" + q.toString());
    source.onopen = () => { setConn("live", "live"); retry = 1000; };
    source.onmessage = receive;
    source.addEventListener("error", (e) => {
      if (e.data) { // the feed said why it ended
        try { setConn("feed ended: " + JSON.parse(e.data).message, "down"); } catch (x) { /* ignore */ }
      }
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (the gateway answered an error or is down):
        // try again, backing off up to 10s.
        setConn(`disconnected; retrying in ${Math.round(retry / 1000)}s`, "down");
        const s = source;
        setTimeout(() => { if (source === s) connect(); }, retry);
        retry = Math.min(retry * 2, 10000);
      } else {
        setConn("reconnecting…", "down");
      }
    };
  };

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(filter())) if (v.trim()) q.set(k, v.trim());
    history.replaceState(null, "", "/activity" + (q.toString() ? "?" + q : ""));
    connect();
  });
  pauseBtn.addEventListener("click", () => {
    paused = !paused;
    pauseBtn.textContent = paused ? "Resume" : "Pause";
    pauseBtn.setAttribute("aria-pressed", paused ? "true" : "false");
    if (!paused) { const h = held; held = []; h.forEach(show); }
    updateCounts();
  });
  document.getElementById("clear").addEventListener("click", () => {
    list.replaceChildren(); shown = 0; empty.hidden = false; updateCounts();
  });
  window.addEventListener("pagehide", () => { if (source) source.close(); });
  connect();
})();
