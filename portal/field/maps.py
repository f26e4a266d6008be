"""The field maps, drawn by folium (the design card's map library): the supervisor's field map,
an agent's route of a day, the field agent's day and a customer's location.

How folium fits a strict CSP (portal/security_headers.py) and an offline bank:
- folium's generated script is *served*, not inline: each map has a JavaScript endpoint that
  answers ``script(map)`` (the script folium writes, wrapped in a function). static/js/field_map.js
  loads the assets folium lists for the map, then that script, then attaches the live behaviour
  (markers that move in place, the route on demand, popups built as DOM, never as markup).
  A boosted (htmx) navigation keeps the first page's CSP, so an inline script would need that
  page's nonce: a served script needs none.
- Assets: every element's ``default_js``/``default_css`` point into static/vendor (Leaflet);
  folium's CDN defaults (jQuery, Bootstrap, awesome-markers, Font
  Awesome) are dropped because no element drawn here uses them.
- Customers on the supervisor's map are clustered by PostgreSQL for the view
  (``visits.customer_clusters``): field_map.js fetches the cells in view into folium's
  feature group whenever the map moves, so the browser draws hundreds of markers, not thousands.
- Base layer: Vietnam's provinces (static/vendor/vn-provinces, Natural Earth admin-1), under
  ``MAP_TILE_URL``'s tiles when the bank's tile server is set, readable without it.
- Text: tooltips and legends in the page's language (Flask-Babel), times 24-hour; names from the
  bank's systems are escaped (folium puts tooltip text in as HTML).
"""

from __future__ import annotations

import json
import math
from datetime import datetime

import folium
from flask import current_app, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from folium.elements import MacroElement
from folium.template import Template
from markupsafe import escape

from portal.i18n import format_datetime, format_number
from portal.labels import label

BUCKET_COLOURS = {"current": "#2e8b57", "1-30": "#2b6fca", "31-60": "#d4a017",
                  "61-90": "#e07020", "90+": "#c0392b"}
DEFAULT_CENTER = (10.7769, 106.7009)  # Ho Chi Minh City
MIN_ZOOM = 5  # Vietnam from end to end
MAX_ZOOM = 18  # a house
BASEMAP = "vendor/vn-provinces/vn-provinces.geojson"


def _static(path: str) -> str:
    return url_for("static", filename=path)


def _text(value) -> str:
    """Text for folium's tooltips (inserted as HTML inside a JS template literal)."""
    return str(escape(value or "")).replace("`", "&#96;").replace("$", "&#36;")


def _time(value: str | datetime | None) -> str:
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return format_datetime(value, "%H:%M")


# --- folium elements, with local assets -------------------------------------------------------


class PortalMap(folium.Map):
    """folium's map with Leaflet from static/vendor (set per request: ``url_for``)."""

    def __init__(self, map_id: str, **kwargs):
        kwargs.setdefault("tiles", None)
        kwargs.setdefault("prefer_canvas", True)
        kwargs.setdefault("control_scale", False)  # field_map.js adds a metric one
        kwargs.setdefault("min_zoom", MIN_ZOOM)
        kwargs.setdefault("max_zoom", MAX_ZOOM)
        super().__init__(**kwargs)
        self._id = map_id  # the page's element is #map_<map_id>
        self.options.update(minZoom=kwargs["min_zoom"], maxZoom=kwargs["max_zoom"])
        self.default_js = [("leaflet", _static("vendor/leaflet/leaflet.js"))]
        self.default_css = [("leaflet_css", _static("vendor/leaflet/leaflet.css"))]


