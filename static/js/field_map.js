/* Field work maps: folium draws them (portal/field/maps.py), this file makes them live.
 *
 * A map element ([data-folium-map]) names the assets folium listed for it (Leaflet from
 * static/vendor, never a CDN) and the URL of the script folium wrote for it.
 * They load in order; folium's script builds the map and ends with FieldMap.attach(...), which
 * hands over the Leaflet objects:
 * - supervisor map (#map_field): polls the JSON endpoint and moves the agent markers in place
 *   (no page reload), keeps today's visits current, draws the customers in view as PostgreSQL
 *   clustered them (fetched again when the map moves), draws an agent's route (a script folium
 *   writes for it: FieldMap.drawRoute) and redraws with other filters (folium's script again);
 * - the field agent's map ([data-mode=agent]) and a customer's location: drawn once.
 * Check-in buttons ([data-checkin-url]) post the browser's position.
 *
 * Words come from the map's data (labels, in the page's language); times are 24-hour.
 * The file may be executed again when htmx swaps the page in; it then only initialises maps
 * that are new. */
(function () {
  "use strict";

  var FieldMap = window.FieldMap = window.FieldMap || { instances: [] };
  if (FieldMap.ready) { FieldMap.initAll(); return; }
  FieldMap.ready = true;

  var BUCKET_COLOURS = {};  // bucket -> colour, from the map's data (portal/field/maps.py)
  var LABELS = {};

  // "%(name)s" placeholders, as in the portal's catalogue
  function fmt(key, values) {
    var text = LABELS[key] || key;
    return text.replace(/%\((\w+)\)s/g, function (_, name) {
      return values && values[name] !== undefined ? String(values[name]) : "";
    }).replace(/%%/g, "%");
  }

  function loadScript(src, fresh) {
    return new Promise(function (resolve, reject) {
      var existing = fresh ? null : document.querySelector('script[data-vendor="' + src + '"]');
      if (existing && existing.dataset.loaded) { resolve(); return; }
      var s = existing || document.createElement("script");
      s.addEventListener("load", function () { s.dataset.loaded = "1"; resolve(); });
      s.addEventListener("error", function () { reject(new Error("cannot load " + src)); });
      if (!existing) {
        s.src = src;
        s.async = false;  // scripts inserted together run in their order
        if (fresh) { s.setAttribute("data-map-script", "1"); } else { s.setAttribute("data-vendor", src); }
        document.head.appendChild(s);
        if (fresh) { s.addEventListener("load", function () { s.remove(); }); }
      }
    });
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function initials(name) {
    return (name || "?").split(/\s+/).filter(Boolean).slice(-2)
      .map(function (w) { return w.charAt(0).toUpperCase(); }).join("");
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  // Leaflet puts a string tooltip in with innerHTML: names (from the bank's systems) go in as
  // text, in an element, never as markup.
  function text(value) { var node = el("span", null, value); node.setAttribute("translate", "no"); return node; }

  // Timings of the first load on the element (data-t-scripts, data-t-drawn: ms since
  // navigation), for the benchmark and for anyone curious in the dev tools.
  function mark(node, name) {
    node.setAttribute("data-t-" + name, String(Math.round(performance.now())));
  }

  function filterParams() {
    var form = document.getElementById("map-filters");
    var params = new URLSearchParams();
    if (form) {
      params.set("team", form.elements.team.value);
      if (form.elements.agent.value) { params.set("agent", form.elements.agent.value); }
    }
    return params;
  }

  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      });
  }

  // A customer (row [cif, name, lat, lon, bucket, dpd, priority, agent_id]): a circle on the
  // canvas in the colour of its bucket.
  function customerMarker(row) {
    var marker = L.circleMarker([row[2], row[3]], { radius: 6, weight: 1, color: "#ffffff",
      fillColor: BUCKET_COLOURS[row[4]] || "#2b6fca", fillOpacity: 0.9 });
    marker._row = row;
    return marker;
  }

  // A cluster of customers shows how many, ringed in the colour of its worst bucket.
  // (worst: the bucket's rank, 1 current … 5 90+, as PostgreSQL ranked it)
  function clusterIcon(n, worst) {
    var size = n < 10 ? "small" : n < 100 ? "medium" : "large";
    var name = fmt("cluster", { num: n }).replace(/[<>&"]/g, "");
    return L.divIcon({
      html: '<div><span aria-hidden="true">' + n + '</span><span class="sr-only">' + name + "</span></div>",
      className: "marker-cluster marker-cluster-" + size + " worst-" + worst,
      iconSize: L.point(40, 40)
    });
  }

  // ------------------------------------------------------------------ supervisor map

  function SupervisorMap(node, handles) {
    this.node = node;
    this.data = handles.data;
    this.config = handles.data.config || {};
    this.form = document.getElementById("map-filters");
    this.status = document.getElementById("map-status");
    this.map = handles.map;
    this.customers = handles.customers;
    this.visitsLayer = handles.visits;
    this.routeLayer = handles.route;
    this.agentsLayer = handles.agents;
    this.agentMarkers = {};
    this.agents = {};
    this.selected = null;
    this.customerCount = 0;
    var self = this;
    var given = handles.agents.markers || handles.markers || {};
    Object.keys(given).forEach(function (id) { self.agentMarkers[id] = given[id]; });
    (handles.data.agents || []).forEach(function (a) {
      self.agents[a.id] = a;
      var m = self.agentMarkers[a.id];
      if (m) {
        m._stale = a.stale;
        m.bindPopup(function () { return self.agentPopup(self.agents[a.id]); });
      }
    });
    // one handler for every customer and cluster, by mouse or by Enter on a focused cluster
    this.customers.on("click keypress", function (e) {
      if (e.type === "keypress" && e.originalEvent.key !== "Enter") { return; }
      var layer = e.layer || {};
      if (layer._row) {
        L.popup().setLatLng(layer.getLatLng()).setContent(customerPopup(layer._row)).openOn(self.map);
      } else if (layer._cell) {
        self.openCluster(layer);
      }
    });
    if (!this.form || this.form.dataset.bound !== "1") { this.bindForm(); }
    this.visitsKey = this.visitKey(handles.data.visits || []);
    this.renderAgentList(handles.data.agents || []);
    this.renderVisitCounts(handles.data.visits || []);
    this.lastData = { agents: handles.data.agents, generated_time: this.config.generated_time };
    this.fit(handles.data.bounds);
    this.updateStatus();
    // the customers in view, clustered by PostgreSQL: those of the first view were asked for
    // beside folium's script (start); asked for again whenever the map moves
    this.customersSeq = 0;
    var moved = null;
    this.map.on("moveend", function () {
      clearTimeout(moved);
      moved = setTimeout(function () { self.loadCustomers(); }, 120);
    });
    var first = node._customers;
    node._customers = null;
    if (!first) { this.loadCustomers(); } else {
      first.then(function (body) { self.firstCustomers(body); })
        .catch(function () { if (node._fieldMap === self) { self.loadCustomers(); } });
    }
    this.timer = setInterval(function () {
      if (!document.body.contains(node) || node._fieldMap !== self) { clearInterval(self.timer); return; }
      self.load();
    }, Math.max(1, this.config.refresh_seconds || 10) * 1000);
    var clear = document.getElementById("route-clear");
    if (clear && !clear.dataset.bound) {
      clear.dataset.bound = "1";
      clear.addEventListener("click", function () { if (node._fieldMap) { node._fieldMap.clearRoute(); } });
    }
  }

  SupervisorMap.prototype.bindForm = function () {
    var form = this.form;
    var node = this.node;
    if (!form) { return; }
    form.dataset.bound = "1";
    form.addEventListener("submit", function (e) { e.preventDefault(); if (node._fieldMap) { node._fieldMap.reload(); } });
    form.addEventListener("change", function (e) {
      var self = node._fieldMap;
      if (!self) { return; }
      var name = e.target.name;
      if (name === "customers") {
        if (e.target.checked) { self.map.addLayer(self.customers); } else { self.map.removeLayer(self.customers); }
        return;
      }
      if (name === "visits") {
        if (e.target.checked) { self.map.addLayer(self.visitsLayer); } else { self.map.removeLayer(self.visitsLayer); }
        return;
      }
      if (name === "team") { form.elements.agent.value = ""; }
      self.reload();
    });
  };

  // Other filters: folium draws the map again (no page reload).
  SupervisorMap.prototype.reload = function () {
    var params = filterParams();
    history.replaceState(history.state, "", location.pathname + "?" + params.toString());
    clearInterval(this.timer);
    this.clearRoute();
    this.map.remove();
    this.node._fieldMap = null;
    this.node.removeAttribute("data-ready");
    this.node.dataset.script = this.config.script_url + "?" + params.toString();
    if (this.node.dataset.customersUrl) {
      this.node.dataset.customersUrl = this.node.dataset.customersUrl.split("?")[0] + "?" + params.toString();
    }
    start(this.node);
  };

  // The first view's customers, fitted by the server on this map's size: drawn if the map
  // settled on the same zoom (their box is the view padded by half a screen), else asked for.
  SupervisorMap.prototype.firstCustomers = function (body) {
    if (this.node._fieldMap !== this || this.customersSeq) { return; }  // moved meanwhile
    if (!this.data.bounds && body.view) { this.fit(body.view.bounds); }  // nobody placed yet
    if (body.view && body.view.zoom === Math.round(this.map.getZoom())) {
      this.customersAsked = this.customersAsk();
      this.customersShown(body);
    } else {
      this.loadCustomers();
    }
  };

  // The URL for the customers of the view, padded by half a screen each way (a short pan needs
  // nothing new), at the map's zoom.
  SupervisorMap.prototype.customersAsk = function () {
    var url = this.node.dataset.customersUrl;
    var view = this.map.getBounds().pad(this.data.fit.view_pad);
    var clamp = function (v, lim) { return Math.max(-lim, Math.min(lim, v)).toFixed(5); };
    var params = new URLSearchParams({ zoom: String(Math.round(this.map.getZoom())),
      bbox: [clamp(view.getWest(), 180), clamp(view.getSouth(), 90),
             clamp(view.getEast(), 180), clamp(view.getNorth(), 90)].join(",") });
    return url + (url.indexOf("?") >= 0 ? "&" : "?") + params.toString();
  };

  // Answers that arrive after a newer request are dropped.
  SupervisorMap.prototype.loadCustomers = function () {
    var self = this;
    var node = this.node;
    if (!node.dataset.customersUrl) { return Promise.resolve(); }
    var ask = this.customersAsk();
    if (ask === this.customersAsked) { return Promise.resolve(); }  // the same view
    this.customersAsked = ask;
    var seq = ++this.customersSeq;
    return getJson(ask)
      .then(function (body) {
        if (seq !== self.customersSeq || node._fieldMap !== self) { return; }
        self.customersShown(body);
      })
      .catch(function (err) {
        if (seq === self.customersSeq) { self.customersAsked = null; }  // ask again next move
        self.setStatus(fmt("refresh_failed", { error: err.message }), true);
      });
  };

  SupervisorMap.prototype.customersShown = function (body) {
    this.customerCount = body.total;
    this.node.dataset.customers = String(body.total);
    this.drawCustomers(body);
    this.updateStatus();
  };

  SupervisorMap.prototype.drawCustomers = function (body) {
    var layer = this.customers;
    layer.clearLayers();
    body.clusters.forEach(function (c) {
      // c = [lat, lon, count, worst rank, south, west, north, east, rows or null]
      var marker = L.marker([c[0], c[1]], { icon: clusterIcon(c[2], c[3]), keyboard: true,
        riseOnHover: true });
      marker._cell = c;
      layer.addLayer(marker);
    });
    body.customers.forEach(function (row) { layer.addLayer(customerMarker(row)); });
    this.node.dataset.customersDrawn = String(body.in_view);
    if (!this.node.dataset.tCustomers) { mark(this.node, "customers"); }
  };

  // A cluster opens into its part of the map; customers who share one building (the street
  // zoom's groups carry their rows) are listed instead.
  SupervisorMap.prototype.openCluster = function (marker) {
    var c = marker._cell;
    if (c[8]) {
      var box = el("div", "popup-list");
      box.appendChild(el("h4", null, fmt("cluster", { num: c[2] })));
      c[8].forEach(function (row) { box.appendChild(customerPopup(row)); });
      L.popup({ maxHeight: 320 }).setLatLng(marker.getLatLng()).setContent(box).openOn(this.map);
      return;
    }
    var bounds = L.latLngBounds([c[4], c[5]], [c[6], c[7]]);
    var zoom = Math.min(this.map.getBoundsZoom(bounds.pad(0.1)), this.map.getMaxZoom());
    this.map.setView(bounds.getCenter(), Math.max(zoom, this.map.getZoom() + 1));
  };

  // (not animated: the first view is there at once, and its customers are asked for once)
  SupervisorMap.prototype.fit = function (bounds) {
    if (bounds) {
      var fit = this.data.fit;  // portal/field/maps.py: fit_view fits the same way
      this.map.fitBounds(L.latLngBounds(bounds).pad(fit.pad), { maxZoom: fit.max_zoom, animate: false });
    }
  };

  SupervisorMap.prototype.setStatus = function (message, isError) {
    if (!this.status) { return; }
    this.status.textContent = message;
    this.status.classList.toggle("is-error", !!isError);
  };

  SupervisorMap.prototype.load = function () {
    var self = this;
    return getJson(this.config.data_url + "?" + filterParams().toString())
      .then(function (data) {
        self.renderAgents(data.agents || []);
        self.renderVisits(data.visits || []);
        self.lastData = data;
        self.updateStatus();
        self.node.dataset.updates = String((parseInt(self.node.dataset.updates || "0", 10)) + 1);
      })
      .catch(function (err) {
        self.setStatus(fmt("refresh_failed", { error: err.message }), true);
      });
  };

  SupervisorMap.prototype.updateStatus = function () {
    var data = this.lastData;
    if (!data) { return; }
    var agents = data.agents || [];
    var live = agents.filter(function (a) { return a.lat !== null && !a.stale; }).length;
    this.setStatus(fmt("updated", { time: data.generated_time || "", live: live, total: agents.length,
      customers: this.customerCount.toLocaleString(document.documentElement.lang || undefined) }));
  };

  SupervisorMap.prototype.agentIcon = function (a) {
    var html = '<div class="agent-dot" data-agent-id="' + Number(a.id) + '">' +
      initials(a.name).replace(/[<>&"]/g, "") + "</div>";
    var cls = "agent-marker" + (a.stale ? " stale" : "") + (String(this.selected) === String(a.id) ? " selected" : "");
    return L.divIcon({ className: cls, html: html, iconSize: [32, 32], iconAnchor: [16, 16] });
  };

  SupervisorMap.prototype.seenText = function (a) {
    if (a.lat === null) { return fmt("no_position"); }
    return fmt(a.stale ? "last_seen" : "live", { ago: a.last_seen });
  };

  SupervisorMap.prototype.agentPopup = function (a) {
    var self = this;
    var box = el("div", "popup");
    var h = el("h4", null, a.name);
    h.setAttribute("translate", "no");
    box.appendChild(h);
    box.appendChild(el("div", "muted", (a.team ? a.team + " · " : "") + this.seenText(a)));
    var extra = [];
    if (a.accuracy_m !== null) { extra.push("±" + Math.round(a.accuracy_m) + " m"); }
    if (a.battery !== null) { extra.push(fmt("battery", { pct: Math.round(a.battery) })); }
    if (extra.length) { box.appendChild(el("div", "muted", extra.join(" · "))); }
    var btn = el("button", "btn btn-sm", fmt("show_route"));
    btn.type = "button";
    btn.setAttribute("data-testid", "show-route");
    btn.addEventListener("click", function () { self.showRoute(a.id); });
    box.appendChild(btn);
    return box;
  };

  SupervisorMap.prototype.renderAgents = function (agents) {
    var self = this;
    var seen = {};
    agents.forEach(function (a) {
      self.agents[a.id] = a;
      if (a.lat === null) { return; }
      seen[a.id] = true;
      var title = a.name + " · " + self.seenText(a);
      var marker = self.agentMarkers[a.id];
      if (marker) {
        marker.setLatLng([a.lat, a.lon]);  // in place
        if (marker._stale !== a.stale) { marker.setIcon(self.agentIcon(a)); }
      } else {
        marker = L.marker([a.lat, a.lon], { icon: self.agentIcon(a), zIndexOffset: 1000,
                                            title: title, riseOnHover: true });
        marker.bindPopup(function () { return self.agentPopup(self.agents[a.id]); });
        marker.addTo(self.agentsLayer);
        self.agentMarkers[a.id] = marker;
      }
      marker._stale = a.stale;
      var icon = marker.getElement && marker.getElement();
      if (icon) { icon.title = title; }
      if (marker.getTooltip()) { marker.setTooltipContent(text(title)); }
      else { marker.bindTooltip(text(title), { direction: "top", offset: [0, -16] }); }
    });
    Object.keys(this.agentMarkers).forEach(function (id) {
      if (!seen[id]) { self.agentsLayer.removeLayer(self.agentMarkers[id]); delete self.agentMarkers[id]; }
    });
    this.renderAgentList(agents);
  };

  SupervisorMap.prototype.renderAgentList = function (agents) {
    var list = document.getElementById("agent-list");
    var count = document.getElementById("agent-count");
    if (count) { count.textContent = String(agents.length); }
    if (!list) { return; }
    var self = this;
    var items = document.createDocumentFragment();
    agents.forEach(function (a) {
      var li = el("li", (a.stale ? "stale" : "") + (String(self.selected) === String(a.id) ? " active" : ""));
      li.setAttribute("data-agent-id", a.id);
      li.setAttribute("data-testid", "agent-row");
      var button = el("button", "agent-row-button");
      button.type = "button";
      button.title = fmt("show_route_of", { name: a.name });
      var dot = el("span", "agent-dot", initials(a.name));
      dot.setAttribute("aria-hidden", "true");
      button.appendChild(dot);
      var who = el("span", "who");
      var strong = el("strong", null, a.name);
      strong.setAttribute("translate", "no");
      who.appendChild(strong);
      who.appendChild(el("span", null, self.seenText(a)));
      if (a.implausible_today) {
        var flagged = el("span", "implausible", fmt(a.implausible_today === 1 ? "implausible_one" : "implausible_many",
          { num: a.implausible_today }));
        flagged.setAttribute("data-testid", "agent-implausible");
        who.appendChild(flagged);
      }
      button.appendChild(who);
      button.addEventListener("click", function () {
        var m = self.agentMarkers[a.id];
        if (m) { self.map.panTo(m.getLatLng()); }
        self.showRoute(a.id);
      });
      li.appendChild(button);
      items.appendChild(li);
    });
    list.textContent = "";
    list.appendChild(items);
  };

  SupervisorMap.prototype.visitKey = function (rows) {
    return rows.map(function (v) { return [v.id, v.status, v.verification, v.lat, v.lon].join(":"); }).join("|");
  };

  SupervisorMap.prototype.renderVisits = function (rows) {
    this.renderVisitCounts(rows);
    var key = this.visitKey(rows);
    if (key === this.visitsKey) { return; }  // folium's pins are still right
    this.visitsKey = key;
    var layer = this.visitsLayer;
    layer.clearLayers();
    rows.forEach(function (v) {
      if (v.lat === null) { return; }
      var state = v.verification || v.status;
      var title = fmt("visit_title", { customer: v.customer, agent: v.agent || "—",
                                       state: (LABELS.states || {})[state] || state });
      var icon = L.divIcon({ className: "visit-marker",
        html: '<div class="visit-pin ' + String(state).replace(/[^a-z_]/g, "") + '"></div>',
        iconSize: [18, 18], iconAnchor: [9, 18] });
      L.marker([v.lat, v.lon], { icon: icon, zIndexOffset: 500, title: title })
        .bindTooltip(text(title), { direction: "top" }).addTo(layer);
    });
  };

  SupervisorMap.prototype.renderVisitCounts = function (rows) {
    var counts = {};
    rows.forEach(function (v) { var s = v.verification || v.status; counts[s] = (counts[s] || 0) + 1; });
    var box = document.getElementById("visit-counts");
    if (!box) { return; }
    var states = LABELS.states || {};
    var parts = Object.keys(counts).sort().map(function (k) { return counts[k] + " " + (states[k] || k).toLowerCase(); });
    box.textContent = rows.length ? fmt("visits_today", { num: rows.length, parts: parts.join(", ") }) : fmt("no_visits");
  };

  function customerPopup(c) {
    // c = [cif, name, lat, lon, bucket, dpd, priority, agent_id]
    var box = el("div", "popup");
    var h = el("h4", null, c[1]);
    h.setAttribute("translate", "no");
    box.appendChild(h);
    var cif = el("span", null, c[0]);
    cif.setAttribute("translate", "no");
    var line = el("div", "muted");
    line.appendChild(cif);
    line.appendChild(document.createTextNode(" · " + fmt("customer_line", {
      bucket: (LABELS.buckets || {})[c[4]] || c[4], priority: c[6] })));
    box.appendChild(line);
    var a = el("a", null, fmt("open_case"));
    a.href = "/cases/" + encodeURIComponent(c[0]);
    box.appendChild(a);
    return box;
  }

  SupervisorMap.prototype.clearRoute = function () {
    this.routeLayer.clearLayers();
    var panel = document.getElementById("route-panel");
    if (panel) { panel.hidden = true; }
    var prev = this.selected;
    this.selected = null;
    if (prev && this.agentMarkers[prev] && this.agents[prev]) {
      this.agentMarkers[prev].setIcon(this.agentIcon(this.agents[prev]));
    }
    this.node.dataset.route = "";
  };

  // The route: a script folium writes for it (FieldMap.drawRoute below).
  SupervisorMap.prototype.showRoute = function (agentId) {
    var self = this;
    var url = this.config.route_url.replace("{id}", encodeURIComponent(agentId));
    FieldMap.routeFor = this;
    return loadScript(url, true).catch(function (err) {
      self.setStatus(fmt("route_failed", { error: err.message }), true);
    });
  };

  SupervisorMap.prototype.routeDrawn = function (build, route) {
    this.clearRoute();
    var agentId = route.agent_id;
    this.selected = agentId;
    if (this.agentMarkers[agentId]) { this.agentMarkers[agentId].setIcon(this.agentIcon(this.agents[agentId])); }
    var group = build(this.routeLayer);
    if (group && group !== this.routeLayer) { this.routeLayer.addLayer(group); }
    if (route.bounds) { this.map.fitBounds(L.latLngBounds(route.bounds).pad(0.15), { maxZoom: 16 }); }
    var panel = document.getElementById("route-panel");
    var summary = document.getElementById("route-summary");
    if (panel && summary) {
      panel.hidden = false;
      summary.textContent = "";
      var who = el("strong", null, route.agent || "");
      who.setAttribute("translate", "no");
      summary.appendChild(who);
      summary.appendChild(el("div", null, route.summary));
      if (route.implausible) {
        var flagged = el("div", "implausible", route.implausible);
        flagged.setAttribute("data-testid", "route-implausible");
        summary.appendChild(flagged);
      }
    }
    this.node.dataset.route = String(agentId);
    this.node.dataset.routePoints = String(route.points);
  };

  SupervisorMap.prototype.agentLatLng = function (agentId) {
    var m = this.agentMarkers[agentId];
    if (!m) { return null; }
    var ll = m.getLatLng();
    return [ll.lat, ll.lng];
  };

  FieldMap.drawRoute = function (mapName, build, route) {
    var target = FieldMap.routeFor;
    if (target && target.map.getContainer().id === mapName && target.node._fieldMap === target) {
      target.routeDrawn(build, route);
    }
  };

  // ------------------------------------------------------------------ agent's map, a location

  function StaticMap(node, handles) {
    this.node = node;
    this.map = handles.map;
    var bounds = handles.data.bounds;
    if (bounds) { this.map.fitBounds(L.latLngBounds(bounds).pad(0.1), { maxZoom: 16 }); }
  }

  // ------------------------------------------------------------------ folium hands over

  FieldMap.attach = function (mapName, handles) {
    var inner = document.getElementById(mapName);
    if (!inner) { return; }
    var node = inner.closest("[data-folium-map]") || inner;
    LABELS = handles.data.labels || LABELS;
    BUCKET_COLOURS = handles.data.colours || BUCKET_COLOURS;
    // Leaflet's credit as a name, not an English link out of the bank's network
    if (handles.map.attributionControl) {
      handles.map.attributionControl.setPrefix('<span translate="no">Leaflet</span>');
    }
    L.control.scale({ imperial: false }).addTo(handles.map);  // metres and km only
    var instance = handles.data.mode === "supervisor" ? new SupervisorMap(node, handles) : new StaticMap(node, handles);
    node._fieldMap = instance;
    FieldMap.instances.push(instance);
    node.dataset.ready = "1";
    if (!node.dataset.tDrawn) { mark(node, "drawn"); }
  };

  function start(node) {
    var assets = JSON.parse(node.dataset.assets || '{"js": []}');
    var vendor = assets.js.filter(function (src) {
      return !(src.indexOf("leaflet.js") >= 0 && window.L);
    }).map(function (src) { return loadScript(src, false); });
    if (node.dataset.customersUrl && !node._customers) {
      // the first view's customers, in parallel with the scripts: the server fits the view on
      // this map's size as Leaflet will
      var inner = node.querySelector(".folium-map") || node;
      var url = node.dataset.customersUrl;
      node._customers = getJson(url + (url.indexOf("?") >= 0 ? "&" : "?") + "size=" +
        Math.round(inner.clientWidth) + "x" + Math.round(inner.clientHeight));
      node._customers.catch(function () {});  // asked again once the map is attached
    }
    var script = loadScript(node.dataset.script, true);  // after the assets: same order
    return Promise.all(vendor.concat([script])).then(function () {
      mark(node, "scripts");
    });
  }

  // ------------------------------------------------------------------ check-in from the browser

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-checkin-url]");
    if (!button) { return; }
    var out = document.getElementById(button.getAttribute("data-result") || "");
    var words = JSON.parse(button.getAttribute("data-labels") || "{}");
    function say(key, values) {
      if (!out) { return; }
      var textOut = (words[key] || key).replace(/%\((\w+)\)s/g, function (_, n) { return values ? values[n] : ""; });
      out.textContent = textOut;
    }
    if (!navigator.geolocation) { say("no_geolocation"); return; }
    button.disabled = true;
    say("reading_position");
    navigator.geolocation.getCurrentPosition(function (pos) {
      fetch(button.getAttribute("data-checkin-url"), {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({ lat: pos.coords.latitude, lon: pos.coords.longitude, accuracy_m: pos.coords.accuracy })
      }).then(function (r) { return r.json().then(function (b) { return [r.ok, b]; }); })
        .then(function (res) {
          if (res[0]) { window.location.reload(); return; }
          button.disabled = false;
          if (res[1].error && res[1].error.message) { out.textContent = res[1].error.message; } else { say("checkin_refused"); }
        })
        .catch(function () { button.disabled = false; say("unreachable"); });
    }, function (err) {
      button.disabled = false;
      say("no_fix", { error: err.message });
    }, { enableHighAccuracy: true, timeout: 20000, maximumAge: 30000 });
  });

  // ------------------------------------------------------------------ start

  FieldMap.initAll = function () {
    document.querySelectorAll("[data-folium-map]").forEach(function (node) {
      if (node._fieldMap || node._fieldMapPending) { return; }
      node._fieldMapPending = true;
      start(node).catch(function (err) {
        if (window.console) { console.error(err); }
        node.textContent = (node.dataset.failed || "") + " " + ((err && err.message) || String(err));
      });
    });
  };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", FieldMap.initAll);
  } else {
    FieldMap.initAll();
  }
  document.addEventListener("htmx:afterSettle", FieldMap.initAll);
})();
