// The call page: keeps the original and final columns of a comparison
// lined up (each line as tall as the taller of its two sides) and opens
// or closes a folded run of unchanged items on both sides at once. The
// page works without it; this only touches layout.
"use strict";
(function () {
  const align = () => {
    for (const cols of document.querySelectorAll(".diff-cols")) {
      const left = cols.querySelectorAll(":scope > .original > .line");
      const right = cols.querySelectorAll(":scope > .final > .line");
      const n = Math.min(left.length, right.length);
      for (let i = 0; i < n; i++) {
        left[i].style.minHeight = "";
        right[i].style.minHeight = "";
      }
      if (getComputedStyle(cols).gridTemplateColumns.split(" ").length < 2) continue;
      for (let i = 0; i < n; i++) {
        const h = Math.max(left[i].offsetHeight, right[i].offsetHeight);
        left[i].style.minHeight = h + "px";
        right[i].style.minHeight = h + "px";
      }
    }
  };

  const syncFolds = () => {
    for (const cols of document.querySelectorAll(".diff-cols")) {
      for (const d of cols.querySelectorAll("details.folded")) {
        d.addEventListener("toggle", () => {
          const line = d.getAttribute("data-line");
          for (const other of cols.querySelectorAll("details.folded")) {
            if (other !== d && other.getAttribute("data-line") === line && other.open !== d.open) other.open = d.open;
          }
          align();
        });
      }
    }
  };

  document.addEventListener("DOMContentLoaded", () => {
    syncFolds();
    align();
    let pending = 0;
    window.addEventListener("resize", () => {
      cancelAnimationFrame(pending);
      pending = requestAnimationFrame(align);
    });
  });
})();