class OfflineBaseLayer(MacroElement):
    """Vietnam's provinces, fetched once from static/vendor, in a pane under the tiles."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function (map) {
            var pane = map.createPane("basemap");
            pane.style.zIndex = 150;
            pane.style.pointerEvents = "none";
            fetch({{ this.url|tojson }}, {credentials: "same-origin"})
                .then(function (r) { return r.json(); })
                .then(function (data) {
                    L.geoJSON(data, {pane: "basemap", interactive: false,
                        style: {{ this.style|tojson }}}).addTo(map);
                })
                .catch(function () {});
        })({{ this._parent.get_name() }});
        {% endmacro %}""")

    def __init__(self):
        super().__init__()
        self._name = "OfflineBaseLayer"
        self.url = _static(BASEMAP)
        self.style = {"color": "#8aa0b8", "weight": 1, "fillColor": "#f4f1e8",
                      "fillOpacity": 1, "opacity": 0.9}


class SvgPolyLine(folium.PolyLine):
    """A polyline drawn as an SVG path (a class to style and find) on a canvas map."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = L.polyline({{ this.locations|tojson }},
                Object.assign({{ this.options|tojavascript }}, {renderer: L.svg()})
            ).addTo({{ this._parent.get_name() }});
        {% endmacro %}""")


class Attach(MacroElement):
    """The last element of a map: hands the Leaflet objects folium made to field_map.js."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        window.FieldMap.attach({{ this._parent.get_name()|tojson }}, {
            map: {{ this._parent.get_name() }},
            {%- for key, element in this.layers.items() %}
            {{ key }}: {{ element.get_name() }},
            {%- endfor %}
            markers: {
            {%- for key, element in this.markers.items() %}
                {{ key|tojson }}: {{ element.get_name() }},
            {%- endfor %}
            },
            data: {{ this.data|tojson }}
        });
        {% endmacro %}""")

    def __init__(self, layers: dict, markers: dict, data: dict):
        super().__init__()
        self._name = "Attach"
        self.layers = layers
        self.markers = markers
        self.data = data


class MarkerRows(MacroElement):
    """Many div-icon markers in one folium element (as FastMarkerCluster does for clusters):
    rows ``{id, lat, lon, html, cls, title, size}`` built and escaped here, drawn by one loop;
    ``layer.markers`` maps an id to its marker (field_map.js moves them in place). One element
    per marker would cost ~3 ms each to render on the server."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = (function(){
                var rows = {{ this.rows|tojson }};
                var group = L.featureGroup();
                group.markers = {};
                for (var i = 0; i < rows.length; i++) {
                    var r = rows[i];
                    var marker = L.marker([r.lat, r.lon], {
                        icon: L.divIcon({html: r.html, className: r.cls,
                                         iconSize: [r.size, r.size], iconAnchor: r.anchor}),
                        title: r.title, zIndexOffset: {{ this.z }}, riseOnHover: true});
                    var tip = document.createElement("span");
                    tip.textContent = r.title;
                    tip.setAttribute("translate", "no");
                    marker.bindTooltip(tip, {direction: "top", offset: [0, -r.size / 2]});
                    group.addLayer(marker);
                    if (r.id !== null) { group.markers[r.id] = marker; }
                }
                group.addTo({{ this._parent.get_name() }});
                return group;
            })();
        {% endmacro %}""")

    def __init__(self, rows: list[dict], z: int = 0, name: str | None = None):
        super().__init__()
        self._name = name or "MarkerRows"
        self.rows = rows
        self.z = int(z)


class _Existing(MacroElement):
    """A stand-in for a map already on the page (``name``: a JS variable): a route drawn
    later goes onto it."""

    _template = Template("")

    def __init__(self, name: str):
        super().__init__()
        self._js_name = name

    def get_name(self) -> str:
        return self._js_name


# --- rendering --------------------------------------------------------------------------------


def _links(root) -> dict:
    js, css = [], []
    for child in root.header._children.values():
        url = getattr(child, "url", None)
        if not url:
            continue
        kind = type(child).__name__
        if kind == "JavascriptLink" and url not in js:
            js.append(url)
        elif kind == "CssLink" and url not in css:
            css.append(url)
    return {"js": js, "css": css}


