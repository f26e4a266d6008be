/* Collection CRM — small behaviours on top of htmx. */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : null;
  }

  // Every HTMX request carries the CSRF token (the one header, set once for the whole portal).
  document.addEventListener("htmx:configRequest", function (event) {
    var token = csrfToken();
    if (token) {
      event.detail.headers["X-CSRFToken"] = token;
    }
  });

  // Words the scripts show, in the page's language: <meta name="js-messages" content="{…}">
  // (portal/web: js_messages).
  var messages = (function () {
    var meta = document.querySelector('meta[name="js-messages"]');
    try { return meta ? JSON.parse(meta.getAttribute("content")) : {}; } catch (e) { return {}; }
  })();
  function say(key, fallback) { return messages[key] || fallback; }

  // X-Error-Message is UTF-8, percent-encoded by the server (a header is ASCII)
  function headerText(value) {
    if (!value) { return value; }
    try { return decodeURIComponent(value); } catch (e) { return value; }
  }

  function toast(message) {
    var box = document.getElementById("toasts");
    if (!box) { return; }
    var item = document.createElement("div");
    item.className = "toast";
    item.setAttribute("role", "status");
    item.textContent = message;
    box.appendChild(item);
    setTimeout(function () { item.remove(); }, 6000);
  }

  // Errors: a boosted navigation or a form re-rendered with errors (422) shows the page the
  // server sent (our error pages use the layout); a failed request for part of a page shows a
  // toast with the server's message.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if (xhr.status < 400) { return; }
    if (event.detail.boosted || xhr.status === 422) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
      return;
    }
    toast(headerText(xhr.getResponseHeader("X-Error-Message")) ||
      say("request_failed", "Request failed (%s).").replace("%s", xhr.status));
  });

  document.addEventListener("htmx:sendError", function () {
    toast(say("unreachable", "The server cannot be reached. Check your connection and try again."));
  });

  // The menu button opens and closes the navigation drawer (narrow windows); a click outside
  // the drawer, Escape, or a page change closes it.
  function setNav(open) {
    document.body.classList.toggle("nav-open", open);
    document.querySelectorAll("[data-nav-toggle]").forEach(function (button) {
      button.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }
  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-nav-toggle]")) {
      var opening = !document.body.classList.contains("nav-open");
      setNav(opening);
      if (opening) {
        var first = document.querySelector("#sidebar .nav a");
        if (first) { first.focus(); }
      }
    } else if (document.body.classList.contains("nav-open") &&
               !(event.target.closest && event.target.closest("#sidebar"))) {
      setNav(false);
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && document.body.classList.contains("nav-open")) {
      setNav(false);
      var button = document.querySelector("[data-nav-toggle]");
      if (button) { button.focus(); }
    }
  });
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.boosted) { setNav(false); }
  });

  // Close the user menu when clicking elsewhere.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.user-menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) { menu.removeAttribute("open"); }
    });
  });

  // Behaviours declared in the markup (the Content-Security-Policy allows no inline handler,
  // docs/security.md):
  // <select data-autosubmit>: a change submits the form (through htmx when the form is boosted);
  // data-autosubmit="native": a plain browser submission (a full page load).
  document.addEventListener("change", function (event) {
    var field = event.target.closest && event.target.closest("[data-autosubmit]");
    if (!field || !field.form) { return; }
    if (field.getAttribute("data-autosubmit") === "native") {
      field.form.submit();
    } else {
      field.form.requestSubmit();
    }
  });

  // <input type="checkbox" data-check-all="selector">: checks or unchecks every box matching the
  // selector in the same table.
  document.addEventListener("click", function (event) {
    var box = event.target.closest && event.target.closest("[data-check-all]");
    if (!box) { return; }
    var table = box.closest("table");
    if (!table) { return; }
    table.querySelectorAll(box.getAttribute("data-check-all")).forEach(function (b) {
      b.checked = box.checked;
    });
  });

  // <button data-remove-closest="form">: removes the enclosing element (a cancelled inline form).
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-remove-closest]");
    if (!button) { return; }
    var target = button.closest(button.getAttribute("data-remove-closest"));
    if (target) { target.remove(); }
  });

  // Polling paused while something is open: <div hx-trigger="every 10s"
  // data-poll-paused-by="#cards details[open]"> skips its request while the selector matches.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var source = event.detail.elt;
    var selector = source && source.getAttribute && source.getAttribute("data-poll-paused-by");
    if (selector && document.querySelector(selector)) { event.preventDefault(); }
  });

  // A region that scrolls inside its card (a table wider than the card's .table-wrap, or a list
  // capped in height such as the case timeline) becomes a focusable, labelled region (named
  // after its aria-label, its table's or its card's heading), so keyboard and screen-reader users
  // can reach what is out of view. A list keeps its own role; a wrapper div becomes a region.
  // Checked again after every swap, settle and resize; a box that no longer scrolls loses the tab stop.
  function labelScrollRegions() {
    document.querySelectorAll(".table-wrap, .timeline").forEach(function (box) {
      var sideways = box.scrollWidth > box.clientWidth + 1;
      var scrolls = sideways || box.scrollHeight > box.clientHeight + 1;
      var ours = box.getAttribute("data-scroll-region") === "auto";
      var wrapper = box.tagName === "DIV";
      if (scrolls && !box.hasAttribute("tabindex")) {
        var table = box.querySelector("table");
        var card = box.closest(".card");
        var heading = card && card.querySelector(".card-header h2, .card-header h3, h2, h3");
        var name = (table && table.getAttribute("aria-label")) ||
          (heading && heading.textContent.replace(/\s+/g, " ").trim()) || say("table", "Table");
        if (wrapper) { box.setAttribute("role", "region"); }
        box.setAttribute("tabindex", "0");
        box.setAttribute("aria-label", sideways
          ? say("scrolls_sideways", "%s (scrolls sideways)").replace("%s", name)
          : say("scrolls", "%s (scrolls)").replace("%s", name));
        box.setAttribute("data-scroll-region", "auto");
      } else if (!scrolls && ours) {
        ["role", "tabindex", "aria-label", "data-scroll-region"].forEach(function (attr) {
          box.removeAttribute(attr);
        });
      }
    });
  }
  var resizeTimer = null;
  document.addEventListener("DOMContentLoaded", labelScrollRegions);
  // after the swap itself too (same task as the new content): between a swap and its settle
  // a polled panel's new table would otherwise scroll without its tab stop
  document.addEventListener("htmx:afterSwap", labelScrollRegions);
  document.addEventListener("htmx:afterSettle", labelScrollRegions);
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(labelScrollRegions, 150);
  });

  // Copy buttons: <button data-copy="#id">.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) { return; }
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) { return; }
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      button.textContent = say("copied", "Copied");
    });
  });
})();
