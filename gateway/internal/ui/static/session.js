// The session transcript: per-turn toggle between original and final,
// full requests loaded when opened, and live updates. The page follows
// the activity feed for this session; when a call of it is recorded, it
// fetches the server-rendered transcript (every recorded text escaped by
// the server's templates) and swaps it in, keeping what the reader had
// opened or toggled. Text from the API is only ever set as textContent.
"use strict";
(function () {
  const { api } = window.luthien;
  const live = document.getElementById("live");
  if (!live) return;
  const sessionId = live.dataset.sessionId;
  const turnsURL = live.dataset.turnsUrl;
  const TYPES = "request.received,response.original,response.final,error";
  const DEBOUNCE = 300;     // ms between an event and the refresh
  const MAX_TRIES = 6;      // refreshes waiting for a call to be stored
  let source = null, retry = 1000, timer = null, busy = false, again = false, tries = 0, missed = false;
  const waiting = new Set(); // call ids announced but not yet on the page

  const setLive = (text, cls) => { live.textContent = text; live.className = "conn " + cls; };

  // showOriginal switches a turn between its final and original view.
  const showOriginal = (turn, original) => {
    const fin = turn.querySelector(":scope > .view-final");
    const orig = turn.querySelector(":scope > .view-original");
    const btn = turn.querySelector(":scope > .turn-head > button.turn-toggle");
    if (!orig || !btn) return;
    turn.classList.toggle("showing-original", original);
    if (fin) fin.hidden = original;
    orig.hidden = !original;
    btn.textContent = original ? "Show final" : "Show original";
    btn.setAttribute("aria-pressed", original ? "true" : "false");
  };

  document.addEventListener("click", (e) => {
    const btn = e.target.closest && e.target.closest("button.turn-toggle");
    if (!btn) return;
    const turn = btn.closest(".turn");
    if (turn) showOriginal(turn, !turn.classList.contains("showing-original"));
  });

  // A large request is loaded from the API when its details open.
  const loadRequest = async (details) => {
    const pre = details.querySelector("pre.full-request-json");
    if (!pre || pre.textContent || details.dataset.loading) return;
    details.dataset.loading = "1";
    pre.textContent = "loading…";
    const res = await api("GET", "/api/v1/calls/" + encodeURIComponent(details.dataset.callId));
    if (!res.ok) {
      pre.textContent = "could not load the request: " + window.luthien.errorMessage(res.body);
    } else {
      const ev = (res.body.events || []).find((x) => x.event_type === "request.received");
      pre.textContent = ev ? JSON.stringify(ev.payload, null, 2) : "no request recorded";
    }
    delete details.dataset.loading;
  };
  document.addEventListener("toggle", (e) => {
    const d = e.target;
    if (d instanceof HTMLDetailsElement && d.open && d.matches("details.full-request[data-load]")) loadRequest(d);
  }, true);

  // keep collects what the reader changed in the transcript: toggled
  // turns, opened details, loaded requests.
  const keep = (root) => {
    const state = new Map();
    for (const turn of root.querySelectorAll(":scope > [data-call-id]")) {
      const details = [...turn.querySelectorAll("details")];
      state.set(turn.dataset.callId, {
        original: turn.classList.contains("showing-original"),
        open: details.map((d) => d.open),
        loaded: details.map((d) => (d.matches(".full-request[data-load]") ? d.querySelector("pre").textContent : "")),
      });
    }
    return state;
  };

  const restore = (root, state) => {
    for (const turn of root.querySelectorAll(":scope > [data-call-id]")) {
      const s = state.get(turn.dataset.callId);
      if (!s) continue;
      if (s.original) showOriginal(turn, true);
      [...turn.querySelectorAll("details")].forEach((d, i) => {
        if (s.loaded[i] && d.matches(".full-request[data-load]")) d.querySelector("pre").textContent = s.loaded[i];
        if (s.open[i]) d.open = true;
      });
    }
  };

  // counts updates the session's header from the transcript.
  const counts = (root) => {
    const calls = document.getElementById("session-turns");
    const interventions = document.getElementById("session-interventions");
    if (calls) calls.textContent = root.querySelectorAll(":scope > [data-call-id]").length + " calls";
    if (interventions) interventions.textContent = root.querySelectorAll(":scope > .turn.intervened").length + " with policy interventions";
  };

  const has = (root, id) => [...root.querySelectorAll(":scope > [data-call-id]")].some((x) => x.dataset.callId === id);

  // refresh replaces the transcript with the server's current one.
  const refresh = async () => {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const resp = await fetch(turnsURL, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      const type = resp.headers.get("Content-Type") || "";
      if (!type.startsWith("text/html")) throw new Error("unexpected " + type);
      const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
      const fresh = doc.getElementById("transcript");
      const current = document.getElementById("transcript");
      if (!fresh || !current) throw new Error("no transcript in the answer");
      const state = keep(current);
      const atBottom = window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 60;
      const node = document.adoptNode(fresh);
      current.replaceWith(node);
      restore(node, state);
      if (atBottom) window.scrollTo(0, document.documentElement.scrollHeight);
      for (const id of [...waiting]) if (has(node, id)) waiting.delete(id);
      counts(node);
      setLive("live · updated " + new Date().toLocaleTimeString(), "live");
    } catch (e) {
      setLive("live · update failed: " + e.message, "down");
    } finally {
      busy = false;
    }
    if (again) { again = false; schedule(DEBOUNCE); return; }
    // The feed can announce a call before the store has written it.
    if (waiting.size && tries < MAX_TRIES) { tries++; schedule(500 * 2 ** tries); } else { waiting.clear(); tries = 0; }
  };

  const schedule = (ms) => {
    clearTimeout(timer);
    timer = setTimeout(refresh, ms);
  };

  const receive = (msg) => {
    let data;
    try { data = JSON.parse(msg.data); } catch (e) { return; }
    const ev = data.event || {};
    if (ev.session_id !== sessionId && !data.dropped) return;
    if (ev.call_id) waiting.add(ev.call_id);
    tries = 0;
    schedule(DEBOUNCE);
  };

  const connect = () => {
    if (source) source.close();
    const q = new URLSearchParams({ session_id: sessionId, type: TYPES });
    setLive("connecting…", "");
    source = new EventSource("/api/activity/stream?" + q.toString());
    source.onopen = () => {
      setLive("live", "live");
      retry = 1000;
      // Calls recorded while the feed was down.
      if (missed) { missed = false; schedule(DEBOUNCE); }
    };
    source.onmessage = receive;
    source.onerror = () => {
      missed = true;
      if (source.readyState === EventSource.CLOSED) {
        setLive(`disconnected; retrying in ${Math.round(retry / 1000)}s`, "down");
        const s = source;
        setTimeout(() => { if (source === s) connect(); }, retry);
        retry = Math.min(retry * 2, 10000);
      } else {
        setLive("reconnecting…", "down");
      }
    };
  };

  window.addEventListener("pagehide", () => { if (source) source.close(); });
  connect();
})();