def assets(fmap: folium.Map) -> dict:
    """The JS and CSS folium collected for ``fmap`` (in order), for the page to load."""
    root = fmap.get_root()
    root.render()
    return _links(root)


def script(fmap: folium.Map) -> str:
    """folium's script of ``fmap`` (rendered once), in a function of its own (no globals)."""
    root = fmap.get_root()
    root.render()
    links = _links(root)
    for url in links["js"] + links["css"]:
        assert url.startswith("/"), f"a map asset must come from static/vendor: {url}"
    return "(function () {\n\"use strict\";\n" + root.script.render() + "\n})();\n"


def javascript_response(body: str):
    return current_app.response_class(body, mimetype="text/javascript",
                                      headers={"Cache-Control": "no-store"})


def _base(fmap: folium.Map) -> None:
    OfflineBaseLayer().add_to(fmap)
    config = current_app.config
    if config.get("MAP_TILE_URL"):
        folium.TileLayer(config["MAP_TILE_URL"], attr=config.get("MAP_TILE_ATTRIBUTION") or " ",
                         name="tiles", max_zoom=MAX_ZOOM, control=False).add_to(fmap)


def _bounds(points: list) -> list | None:
    if not points:
        return None
    lats = [p[0] for p in points]
    lons = [p[1] for p in points]
    return [[min(lats), min(lons)], [max(lats), max(lons)]]


# --- the first view, as Leaflet will fit it ----------------------------------------------------
# The customers of the supervisor's first view are asked for beside folium's script, before
# the map exists: the server fits that view as Leaflet's fitBounds will (Web Mercator, 256-pixel
# tiles, whole zoom levels) on the size the browser gives. Should the browser settle elsewhere,
# it asks for the customers of its own view.

DEFAULT_MAP_SIZE = (1100, 700)  # px, when the browser does not say
FIT_MAX_ZOOM = 15  # a fitted view stops at a neighbourhood
FIT_PAD = 0.05  # a fitted view keeps a margin round what it fits
VIEW_PAD = 0.5  # the customers are asked for half a screen beyond the view each way


def _pixel(lat: float, lon: float, zoom: int) -> tuple[float, float]:
    lat = max(-85.0511, min(85.0511, lat))
    scale = 256 * 2 ** zoom
    sin = math.sin(math.radians(lat))
    return ((lon + 180) / 360 * scale,
            (0.5 - math.log((1 + sin) / (1 - sin)) / (4 * math.pi)) * scale)


def _latlon(x: float, y: float, zoom: int) -> tuple[float, float]:
    scale = 256 * 2 ** zoom
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / scale))))
    return lat, x / scale * 360 - 180


def fit_view(bounds: list, size: tuple[int, int], *, pad: float = FIT_PAD,
             max_zoom: int = FIT_MAX_ZOOM) -> tuple[tuple[float, float], int]:
    """Leaflet's ``fitBounds(bounds.pad(pad), {maxZoom})`` on a map ``size`` px: the centre and
    zoom it settles on."""
    (south, west), (north, east) = bounds
    dlat, dlon = (north - south) * pad, (east - west) * pad
    south, north, west, east = south - dlat, north + dlat, west - dlon, east + dlon
    x0, y0 = _pixel(north, west, 0)
    x1, y1 = _pixel(south, east, 0)
    span_x, span_y = x1 - x0, y1 - y0
    if span_x <= 0 and span_y <= 0:
        zoom = max_zoom
    else:
        scale = min(size[0] / span_x if span_x > 0 else math.inf,
                    size[1] / span_y if span_y > 0 else math.inf)
        # Leaflet rounds to a hundredth of a level, then floors to a whole one
        zoom = math.floor(round(math.log2(scale) * 100) / 100)
        zoom = min(max_zoom, MAX_ZOOM, max(MIN_ZOOM, zoom))
    ax, ay = _pixel(south, west, zoom)
    bx, by = _pixel(north, east, zoom)
    return _latlon((ax + bx) / 2, (ay + by) / 2, zoom), zoom


