// The policy page: an editor (a form generated from the class's schema
// and the same policy as JSON or YAML text, kept in sync), validation and
// activation through the admin API, a dry run of the active and the
// edited policy side by side, and the history. Every value from the
// server or the user is shown as text.
"use strict";
(function () {
  const { el, api, errorMessage } = window.luthien;
  const $ = (id) => document.getElementById(id);

  const boot = JSON.parse($("policy-data").textContent);
  const types = Array.isArray(boot.types) ? boot.types : [];
  const form = window.luthien.policyForm(types);

  const classSel = $("policy-class");
  const classDesc = $("policy-class-description");
  const formEl = $("policy-form");
  const raw = $("policy-editor");
  const rawFormat = $("policy-editor-format");
  const errorEl = $("policy-error");
  const statusEl = $("policy-status");

  const clone = (v) => JSON.parse(JSON.stringify(v));
  const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

  // state is the policy being edited, {class, config}: the form edits it
  // in place, the text editor replaces it.
  let state = { class: boot.active.class, config: clone(boot.active.config || {}) };
  let activePolicy = clone(state);

  const showError = (msg) => { errorEl.textContent = msg || ""; };
  const showStatus = (msg, cls) => { statusEl.textContent = msg || ""; statusEl.className = cls || ""; };

  // ---- editor ----------------------------------------------------------

  // renderClass shows the class select and the class's description.
  const renderClass = () => {
    const sel = form.classSelect(state.class, {});
    const value = sel.value;
    classSel.replaceChildren(...sel.children);
    classSel.value = value;
    const t = form.lookup(state.class);
    classDesc.textContent = t ? t.description : "";
  };

  const renderForm = () => {
    renderClass();
    form.render(formEl, state, formChanged);
  };

  // writeRaw puts the state into the text editor as JSON.
  const writeRaw = () => {
    raw.value = form.pretty(state);
    rawFormat.textContent = "";
    rawBad = false;
  };

  // formChanged follows an edit of the form; it wins over text typed
  // into the text editor but not read yet.
  const formChanged = () => {
    clearTimeout(rawTimer);
    rawTimer = null;
    rawSeq++;
    writeRaw();
    showStatus("");
  };

  classSel.addEventListener("change", () => {
    const next = classSel.value;
    // A new chain starts with the policy edited so far.
    const config = next === "serial" && form.lookup(state.class)?.class !== "serial"
      ? { policies: [clone(state)] } : {};
    state = { class: next, config };
    renderForm();
    writeRaw();
    showError("");
    showStatus("");
  });

  // normalize reads a parsed text editor value: {class, config} or a
  // policy file's {policy: {class, config}}.
  const normalize = (v) => {
    if (isObject(v) && Object.keys(v).length === 1 && isObject(v.policy)) v = v.policy;
    if (!isObject(v)) throw new Error("want an object {\"class\": ..., \"config\": {...}}");
    for (const k of Object.keys(v)) {
      if (k !== "class" && k !== "config") throw new Error(`unknown key "${k}" (want class, config)`);
    }
    if (typeof v.class !== "string" || v.class.trim() === "") throw new Error("class: want a policy class name");
    if (v.config !== undefined && v.config !== null && !isObject(v.config)) throw new Error("config: want an object");
    return { class: v.class, config: isObject(v.config) ? v.config : {} };
  };

  // The text editor is parsed a moment after typing stops: JSON in the
  // browser, anything else (YAML) by the gateway, which names the line of
  // a syntax error.
  let rawTimer = null, rawSeq = 0, rawBad = false, rawPending = null;
  const parseRaw = async () => {
    clearTimeout(rawTimer);
    rawTimer = null;
    const seq = ++rawSeq;
    const text = raw.value;
    let value, format = "JSON";
    try {
      if (text.trim() === "") throw new Error("the text editor is empty");
      try {
        value = JSON.parse(text);
      } catch (e) {
        format = "YAML";
        const r = await api("POST", "/policy/parse", text);
        if (seq !== rawSeq) return;
        if (!r.ok) throw new Error(errorMessage(r.body));
        value = r.body;
      }
      state = normalize(value);
    } catch (e) {
      if (seq !== rawSeq) return;
      rawBad = true;
      rawFormat.textContent = "";
      showError("Text editor: " + e.message);
      return;
    }
    rawBad = false;
    rawFormat.textContent = "Read as " + format + ".";
    showError("");
    showStatus("");
    renderForm();
  };
  raw.addEventListener("input", () => {
    clearTimeout(rawTimer);
    rawTimer = setTimeout(() => { rawPending = parseRaw(); }, 350);
  });

  // current returns the edited policy once the text editor is read, or
  // null (with the problem shown) when it cannot be.
  const current = async () => {
    if (rawTimer !== null) rawPending = parseRaw();
    if (rawPending) await rawPending;
    rawPending = null;
    if (rawBad) return null;
    if (formEl.querySelector("textarea.invalid-json")) {
      showError("A field of the form is not valid JSON: fix it first.");
      return null;
    }
    return { class: state.class, config: state.config || {} };
  };

  // busy disables the action buttons while a request runs.
  const busy = async (f) => {
    const buttons = document.querySelectorAll(".policy-actions button");
    buttons.forEach((b) => { b.disabled = true; });
    try { await f(); } catch (e) { showError(e.message); } finally { buttons.forEach((b) => { b.disabled = false; }); }
  };

  const formatValue = { openai: "CLIENT_FORMAT_OPENAI_CHAT", anthropic: "CLIENT_FORMAT_ANTHROPIC_MESSAGES" };

  $("policy-validate").addEventListener("click", () => busy(async () => {
    const p = await current();
    if (!p) return;
    showStatus("Validating…");
    const fmt = $("dryrun-format").value;
    const r = await api("POST", "/api/v1/policy/dry-run",
      { proposed: p, format: formatValue[fmt], request_json: JSON.stringify(samples[fmt].request) });
    if (!r.ok) {
      showStatus("");
      const msg = errorMessage(r.body);
      showError(msg);
      form.markError(formEl, msg);
      return;
    }
    showError("");
    form.markError(formEl, "");
    const failed = r.body.proposed && r.body.proposed.error;
    showStatus(failed ? `Valid, but it failed on a sample request: ${failed}` : "Valid (not activated).", failed ? "bad" : "ok");
  }));

  $("policy-activate").addEventListener("click", () => busy(async () => {
    const p = await current();
    if (!p) return;
    showStatus("Activating…");
    const r = await api("PUT", "/api/v1/policy", p);
    if (!r.ok) {
      showStatus("");
      const msg = errorMessage(r.body);
      showError(msg);
      form.markError(formEl, msg);
      return;
    }
    showError("");
    form.markError(formEl, "");
    const a = r.body.active || {};
    showStatus(`Active: ${a.policy ? a.policy.class : p.class}, revision ${a.revision || "?"}.`, "ok");
    await refresh();
  }));

  $("policy-reset").addEventListener("click", () => {
    state = clone(activePolicy);
    renderForm();
    writeRaw();
    showError("");
    showStatus("");
  });

  // load puts a policy into the editor.
  const load = (p) => {
    state = { class: p.class, config: isObject(p.config) ? clone(p.config) : {} };
    renderForm();
    writeRaw();
    showError("");
    showStatus("Loaded into the editor (not activated).");
    $("editor").scrollIntoView({ behavior: "smooth", block: "start" });
  };

  document.querySelector("table#policy-history").addEventListener("click", (ev) => {
    const b = ev.target.closest("button.load-policy");
    if (!b) return;
    try { load(JSON.parse(b.dataset.policy)); } catch (e) { showError("That entry cannot be loaded: " + e.message); }
  });
  $("catalogue").addEventListener("click", (ev) => {
    const b = ev.target.closest("button.use-type");
    if (b) load({ class: b.dataset.class, config: {} });
  });

  // ---- active policy and history ----------------------------------------

  // when formats a timestamp as the server renders it.
  const when = (iso) => {
    if (!iso) return "";
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) || d.getTime() === 0 ? "" : d.toISOString().replace("T", " ").slice(0, 23);
  };

  const historyRow = (h) => {
    const p = h.policy || {};
    const cfg = isObject(p.config) ? p.config : {};
    return el("tr", { class: "history-row", "data-revision": h.revision || "" },
      el("td", { class: "mono" }, when(h.activated_at)),
      el("td", { class: "actor" }, h.changed_by || ""),
      el("td", {}, el("code", { class: "history-class" }, p.class || "")),
      el("td", {}, el("code", {}, h.revision || "")),
      el("td", {}, el("details", {}, el("summary", {}, "config"), el("pre", {}, JSON.stringify(cfg, null, 2)))),
      el("td", {}, el("button", { type: "button", class: "secondary load-policy",
        "data-policy": JSON.stringify({ class: p.class || "", config: cfg }) }, "Load into editor")));
  };

  // refresh reads the active policy and the history again.
  const refresh = async () => {
    const [a, h] = await Promise.all([api("GET", "/api/v1/policy"), api("GET", "/api/v1/policy/history")]);
    if (a.ok && a.body.active) {
      const act = a.body.active, p = act.policy || {};
      $("active-class").textContent = p.class || "";
      $("active-revision").textContent = act.revision || "";
      const at = [when(act.activated_at)];
      if (act.changed_by) at.push(" by ", el("span", { class: "actor" }, act.changed_by));
      $("active-at").replaceChildren(...at);
      $("active-config").textContent = JSON.stringify(isObject(p.config) ? p.config : {}, null, 2);
      activePolicy = { class: p.class || "", config: isObject(p.config) ? clone(p.config) : {} };
    }
    if (h.ok && Array.isArray(h.body.entries)) {
      const rows = h.body.entries.map(historyRow);
      if (!rows.length) rows.push(el("tr", { class: "history-empty" }, el("td", { colspan: 6, class: "muted" }, "No activations recorded.")));
      document.querySelector("table#policy-history tbody").replaceChildren(...rows);
      $("history-error")?.remove();
    }
  };

  // ---- dry run ----------------------------------------------------------

  // Sample calls per client format: a question and an answer with a tool
  // call, so that text and tool policies both have something to act on.
  const samples = {
    openai: {
      request: { model: "gpt-4o-mini", messages: [{ role: "user", content: "Say hello, then clean up the build directory." }] },
      response: {
        id: "chatcmpl-sample", object: "chat.completion", created: 1700000000, model: "gpt-4o-mini",
        choices: [{ index: 0, finish_reason: "tool_calls", message: { role: "assistant", content: "Hello! I will clean up the build directory.",
          tool_calls: [{ id: "call_sample", type: "function", function: { name: "Bash", arguments: "{\"command\":\"rm -rf /tmp/build\"}" } }] } }],
        usage: { prompt_tokens: 14, completion_tokens: 22, total_tokens: 36 },
      },
    },
    anthropic: {
      request: { model: "claude-sonnet-4-5", max_tokens: 1024, messages: [{ role: "user", content: "Say hello, then clean up the build directory." }] },
      response: {
        id: "msg_sample", type: "message", role: "assistant", model: "claude-sonnet-4-5",
        content: [{ type: "text", text: "Hello! I will clean up the build directory." },
          { type: "tool_use", id: "toolu_sample", name: "Bash", input: { command: "rm -rf /tmp/build" } }],
        stop_reason: "tool_use", stop_sequence: null, usage: { input_tokens: 14, output_tokens: 22 },
      },
    },
  };
  const fmtSel = $("dryrun-format"), reqTA = $("dryrun-request"), respTA = $("dryrun-response");
  const sampleText = (fmt, which) => JSON.stringify(samples[fmt][which], null, 2);
  let shownFormat = fmtSel.value;
  reqTA.value = sampleText(shownFormat, "request");
  respTA.value = sampleText(shownFormat, "response");
  // Switching formats swaps the samples the user has not edited.
  fmtSel.addEventListener("change", () => {
    const prev = shownFormat;
    shownFormat = fmtSel.value;
    if (reqTA.value === sampleText(prev, "request")) reqTA.value = sampleText(shownFormat, "request");
    if (respTA.value.trim() === "" || respTA.value === sampleText(prev, "response")) respTA.value = sampleText(shownFormat, "response");
  });

  const prettyJSON = (text) => {
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
  };
  const badge = (changed) => el("span", { class: "badge " + (changed ? "changed" : "unchanged") }, changed ? "changed" : "unchanged");

  // resultColumn shows what one policy did with the samples.
  const resultColumn = (cls, title, res, hadResponse) => {
    const col = el("div", { class: cls });
    const p = res.policy || {};
    col.append(el("h3", {}, title, " ", el("code", { class: "dryrun-class" }, p.class || ""),
      res.revision ? el("span", { class: "muted" }, " · revision ", el("code", {}, res.revision)) : null));
    let outcome = "error";
    if (typeof res.forward_request_json === "string") outcome = "forward";
    else if (typeof res.respond_json === "string") outcome = "respond";
    else if (res.reject) outcome = "reject";
    col.dataset.outcome = outcome;
    if (res.error) col.append(el("p", { class: "error dryrun-error" }, "Failed: " + res.error + " (live, the call would fail closed)"));
    const decision = {
      forward: "The request goes upstream.",
      respond: "The policy answers the client itself: no upstream call.",
      reject: res.reject ? `The request is refused: HTTP ${res.reject.http_status} ${res.reject.error_type}: ${res.reject.message}` : "",
      error: "No decision.",
    }[outcome];
    col.append(el("p", { class: "dryrun-decision" }, decision));
    if (outcome !== "error") {
      col.append(el("h4", {}, "Request ", badge(res.request_changed)));
      if (outcome === "forward") col.append(el("pre", { class: "dryrun-request" }, prettyJSON(res.forward_request_json)));
      if (outcome === "respond") col.append(el("pre", { class: "dryrun-respond" }, prettyJSON(res.respond_json)));
    }
    if (res.response_json) {
      col.append(el("h4", {}, "Response ", badge(res.response_changed)));
      col.append(el("pre", { class: "dryrun-response" }, prettyJSON(res.response_json)));
    } else if (hadResponse) {
      col.append(el("h4", {}, "Response"), el("p", { class: "muted dryrun-response-skipped" }, "Not run: the request did not go upstream."));
    }
    const events = Array.isArray(res.events) ? res.events : [];
    col.append(el("h4", {}, `Policy events (${events.length})`));
    if (events.length) {
      col.append(el("ul", { class: "dryrun-events" }, events.map((e) =>
        el("li", {}, el("details", {}, el("summary", {}, el("code", {}, e.type || "")), el("pre", {}, prettyJSON(e.payload_json || "{}")))))));
    }
    return col;
  };

  $("dryrun-run").addEventListener("click", () => busy(async () => {
    const out = $("dryrun-result"), st = $("dryrun-status");
    const p = await current();
    if (!p) { st.textContent = "Fix the editor first."; return; }
    const hadResponse = respTA.value.trim() !== "";
    st.textContent = "Running…";
    const r = await api("POST", "/api/v1/policy/dry-run",
      { proposed: p, format: formatValue[fmtSel.value], request_json: reqTA.value, response_json: respTA.value });
    st.textContent = "";
    if (!r.ok) {
      out.replaceChildren(el("p", { class: "error dryrun-failed" }, errorMessage(r.body)));
      return;
    }
    out.replaceChildren(el("div", { class: "side-by-side dryrun-columns" },
      resultColumn("dryrun-current", "Active", r.body.active || {}, hadResponse),
      resultColumn("dryrun-proposed", "Proposed", r.body.proposed || {}, hadResponse)));
  }));

  // ---- start --------------------------------------------------------------

  if (boot.error) showError(boot.error);
  renderForm();
  writeRaw();
})();
