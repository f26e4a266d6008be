/* Agent workspace keyboard shortcuts: "/" search, J/K move in the queue, Enter open, N next case. */
(function () {
  "use strict";
  if (window.__workspaceKeys) { return; }
  window.__workspaceKeys = true;

  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  function rows() { return Array.prototype.slice.call(document.querySelectorAll("tr.queue-row")); }

  function select(index) {
    var all = rows();
    if (!all.length) { return; }
    index = Math.max(0, Math.min(all.length - 1, index));
    all.forEach(function (row, i) { row.classList.toggle("selected", i === index); });
    all[index].scrollIntoView({ block: "nearest" });
  }

  function current() {
    return rows().findIndex(function (row) { return row.classList.contains("selected"); });
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (typing(event.target)) {
      if (event.key === "Escape") { event.target.blur(); }
      return;
    }
    var key = event.key;
    if (key === "/") {
      var search = document.querySelector("[data-hotkey='/']");
      if (search) { event.preventDefault(); search.focus(); search.select(); }
    } else if (key === "j" || key === "ArrowDown") {
      if (rows().length) { event.preventDefault(); select(current() + 1); }
    } else if (key === "k" || key === "ArrowUp") {
      if (rows().length) { event.preventDefault(); select(current() - 1); }
    } else if (key === "Enter") {
      var row = document.querySelector("tr.queue-row.selected");
      if (row) { event.preventDefault(); row.querySelector("a").click(); }
    } else if (key === "n" || key === "N") {
      var next = document.querySelector("[data-testid='next-case']");
      if (next) { event.preventDefault(); next.click(); }
    }
  });

  // A click anywhere on a queue row opens the case.
  document.addEventListener("click", function (event) {
    var row = event.target.closest && event.target.closest("tr.queue-row");
    if (!row || event.target.closest("a, button, input, select")) { return; }
    var link = row.querySelector("a");
    if (link) { link.click(); }
  });
})();