def view_box(center: tuple[float, float], zoom: int, size: tuple[int, int], *,
             pad: float = VIEW_PAD) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` of the view at ``center``/``zoom``, each side widened by
    ``pad`` of it, as field_map.js asks for the customers of its view."""
    cx, cy = _pixel(*center, zoom)
    north, west = _latlon(cx - size[0] / 2, cy - size[1] / 2, zoom)
    south, east = _latlon(cx + size[0] / 2, cy + size[1] / 2, zoom)
    dlat, dlon = (north - south) * pad, (east - west) * pad
    return (max(-180.0, west - dlon), max(-90.0, south - dlat),
            min(180.0, east + dlon), min(90.0, north + dlat))


def _initials(name: str | None) -> str:
    words = [w for w in (name or "?").split() if w]
    return "".join(w[0].upper() for w in words[-2:]) or "?"


def agent_seen_text(agent: dict) -> str:
    if agent["lat"] is None:
        return _("no position yet")
    if agent["stale"]:
        return _("last seen %(ago)s", ago=agent["last_seen"])
    return _("live · %(ago)s", ago=agent["last_seen"])


def visit_state(visit: dict) -> str:
    return visit.get("verification") or visit["status"]


def visit_title(visit: dict) -> str:
    return _("Visit to %(customer)s by %(agent)s: %(state)s",
             customer=visit["customer"], agent=visit.get("agent") or "—",
             state=label(visit_state(visit)))


def agent_row(agent: dict) -> dict:
    """An agent's marker for :class:`MarkerRows`: initials, greyed when stale, named."""
    return {"id": str(agent["id"]), "lat": agent["lat"], "lon": agent["lon"], "size": 32,
            "anchor": [16, 16],
            "cls": "agent-marker" + (" stale" if agent["stale"] else ""),
            "html": (f'<div class="agent-dot" data-agent-id="{int(agent["id"])}">'
                     f'{escape(_initials(agent["name"]))}</div>'),
            "title": f'{agent["name"]} · {agent_seen_text(agent)}'}


def visit_row(visit: dict) -> dict:
    state = "".join(c for c in visit_state(visit) if c.isalpha() or c == "_")
    return {"id": None, "lat": visit["lat"], "lon": visit["lon"], "size": 18, "anchor": [9, 18],
            "cls": "visit-marker", "html": f'<div class="visit-pin {state}"></div>',
            "title": visit_title(visit)}


def js_labels() -> dict:
    """The words field_map.js writes, in the page's language (placeholders: %(name)s)."""
    return {
        "updated": _("Updated %(time)s · %(live)s of %(total)s agents live · %(customers)s "
                     "customers"),
        "refresh_failed": _("Cannot refresh the map (%(error)s); retrying…"),
        "route_failed": _("Cannot load the route (%(error)s)"),
        "no_position": _("no position yet"),
        "last_seen": _("last seen %(ago)s"),
        "live": _("live · %(ago)s"),
        "implausible_one": _("%(num)s implausible point today, left out"),
        "implausible_many": _("%(num)s implausible points today, left out"),
        "show_route_of": _("Show %(name)s's route today"),
        "show_route": _("Show today's route"),
        "visit_title": _("Visit to %(customer)s by %(agent)s: %(state)s"),
        "battery": _("battery %(pct)s%%"),
        "visits_today": _("Today's visits: %(num)s (%(parts)s)"),
        "no_visits": _("No visits planned today."),
        "customer_line": _("%(bucket)s · priority %(priority)s"),
        "open_case": _("Open case"),
        "cluster": _("%(num)s customers"),
        "map_failed": _("The map cannot be shown: %(error)s"),
        "no_geolocation": _("This browser cannot read the position."),
        "reading_position": _("Reading your position…"),
        "checkin_refused": _("Check-in refused."),
        "unreachable": _("The portal cannot be reached."),
        "no_fix": _("No position: %(error)s"),
        "buckets": {b: (_("Current") if b == "current" else _("%(bucket)s DPD", bucket=b))
                    for b in BUCKET_COLOURS},
        "states": {s: label(s) for s in ("planned", "checked_in", "completed", "missed",
                                          "cancelled", "verified", "manual_pending",
                                          "manual_approved", "rejected")},
    }


# --- the supervisor's field map ----------------------------------------------------------------


def supervisor_map(*, agents: list[dict], visits: list[dict], config: dict) -> folium.Map:
    """The field map: offline base layer (+ the bank's tiles), today's visits by state, the
    agents' latest positions and a layer for the customers, which field_map.js fills with the
    clusters of the view (``visits.customer_clusters``) and again whenever the map moves;
    ``config`` (data/route/customer URLs, refresh) goes to the live part in field_map.js."""
    fmap = PortalMap("field", location=DEFAULT_CENTER, zoom_start=12)
    _base(fmap)
    layer = folium.FeatureGroup(name="customers", control=False).add_to(fmap)
    visit_layer = MarkerRows([visit_row(v) for v in visits if v["lat"] is not None], z=500,
                             name="VisitMarkers").add_to(fmap)
    route_layer = folium.FeatureGroup(name="route").add_to(fmap)
    agent_layer = MarkerRows([agent_row(a) for a in agents if a["lat"] is not None], z=1000,
                             name="AgentMarkers").add_to(fmap)
    Attach({"customers": layer, "visits": visit_layer, "route": route_layer,
            "agents": agent_layer}, {},
           {"mode": "supervisor", "agents": agents, "visits": visits,
            "bounds": first_view_bounds(agents, visits), "config": config,
            "fit": {"max_zoom": FIT_MAX_ZOOM, "pad": FIT_PAD, "view_pad": VIEW_PAD},
            "colours": BUCKET_COLOURS, "labels": js_labels()}).add_to(fmap)
    return fmap


def first_view_bounds(agents: list[dict], visits: list[dict]) -> list | None:
    """What the supervisor's map opens on: its agents and today's visits."""
    points = [(float(p["lat"]), float(p["lon"])) for p in [*agents, *visits]
              if p["lat"] is not None]
    return _bounds(points)


def route_script(route: dict, map_name: str = "map_field") -> str:
    """An agent's route of a day, drawn by folium onto the field map already on the page:
    the line (an SVG path), where it started and the stops, times 24-hour; with the summary
    for the side panel."""
    fig = folium.Figure()
    target = _Existing("routeMap")
    fig.add_child(target)
    group = folium.FeatureGroup(name="route")
    target.add_child(group)
    line = [[p[0], p[1]] for p in route["line"]]
    if line:
        SvgPolyLine(line, color="#173a66", weight=4, opacity=0.85,
                    class_name="route-line").add_to(group)
        start = _("Start %(time)s", time=_time(route["first_at"]))
        folium.CircleMarker(line[0], radius=6, color="#ffffff", weight=2, fill=True,
                            fill_color="#2e8b57", fill_opacity=1,
                            tooltip=folium.Tooltip(_text(start))).add_to(group)
        for s in route["stops"]:
            tip = _("Stop %(start)s–%(end)s (%(minutes)s min)", start=_time(s["started_at"]),
                    end=_time(s["ended_at"]), minutes=round(s["minutes"]))
            folium.CircleMarker([s["lat"], s["lon"]], radius=8, color="#173a66", weight=2,
                                fill=True, fill_color="#ffffff", fill_opacity=1,
                                tooltip=folium.Tooltip(_text(tip))).add_to(group)
    stops = len(route["stops"])
    if line:
        summary = _("%(km)s km travelled · %(points)s points · %(stops)s · %(start)s–%(end)s",
                    km=format_number(route["distance_m"] / 1000, 2),
                    points=format_number(route["used_points"]),
                    stops=ngettext("%(num)d stop", "%(num)d stops", stops),
                    start=_time(route["first_at"]), end=_time(route["last_at"]))
    else:
        summary = _("No positions today.")
    implausible = route.get("implausible_points") or 0
    flagged = ngettext("%(num)d implausible point left out (outside the service area or too "
                       "fast)", "%(num)d implausible points left out (outside the service "
                       "area or too fast)", implausible) if implausible else ""
    fig.render()
    data = {"agent_id": route["agent_id"], "agent": route.get("agent") or "",
            "summary": summary, "implausible": flagged, "points": len(line),
            "bounds": _bounds(line)}
    return ("window.FieldMap.drawRoute(" + json.dumps(map_name) + ", function (routeMap) {\n"
            "\"use strict\";\n" + fig.script.render() + f"\nreturn {group.get_name()};\n}}, "
            + json.dumps(data, ensure_ascii=False) + ");\n")


# --- the field agent's day ---------------------------------------------------------------------


def agent_day_map(points: dict) -> folium.Map:
    """The field agent's map: their position, today's visits numbered in route order, the
    dashed route between them and the customers suggested nearby (by bucket)."""
    fmap = PortalMap("day", location=DEFAULT_CENTER, zoom_start=13)
    _base(fmap)
    pts = []
    for s in points.get("suggestions", []):
        tip = f'{s["name"]} · {format_number(round(s["distance_m"]))} m'
        folium.CircleMarker([s["lat"], s["lon"]], radius=6, weight=1, color="#ffffff",
                            fill=True, fill_color=BUCKET_COLOURS.get(s["bucket"], "#2b6fca"),
                            fill_opacity=0.9, tooltip=folium.Tooltip(_text(tip))).add_to(fmap)
        pts.append((s["lat"], s["lon"]))
    route = [[points["me"]["lat"], points["me"]["lon"]]] if points.get("me") else []
    for v in points.get("visits", []):
        title = _("Visit %(num)s: %(customer)s", num=v["order"] or "·", customer=v["customer"])
        folium.Marker(
            [v["lat"], v["lon"]], title=title,
            icon=folium.DivIcon(html=f'<span class="visit-order">{int(v["order"] or 0)}</span>',
                                class_name="visit-marker", icon_size=(24, 24),
                                icon_anchor=(12, 12)),
            tooltip=folium.Tooltip(_text(title))).add_to(fmap)
        pts.append((v["lat"], v["lon"]))
    route += points.get("route", [])
    if len(route) > 1:
        folium.PolyLine(route, color="#173a66", weight=3, dash_array="6 6").add_to(fmap)
    if points.get("me"):
        me = points["me"]
        me_word = escape(_("Me"))
        folium.Marker([me["lat"], me["lon"]], title=_("My position"), z_index_offset=1000,
                      icon=folium.DivIcon(html=f'<div class="agent-dot">{me_word}</div>',
                                          class_name="agent-marker", icon_size=(32, 32),
                                          icon_anchor=(16, 16))).add_to(fmap)
        pts.append((me["lat"], me["lon"]))
    Attach({}, {}, {"mode": "agent", "bounds": _bounds(pts), "labels": js_labels()}).add_to(fmap)
    return fmap


# --- a customer's location ---------------------------------------------------------------------


def customer_location_map(*, name: str, address: str, lat: float, lon: float,
                          bucket: str | None = None) -> folium.Map:
    """One customer at their visit address (the case view, a visit)."""
    fmap = PortalMap("customer", location=(lat, lon), zoom_start=15)
    _base(fmap)
    title = f"{name} · {address}" if address else name
    folium.CircleMarker([lat, lon], radius=9, weight=2, color="#ffffff", fill=True,
                        fill_color=BUCKET_COLOURS.get(bucket or "", "#173a66"), fill_opacity=1,
                        tooltip=folium.Tooltip(_text(title))).add_to(fmap)
    Attach({}, {}, {"mode": "location", "bounds": None, "labels": js_labels()}).add_to(fmap)
    return fmap
