/* Field work maps (Leaflet + markercluster from static/vendor, never a CDN).
 *
 * Supervisor map (#field-map[data-mode=supervisor]): polls the JSON endpoint in data-config
 * and moves agent markers in place (no page reload); customers are clustered circle markers
 * coloured by bucket; today's visits are pins by status; an agent's route on demand.
 * Agent map ([data-mode=agent]): the points embedded in data-points (own position, visits,
 * suggestions). Check-in buttons ([data-checkin-url]) post the browser's position.
 *
 * Works without any tile server: the map background is plain and every marker is drawn
 * by Leaflet itself. The file may be executed again when htmx swaps the page in; it then only
 * initialises maps that are new. */
(function () {
  "use strict";

  var FieldMap = window.FieldMap = window.FieldMap || { instances: [] };
  if (FieldMap.ready) { FieldMap.initAll(); return; }
  FieldMap.ready = true;

  var BUCKET_INDEX = { "current": 1, "1-30": 2, "31-60": 3, "61-90": 4, "90+": 5 };
  var DEFAULT_CENTER = [10.7769, 106.7009];  // Ho Chi Minh City

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var existing = document.querySelector('script[data-vendor="' + src + '"]');
      if (existing && existing.dataset.loaded) { resolve(); return; }
      var s = existing || document.createElement("script");
      s.addEventListener("load", function () { s.dataset.loaded = "1"; resolve(); });
      s.addEventListener("error", function () { reject(new Error("cannot load " + src)); });
      if (!existing) {
        s.src = src;
        s.async = false;
        s.setAttribute("data-vendor", src);
        document.head.appendChild(s);
      }
    });
  }

  function ensureLeaflet(el) {
    var p = window.L ? Promise.resolve() : loadScript(el.dataset.leafletJs);
    return p.then(function () {
      if (el.dataset.clusterJs && !window.L.MarkerClusterGroup) {
        return loadScript(el.dataset.clusterJs);
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
  function text(value) { return el("span", null, value); }

  function fmtKm(m) { return (m / 1000).toFixed(m < 10000 ? 2 : 1) + " km"; }

  function timeOf(iso) {
    if (!iso) { return ""; }
    var d = new Date(iso);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  // Timings of the first load on the element (data-t-scripts, data-t-data, data-t-drawn: ms
  // since navigation), for the benchmark and for anyone curious in the dev tools.
  function mark(node, name) {
    node.setAttribute("data-t-" + name, String(Math.round(performance.now())));
  }

  function filterParams(withCustomers) {
    var form = document.getElementById("map-filters");
    var params = new URLSearchParams();
    if (form) {
      params.set("team", form.elements.team.value);
      if (form.elements.agent.value) { params.set("agent", form.elements.agent.value); }
    }
    if (withCustomers) { params.set("customers", "1"); }
    return params;
  }

  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      });
  }

  // The first data request leaves while Leaflet is still loading.
  function fetchFirst(node) {
    var config = JSON.parse(node.dataset.config || "{}");
    var p = getJson(config.data_url + "?" + filterParams(true).toString());
    p.catch(function () {});  // handled by the map's first load
    return p;
  }

  // A cluster of customers shows how many, ringed in the colour of its worst bucket.
  function clusterIcon(cluster) {
    var worst = 1;
    var children = cluster.getAllChildMarkers();
    for (var i = 0; i < children.length && worst < 5; i++) {
      var row = children[i]._row;
      var b = row ? (BUCKET_INDEX[row[4]] || 1) : 1;
      if (b > worst) { worst = b; }
    }
    var n = cluster.getChildCount();
    var size = n < 10 ? "small" : n < 100 ? "medium" : "large";
    return L.divIcon({
      html: "<div><span>" + n + "</span></div>",
      className: "marker-cluster marker-cluster-" + size + " worst-" + worst,
      iconSize: L.point(40, 40)
    });
  }

  // ------------------------------------------------------------------ supervisor map

  function SupervisorMap(node) {
    this.node = node;
    this.config = JSON.parse(node.dataset.config || "{}");
    this.form = document.getElementById("map-filters");
    this.status = document.getElementById("map-status");
    this.agentMarkers = {};
    this.agents = {};
    this.selected = null;
    this.fitted = false;
    this.customerCount = 0;
    var map = this.map = L.map(node, { preferCanvas: true, zoomControl: true, minZoom: 8, maxZoom: 18 })
      .setView(DEFAULT_CENTER, 12);
    if (this.config.tile_url) {
      L.tileLayer(this.config.tile_url, {
        maxZoom: 18, attribution: this.config.tile_attribution || ""
      }).addTo(map);
    }
    this.customers = L.markerClusterGroup({
      chunkedLoading: true, chunkInterval: 400, chunkDelay: 10,
      showCoverageOnHover: false, maxClusterRadius: 45,
      iconCreateFunction: clusterIcon,
      spiderfyOnMaxZoom: true, disableClusteringAtZoom: 18,
      chunkProgress: function (processed, total) {
        if (processed === total && total > 0) {  // every customer is in its cluster
          node.dataset.customersDrawn = String(total);
          mark(node, "customers");
        }
      }
    }).addTo(map);
    this.visitsLayer = L.layerGroup().addTo(map);
    this.routeLayer = L.layerGroup().addTo(map);
    this.svgRenderer = L.svg();  // the route as an SVG path (customers stay on the canvas)
    this.agentsLayer = L.layerGroup().addTo(map);
    this.bindForm();
    this.load(true);
    var self = this;
    this.timer = setInterval(function () {
      if (!document.body.contains(node)) { clearInterval(self.timer); return; }
      self.load(false);
    }, Math.max(1, this.config.refresh_seconds || 10) * 1000);
    var clear = document.getElementById("route-clear");
    if (clear) { clear.addEventListener("click", function () { self.clearRoute(); }); }
  }

  SupervisorMap.prototype.params = function (withCustomers) {
    return filterParams(withCustomers);
  };

  SupervisorMap.prototype.bindForm = function () {
    var self = this;
    if (!this.form) { return; }
    this.form.addEventListener("submit", function (e) { e.preventDefault(); self.reload(); });
    this.form.addEventListener("change", function (e) {
      var name = e.target.name;
      if (name === "customers") {
        if (e.target.checked) { self.map.addLayer(self.customers); } else { self.map.removeLayer(self.customers); }
        return;
      }
      if (name === "visits") {
        if (e.target.checked) { self.map.addLayer(self.visitsLayer); } else { self.map.removeLayer(self.visitsLayer); }
        return;
      }
      if (name === "team") { self.form.elements.agent.value = ""; }
      self.reload();
    });
  };

  SupervisorMap.prototype.reload = function () {
    var params = this.params(false);
    history.replaceState(history.state, "", location.pathname + "?" + params.toString());
    this.fitted = false;
    this.clearRoute();
    this.load(true);
  };

  SupervisorMap.prototype.setStatus = function (text, isError) {
    if (!this.status) { return; }
    this.status.textContent = text;
    this.status.classList.toggle("is-error", !!isError);
  };

  SupervisorMap.prototype.load = function (full) {
    var self = this;
    var first = this.node._firstData;
    this.node._firstData = null;
    var request = (full && first) ? first :
      getJson(this.config.data_url + "?" + this.params(full).toString());
    return request
      .then(function (data) {
        if (first) { mark(self.node, "data"); }
        self.renderAgents(data.agents || []);
        self.renderVisits(data.visits || []);
        if (!self.fitted) { self.fit(data); }
        // customers (thousands) after the agents are on screen
        if (data.customers) { setTimeout(function () { self.renderCustomers(data.customers); }, 0); }
        self.lastData = data;
        self.updateStatus();
        if (first) { mark(self.node, "drawn"); }
        self.node.dataset.updates = String((parseInt(self.node.dataset.updates || "0", 10)) + 1);
      })
      .catch(function (err) {
        self.setStatus("Cannot refresh the map (" + err.message + "); retrying…", true);
      });
  };

  SupervisorMap.prototype.updateStatus = function () {
    var data = this.lastData;
    if (!data) { return; }
    var agents = data.agents || [];
    var live = agents.filter(function (a) { return a.lat !== null && !a.stale; }).length;
    this.setStatus("Updated " + timeOf(data.generated_at) + " · " + live + " of " +
      agents.length + " agents live · " + this.customerCount.toLocaleString() + " customers");
  };

  SupervisorMap.prototype.agentIcon = function (a) {
    var html = '<div class="agent-dot" data-agent-id="' + Number(a.id) + '">' +
      initials(a.name).replace(/[<>&"]/g, "") + "</div>";
    var cls = "agent-marker" + (a.stale ? " stale" : "") + (this.selected === a.id ? " selected" : "");
    return L.divIcon({ className: cls, html: html, iconSize: [32, 32], iconAnchor: [16, 16] });
  };

  SupervisorMap.prototype.agentPopup = function (a) {
    var self = this;
    var box = el("div", "popup");
    box.appendChild(el("h4", null, a.name));
    box.appendChild(el("div", "muted", (a.team ? a.team + " · " : "") + "last seen " + a.last_seen));
    var extra = [];
    if (a.accuracy_m !== null) { extra.push("±" + Math.round(a.accuracy_m) + " m"); }
    if (a.battery !== null) { extra.push("battery " + Math.round(a.battery) + "%"); }
    if (extra.length) { box.appendChild(el("div", "muted", extra.join(" · "))); }
    var btn = el("button", "btn btn-sm", "Show today's route");
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
      var marker = self.agentMarkers[a.id];
      if (marker) {
        marker.setLatLng([a.lat, a.lon]);
        if (marker._stale !== a.stale) { marker.setIcon(self.agentIcon(a)); }
      } else {
        marker = L.marker([a.lat, a.lon], { icon: self.agentIcon(a), zIndexOffset: 1000,
                                            title: a.name, riseOnHover: true });
        // built when opened, from the latest data
        marker.bindPopup(function () { return self.agentPopup(self.agents[a.id]); });
        marker.addTo(self.agentsLayer);
        self.agentMarkers[a.id] = marker;
      }
      marker._stale = a.stale;
      var tip = text(a.name + " · " + a.last_seen);
      if (marker.getTooltip()) { marker.setTooltipContent(tip); }
      else { marker.bindTooltip(tip, { direction: "top", offset: [0, -16] }); }
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
      var li = el("li", (a.stale ? "stale" : "") + (self.selected === a.id ? " active" : ""));
      li.setAttribute("data-agent-id", a.id);
      li.setAttribute("data-testid", "agent-row");
      li.appendChild(el("span", "agent-dot", initials(a.name)));
      var who = el("div", "who");
      who.appendChild(el("strong", null, a.name));
      who.appendChild(el("span", null, a.lat === null ? "no position yet" :
        (a.stale ? "last seen " : "live · ") + a.last_seen));
      if (a.implausible_today) {
        var flagged = el("span", "implausible", a.implausible_today + " implausible " +
          (a.implausible_today === 1 ? "point" : "points") + " today, left out");
        flagged.setAttribute("data-testid", "agent-implausible");
        who.appendChild(flagged);
      }
      li.appendChild(who);
      li.title = "Show " + a.name + "'s route today";
      li.addEventListener("click", function () {
        var m = self.agentMarkers[a.id];
        if (m) { self.map.panTo(m.getLatLng()); }
        self.showRoute(a.id);
      });
      items.appendChild(li);
    });
    list.textContent = "";
    list.appendChild(items);
  };

  SupervisorMap.prototype.renderVisits = function (rows) {
    var layer = this.visitsLayer;
    layer.clearLayers();
    var counts = {};
    rows.forEach(function (v) {
      var state = v.verification || v.status;
      counts[state] = (counts[state] || 0) + 1;
      if (v.lat === null) { return; }
      var icon = L.divIcon({ className: "visit-marker",
        html: '<div class="visit-pin ' + String(state).replace(/[^a-z_]/g, "") + '"></div>',
        iconSize: [18, 18], iconAnchor: [9, 18] });
      var box = el("div", "popup");
      box.appendChild(el("h4", null, v.customer));
      box.appendChild(el("div", "muted", v.cif + " · " + (v.address || "")));
      box.appendChild(el("div", null, "Visit by " + (v.agent || "—") + ": " +
        String(state).replace(/_/g, " ") +
        (v.distance_m !== null ? " (" + Math.round(v.distance_m) + " m away)" : "")));
      L.marker([v.lat, v.lon], { icon: icon, zIndexOffset: 500 }).bindPopup(box).addTo(layer);
    });
    var box = document.getElementById("visit-counts");
    if (box) {
      var parts = Object.keys(counts).sort().map(function (k) { return counts[k] + " " + k.replace(/_/g, " "); });
      box.textContent = rows.length ? "Today's visits: " + rows.length + " (" + parts.join(", ") + ")" : "No visits planned today.";
    }
  };

  function customerPopup(c) {
    // c = [cif, name, lat, lon, bucket, dpd, priority, agent_id]
    var box = el("div", "popup");
    box.appendChild(el("h4", null, c[1]));
    box.appendChild(el("div", "muted", c[0] + " · " + (c[4] === "current" ? "current" : c[4] + " DPD") +
      " · priority " + c[6]));
    var a = el("a", null, "Open case");
    a.href = "/cases/" + encodeURIComponent(c[0]);
    box.appendChild(a);
    return box;
  }

  SupervisorMap.prototype.renderCustomers = function (rows) {
    var colours = this.config.bucket_colours || {};
    var map = this.map;
    if (!this.customerClicks) {  // one popup for all customers (not one object per marker)
      this.customerClicks = true;
      this.customers.on("click", function (e) {
        if (e.layer && e.layer._row) {
          L.popup().setLatLng(e.layer.getLatLng()).setContent(customerPopup(e.layer._row)).openOn(map);
        }
      });
    }
    var markers = new Array(rows.length);
    for (var i = 0; i < rows.length; i++) {
      var c = rows[i];
      var m = L.circleMarker([c[2], c[3]], {
        radius: 6, weight: 1, color: "#ffffff", fillColor: colours[c[4]] || "#2b6fca",
        fillOpacity: 0.9
      });
      m._row = c;
      markers[i] = m;
    }
    this.customers.clearLayers();
    this.customers.addLayers(markers);
    this.customerCount = rows.length;
    this.node.dataset.customers = String(rows.length);
    this.updateStatus();
  };

  SupervisorMap.prototype.fit = function (data) {
    var pts = [];
    (data.agents || []).forEach(function (a) { if (a.lat !== null) { pts.push([a.lat, a.lon]); } });
    (data.visits || []).forEach(function (v) { if (v.lat !== null) { pts.push([v.lat, v.lon]); } });
    (data.customers || []).forEach(function (c) { pts.push([c[2], c[3]]); });
    if (pts.length) {
      this.map.fitBounds(L.latLngBounds(pts).pad(0.05), { maxZoom: 15 });
      this.fitted = true;
    }
  };

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

  SupervisorMap.prototype.showRoute = function (agentId) {
    var self = this;
    var url = this.config.route_url.replace("{id}", encodeURIComponent(agentId));
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (route) {
        self.clearRoute();
        self.selected = agentId;
        if (self.agentMarkers[agentId]) { self.agentMarkers[agentId].setIcon(self.agentIcon(self.agents[agentId])); }
        var line = route.line.map(function (p) { return [p[0], p[1]]; });
        if (line.length) {
          L.polyline(line, { color: "#173a66", weight: 4, opacity: 0.85, className: "route-line",
                             renderer: self.svgRenderer })
            .addTo(self.routeLayer);
          L.circleMarker(line[0], { radius: 6, color: "#fff", weight: 2, fillColor: "#2e8b57", fillOpacity: 1 })
            .bindTooltip(text("Start " + timeOf(route.first_at))).addTo(self.routeLayer);
          route.stops.forEach(function (s) {
            L.circleMarker([s.lat, s.lon], { radius: 8, color: "#173a66", weight: 2, fillColor: "#ffffff", fillOpacity: 1 })
              .bindTooltip("Stop " + timeOf(s.started_at) + "–" + timeOf(s.ended_at) + " (" + Math.round(s.minutes) + " min)")
              .addTo(self.routeLayer);
          });
          self.map.fitBounds(L.latLngBounds(line).pad(0.15), { maxZoom: 16 });
        }
        var panel = document.getElementById("route-panel");
        var summary = document.getElementById("route-summary");
        if (panel && summary) {
          panel.hidden = false;
          summary.textContent = "";
          summary.appendChild(el("strong", null, route.agent || ""));
          summary.appendChild(el("div", null, line.length ?
            fmtKm(route.distance_m) + " travelled · " + route.used_points + " points · " +
            route.stops.length + " stop" + (route.stops.length === 1 ? "" : "s") +
            " · " + timeOf(route.first_at) + "–" + timeOf(route.last_at) : "No positions today."));
          if (route.implausible_points) {
            var flagged = el("div", "implausible", route.implausible_points + " implausible " +
              (route.implausible_points === 1 ? "point" : "points") +
              " left out (outside the service area or too fast)");
            flagged.setAttribute("data-testid", "route-implausible");
            summary.appendChild(flagged);
          }
        }
        self.node.dataset.route = String(agentId);
        self.node.dataset.routePoints = String(line.length);
      })
      .catch(function (err) { self.setStatus("Cannot load the route (" + err.message + ")", true); });
  };

  SupervisorMap.prototype.agentLatLng = function (agentId) {
    var m = this.agentMarkers[agentId];
    if (!m) { return null; }
    var ll = m.getLatLng();
    return [ll.lat, ll.lng];
  };

  // ------------------------------------------------------------------ agent's own map

  function AgentMap(node) {
    this.node = node;
    var data = JSON.parse(node.dataset.points || "{}");
    var config = JSON.parse(node.dataset.config || "{}");
    var map = this.map = L.map(node, { preferCanvas: true, minZoom: 8, maxZoom: 18 }).setView(DEFAULT_CENTER, 13);
    if (config.tile_url) {
      L.tileLayer(config.tile_url, { maxZoom: 18, attribution: config.tile_attribution || "" }).addTo(map);
    }
    var colours = config.bucket_colours || {};
    var pts = [];
    (data.suggestions || []).forEach(function (s) {
      L.circleMarker([s.lat, s.lon], { radius: 6, weight: 1, color: "#fff",
        fillColor: colours[s.bucket] || "#2b6fca", fillOpacity: 0.9 })
        .bindTooltip(text(s.name + " · " + Math.round(s.distance_m) + " m")).addTo(map);
      pts.push([s.lat, s.lon]);
    });
    var route = [];
    if (data.me) { route.push([data.me.lat, data.me.lon]); }
    (data.visits || []).forEach(function (v) {
      if (v.lat === null) { return; }
      var icon = L.divIcon({ className: "visit-marker", html: '<span class="visit-order">' + Number(v.order || 0) + "</span>",
        iconSize: [24, 24], iconAnchor: [12, 12] });
      L.marker([v.lat, v.lon], { icon: icon }).bindTooltip(text(v.customer)).addTo(map);
      pts.push([v.lat, v.lon]);
    });
    (data.route || []).forEach(function (p) { route.push(p); });
    if (route.length > 1) { L.polyline(route, { color: "#173a66", weight: 3, dashArray: "6 6" }).addTo(map); }
    if (data.me) {
      L.marker([data.me.lat, data.me.lon], { icon: L.divIcon({ className: "agent-marker",
        html: '<div class="agent-dot">' + "Me" + "</div>", iconSize: [32, 32], iconAnchor: [16, 16] }),
        zIndexOffset: 1000 }).addTo(map);
      pts.push([data.me.lat, data.me.lon]);
    }
    if (pts.length) { map.fitBounds(L.latLngBounds(pts).pad(0.1), { maxZoom: 16 }); }
  }

  // ------------------------------------------------------------------ check-in from the browser

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-checkin-url]");
    if (!button) { return; }
    var out = document.getElementById(button.getAttribute("data-result") || "");
    function say(text) { if (out) { out.textContent = text; } }
    if (!navigator.geolocation) { say("This browser cannot read the position."); return; }
    button.disabled = true;
    say("Reading your position…");
    navigator.geolocation.getCurrentPosition(function (pos) {
      fetch(button.getAttribute("data-checkin-url"), {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({ lat: pos.coords.latitude, lon: pos.coords.longitude, accuracy_m: pos.coords.accuracy })
      }).then(function (r) { return r.json().then(function (b) { return [r.ok, b]; }); })
        .then(function (res) {
          if (res[0]) { window.location.reload(); return; }
          button.disabled = false;
          say((res[1].error && res[1].error.message) || "Check-in refused.");
        })
        .catch(function () { button.disabled = false; say("The portal cannot be reached."); });
    }, function (err) {
      button.disabled = false;
      say("No position: " + err.message);
    }, { enableHighAccuracy: true, timeout: 20000, maximumAge: 30000 });
  });

  // ------------------------------------------------------------------ start

  FieldMap.initAll = function () {
    document.querySelectorAll("[data-field-map], #field-map").forEach(function (node) {
      if (node._fieldMap || node._fieldMapPending) { return; }
      node._fieldMapPending = true;
      if (node.dataset.mode !== "agent") { node._firstData = fetchFirst(node); }
      ensureLeaflet(node).then(function () {
        mark(node, "scripts");
        var instance = node.dataset.mode === "agent" ? new AgentMap(node) : new SupervisorMap(node);
        node._fieldMap = instance;
        FieldMap.instances.push(instance);
        node.dataset.ready = "1";
      }).catch(function (err) {
        if (window.console) { console.error(err); }
        node.textContent = "The map cannot be shown: " + ((err && err.message) || String(err));
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
