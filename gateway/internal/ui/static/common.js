// Helpers shared by every page. Untrusted text (prompts, completions,
// tool arguments) only ever reaches the page as text nodes: el() sets
// textContent, never innerHTML.
"use strict";
(function () {
  const csrf = () => {
    const m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.content : "";
  };

  // el builds an element: attrs set as attributes (class, data-*, ...),
  // children appended as nodes or as text.
  const el = (tag, attrs, ...children) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  };

  // api calls the admin REST API with the session's CSRF token; it
  // resolves to {ok, status, body} with body parsed when JSON. A body is
  // sent as JSON unless contentType names another type.
  const api = async (method, url, body, contentType) => {
    const opts = { method, headers: { "X-CSRF-Token": csrf() }, credentials: "same-origin" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = contentType || "application/json";
      opts.body = typeof body === "string" ? body : JSON.stringify(body);
    }
    const resp = await fetch(url, opts);
    const text = await resp.text();
    let parsed = text;
    try { parsed = JSON.parse(text); } catch (e) { /* not JSON */ }
    return { ok: resp.ok, status: resp.status, body: parsed };
  };

  // errorMessage digs the message out of an API error body.
  const errorMessage = (body) => {
    if (body && typeof body === "object") {
      if (typeof body.message === "string") return body.message;
      if (body.error && typeof body.error.message === "string") return body.error.message;
      if (typeof body.error === "string") return body.error;
    }
    return typeof body === "string" ? body : JSON.stringify(body);
  };

  const addCopyButtons = () => {
    for (const pre of document.querySelectorAll("pre.copyable")) {
      const btn = el("button", { type: "button", class: "copy" }, "Copy");
      btn.addEventListener("click", async () => {
        try {
          await navigator.clipboard.writeText(pre.textContent);
          btn.textContent = "Copied";
        } catch (e) {
          const range = document.createRange();
          range.selectNodeContents(pre);
          const sel = window.getSelection();
          sel.removeAllRanges();
          sel.addRange(range);
          btn.textContent = "Selected";
        }
        setTimeout(() => { btn.textContent = "Copy"; }, 1500);
      });
      pre.before(btn);
    }
  };

  window.luthien = { csrf, el, api, errorMessage };
  document.addEventListener("DOMContentLoaded", addCopyButtons);
})();
