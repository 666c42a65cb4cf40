// The routes page: the editor replaces the routing table through
// PUT /api/routes, then the page is loaded again to show the table in
// effect. A refused table's error is shown as text, and the table in
// effect stays.
"use strict";
(function () {
  const { api, errorMessage } = window.luthien;
  const $ = (id) => document.getElementById(id);
  const source = $("routes-source");
  if (!source) return;
  const apply = $("routes-apply");
  const reset = $("routes-reset");
  const statusEl = $("routes-status");
  const errorEl = $("routes-error");

  const show = (status, cls, error) => {
    statusEl.textContent = status || "";
    statusEl.className = cls || "";
    errorEl.textContent = error || "";
  };

  apply.addEventListener("click", async () => {
    apply.disabled = true;
    show("Applying…");
    try {
      const r = await api("PUT", "/api/routes", source.value, "application/yaml");
      if (!r.ok) {
        show("Refused: the table in effect is unchanged.", "bad", errorMessage(r.body));
        return;
      }
      show("Applied.", "ok");
      location.reload();
    } catch (e) {
      show("", "", "The request failed: " + e.message);
    } finally {
      apply.disabled = false;
    }
  });

  reset.addEventListener("click", () => {
    source.value = source.defaultValue;
    show("");
  });
})();
