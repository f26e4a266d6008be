"""Whether a GPS position can be true. Two rules, each the reason stored in
``agent_locations.implausible_reason`` (portal.models.enums.IMPLAUSIBLE_REASONS):

- ``outside_service_area``: the point is outside the bank's service area (``GPS_SERVICE_AREA``;
  by default Vietnam, its islands included — :data:`VIETNAM`);
- ``too_fast``: going from the agent's previous plausible point (by ``recorded_at``) to it, or
  from it to the agent's next plausible point (a point that arrives late), takes a speed above
  ``GPS_MAX_SPEED_KMH`` (150). Both points' accuracy and :data:`SLACK_M` are allowed for, so GPS
  jitter between close points is never "too fast".

A flagged point is stored all the same (nothing a phone sends is lost; the supervisor and ops see
how many there are), and left out of everything that trusts a position: routes and distances,
the last position, visit verification and forwarding to the GPS system. A flagged point is
never a "previous plausible point": one wild fix does not make the next true ones implausible.

So the plausible points of an agent, in ``recorded_at`` order, never imply a speed above the
limit (the truth ``flask check invariants`` can state: :data:`CONSECUTIVE_TOO_FAST_SQL`). The
points of one agent are judged under a transaction-scoped advisory lock, so two posts of the same
phone cannot each judge against a neighbour the other is inserting.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from flask import current_app, has_app_context
from sqlalchemy import text
from sqlalchemy.orm import Session

from portal.field import geo

OUTSIDE = "outside_service_area"
TOO_FAST = "too_fast"
DEFAULT_MAX_SPEED_KMH = 150.0
SLACK_M = 50.0  # metres always allowed between two fixes, beyond their accuracies
LOCK_CLASS = 7_300_015  # pg_advisory_xact_lock(class, agent id): one judge per agent at a time

Ring = tuple[tuple[float, float], ...]  # (lat, lon) corners


@dataclass(frozen=True)
class ServiceArea:
    """A union of polygons (rings of (lat, lon) corners)."""

    name: str
    rings: tuple[Ring, ...]

    def __post_init__(self):
        boxes = tuple((min(a for a, _ in r), max(a for a, _ in r), min(o for _, o in r),
                       max(o for _, o in r)) for r in self.rings)
        object.__setattr__(self, "_boxes", boxes)

    def contains(self, lat: float, lon: float) -> bool:
        return any(b[0] <= lat <= b[1] and b[2] <= lon <= b[3] and geo.in_ring(lat, lon, r)
                   for b, r in zip(self._boxes, self.rings, strict=True))


def _box(south: float, west: float, north: float, east: float) -> Ring:
    return ((south, west), (north, west), (north, east), (south, east))


# Vietnam's mainland with a margin of about 10 km beyond its borders and well out to sea (Phu
# Quoc, Tho Chu, Con Dao, Phu Quy, Ly Son, Con Co, Bach Long Vi and the coastal islands inside),
# then the Hoang Sa (Paracel) and Truong Sa (Spratly, with the DK1 platforms) archipelagos.
# Coarse on purpose: it tells a position in Vietnam from one in California, Russia or Jakarta,
# not one bank of a border river from the other. A bank that serves a smaller area sets
# GPS_SERVICE_AREA.
_MAINLAND: Ring = (
    # the northern border, west to east
    (22.45, 102.05), (22.95, 102.45), (22.80, 103.20), (22.95, 103.60), (22.65, 103.95),
    (22.95, 104.35), (23.20, 104.75), (23.50, 105.30), (23.30, 105.65), (23.05, 106.15),
    (22.98, 106.80), (22.50, 106.95), (22.05, 106.90), (21.80, 107.40), (21.65, 107.85),
    (21.60, 108.15),
    # the coast, offshore, north to south
    (21.20, 108.25), (20.10, 108.00), (19.00, 106.60), (17.90, 107.10), (17.15, 107.60),
    (16.40, 108.50), (15.35, 109.35), (13.50, 109.60), (12.60, 109.70), (11.30, 109.40),
    (10.40, 109.20), (9.30, 107.70), (8.30, 106.90), (8.20, 104.50), (9.00, 103.20),
    (10.10, 103.55), (10.50, 103.80), (10.45, 104.45),
    # the borders with Cambodia and Laos, south to north
    (10.70, 104.80), (11.05, 105.25), (11.05, 105.85), (11.30, 105.80), (11.85, 105.95),
    (12.30, 106.85), (12.30, 107.25), (12.60, 107.45), (13.00, 107.30), (13.90, 107.30),
    (14.75, 107.40), (15.50, 107.25), (16.20, 107.00), (16.60, 106.45), (17.60, 105.60),
    (18.30, 105.00), (19.30, 103.75), (20.40, 104.35), (20.70, 103.40), (21.20, 102.80),
    (21.70, 102.55), (22.20, 102.05),
)
VIETNAM = ServiceArea("Vietnam", (
    _MAINLAND,
    _box(15.60, 110.90, 17.20, 113.00),  # Hoang Sa
    _box(6.50, 109.00, 11.70, 115.50),  # Truong Sa and the DK1 platforms
))


def _geojson_rings(data) -> list[Ring]:
    """The outer rings of a GeoJSON Polygon / MultiPolygon / Feature / FeatureCollection."""
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "FeatureCollection":
        return [r for f in data.get("features") or [] for r in _geojson_rings(f)]
    if kind == "Feature":
        return _geojson_rings(data.get("geometry"))
    if kind == "Polygon":
        polygons = [data.get("coordinates")]
    elif kind == "MultiPolygon":
        polygons = data.get("coordinates")
    else:
        raise ValueError("a GeoJSON Polygon, MultiPolygon, Feature or FeatureCollection "
                         f"is expected, not {kind!r}")
    rings = []
    for polygon in polygons or []:
        try:  # GeoJSON positions are [lon, lat]; holes (the other rings) are ignored
            ring = tuple((float(p[1]), float(p[0])) for p in polygon[0])
        except (TypeError, ValueError, IndexError):
            raise ValueError("a polygon's coordinates must be [[[lon, lat], ...]]") from None
        if len(ring) < 3:
            raise ValueError("a polygon needs at least three corners")
        rings.append(ring)
    return rings


def _boxes(raw: str) -> list[Ring]:
    rings = []
    for part in filter(None, (p.strip() for p in raw.split(";"))):
        try:
            south, west, north, east = (float(v) for v in part.split(","))
        except ValueError:
            raise ValueError(f"{part!r} is not a box 'south,west,north,east' "
                             "(degrees)") from None
        if not (-90 <= south < north <= 90 and -180 <= west < east <= 180):
            raise ValueError(f"{part!r}: a box needs south < north and west < east, "
                             "within ±90 / ±180")
        rings.append(_box(south, west, north, east))
    return rings


@lru_cache(maxsize=8)
def parse_service_area(raw: str) -> ServiceArea | None:
    """``GPS_SERVICE_AREA``: empty for :data:`VIETNAM`; ``off`` for no area; boxes
    ``south,west,north,east`` separated by ``;``; or GeoJSON (inline, or the path of a file).
    Raises ValueError saying what is wrong."""
    raw = (raw or "").strip()
    if not raw:
        return VIETNAM
    if raw.lower() in ("off", "none"):
        return None
    try:
        if raw[0] in "{[" or os.path.isfile(raw):
            source = raw if raw[0] in "{[" else Path(raw).read_text(encoding="utf-8")
            try:
                data = json.loads(source)
            except ValueError as exc:
                raise ValueError(f"not valid JSON ({exc})") from None
            rings, name = _geojson_rings(data), "GPS_SERVICE_AREA"
        else:
            rings, name = _boxes(raw), "GPS_SERVICE_AREA"
    except (ValueError, OSError) as exc:
        raise ValueError(f"GPS_SERVICE_AREA: {exc}") from None
    if not rings:
        raise ValueError("GPS_SERVICE_AREA: no area given (use 'off' for none)")
    return ServiceArea(name, tuple(rings))


def _config(name: str, default):
    return current_app.config.get(name, default) if has_app_context() else default


def service_area() -> ServiceArea | None:
    return parse_service_area(str(_config("GPS_SERVICE_AREA", "") or ""))


def max_speed_ms() -> float:
    kmh = float(_config("GPS_MAX_SPEED_KMH", DEFAULT_MAX_SPEED_KMH))
    if not kmh > 0:
        raise ValueError(f"GPS_MAX_SPEED_KMH must be above 0 (got {kmh:g})")
    return kmh / 3.6


# --- the speed rule ------------------------------------------------------------------------


def _excess_m(a, b) -> float:
    """How much farther apart ``a`` and ``b`` are than their accuracies and the slack explain."""
    return (geo.distance_m(a.lat, a.lon, b.lat, b.lon) - float(a.accuracy_m or 0)
            - float(b.accuracy_m or 0) - SLACK_M)


def too_fast(a, b, limit_ms: float) -> bool:
    """Whether going between fixes ``a`` and ``b`` (lat, lon, accuracy_m, recorded_at) takes a
    speed above ``limit_ms`` (metres per second)."""
    excess = _excess_m(a, b)
    if excess <= 0:
        return False
    return excess > limit_ms * abs((b.recorded_at - a.recorded_at).total_seconds())


@dataclass
class _Fix:
    lat: float
    lon: float
    accuracy_m: float | None
    recorded_at: object


_NEIGHBOURS = text("""
    SELECT lat, lon, accuracy_m, recorded_at, implausible_reason FROM agent_locations
    WHERE agent_id = :a AND recorded_at BETWEEN :t0 AND :t1
    UNION ALL (SELECT lat, lon, accuracy_m, recorded_at, implausible_reason FROM agent_locations
               WHERE agent_id = :a AND recorded_at < :t0 AND implausible_reason IS NULL
               ORDER BY recorded_at DESC LIMIT 1)
    UNION ALL (SELECT lat, lon, accuracy_m, recorded_at, implausible_reason FROM agent_locations
               WHERE agent_id = :a AND recorded_at > :t1 AND implausible_reason IS NULL
               ORDER BY recorded_at LIMIT 1)
""")


def judge(session: Session, agent_id: int, points: Sequence, *,
          area: ServiceArea | None | bool = True, limit_ms: float | None = None,
          duplicates: bool = False) -> None:
    """Set ``implausible`` and ``implausible_note`` on each of ``points`` (objects with lat,
    lon, accuracy_m, recorded_at) that cannot be true, against each other and the agent's
    stored points. A point that repeats a stored ``recorded_at`` (or an earlier one of the
    batch) is a duplicate the insert ignores: it is not judged, unless ``duplicates`` (a
    check-in, which is decided on its own position whether stored or not). Takes the agent's
    advisory lock until the end of the transaction; no commit."""
    if not points:
        return
    area = service_area() if area is True else area or None
    limit_ms = max_speed_ms() if limit_ms is None else limit_ms
    session.execute(text("SELECT pg_advisory_xact_lock(:k, :a)"),
                    {"k": LOCK_CLASS, "a": agent_id})
    first: dict = {}  # the batch's first point of each time is the one stored
    for p in points:
        p.implausible = p.implausible_note = None
        first.setdefault(p.recorded_at, p)
    judged = [p for p in points if duplicates or first[p.recorded_at] is p]
    times = [p.recorded_at for p in judged]
    rows = session.execute(_NEIGHBOURS, {"a": agent_id, "t0": min(times),
                                         "t1": max(times)}).all()
    stored_times = {r.recorded_at for r in rows}
    if not duplicates:  # repeats of stored points: not stored again
        judged = [p for p in judged if p.recorded_at not in stored_times]
    inside = []
    for p in judged:
        if area is not None and not area.contains(p.lat, p.lon):
            p.implausible = OUTSIDE
            p.implausible_note = (f"{p.lat:.5f},{p.lon:.5f} is outside the service area "
                                  f"({area.name})")
        else:
            inside.append(p)
    inside.sort(key=lambda p: p.recorded_at)
    stored = sorted((_Fix(float(r.lat), float(r.lon), r.accuracy_m, r.recorded_at)
                     for r in rows if r.implausible_reason is None),
                    key=lambda f: f.recorded_at)
    # one walk over the stored plausible fixes and the new points, in time order
    prev, k = None, 0
    for p in inside:
        while k < len(stored) and stored[k].recorded_at < p.recorded_at:
            prev, k = stored[k], k + 1
        after = stored[k] if k < len(stored) else None
        worse = next((f for f in (prev, after)
                      if f is not None and too_fast(f, p, limit_ms)), None)
        if worse is not None:
            km = geo.distance_m(worse.lat, worse.lon, p.lat, p.lon) / 1000
            seconds = abs((p.recorded_at - worse.recorded_at).total_seconds())
            p.implausible = TOO_FAST
            p.implausible_note = (f"{km:,.1f} km in {seconds:,.0f} s from the agent's "
                                  f"{'previous' if worse is prev else 'next'} position "
                                  f"(limit {limit_ms * 3.6:,.0f} km/h)")
        else:
            prev = p


# The truth behind the speed rule, for ``flask check invariants``: consecutive plausible points
# of an agent that imply a speed above the limit (``:limit_ms``; the same accuracy and slack
# allowances as :func:`too_fast`, great-circle distance). Returns the later point's id.
CONSECUTIVE_TOO_FAST_SQL = f"""
WITH p AS (
    SELECT id, agent_id, recorded_at, accuracy_m,
           radians(lat::float8) AS phi, radians(lon::float8) AS lam,
           lag(id) OVER w AS prev_id, lag(recorded_at) OVER w AS prev_at,
           lag(accuracy_m) OVER w AS prev_accuracy_m,
           lag(radians(lat::float8)) OVER w AS prev_phi,
           lag(radians(lon::float8)) OVER w AS prev_lam
    FROM agent_locations WHERE implausible_reason IS NULL
    WINDOW w AS (PARTITION BY agent_id ORDER BY recorded_at)
), d AS (
    SELECT id, agent_id, prev_id, EXTRACT(EPOCH FROM recorded_at - prev_at) AS seconds,
           2 * {geo.EARTH_RADIUS_M} * asin(least(1, sqrt(
               sin((phi - prev_phi) / 2) ^ 2
               + cos(prev_phi) * cos(phi) * sin((lam - prev_lam) / 2) ^ 2)))
           - coalesce(accuracy_m, 0) - coalesce(prev_accuracy_m, 0) - {SLACK_M} AS excess_m
    FROM p WHERE prev_id IS NOT NULL
)
SELECT id, agent_id, prev_id, round(excess_m::numeric, 1) AS excess_m, seconds
FROM d WHERE excess_m > 0 AND excess_m > :limit_ms * seconds
ORDER BY agent_id, id
"""

# A check-in verified automatically on an implausible position (the position stored at the
# check-in's instant).
VERIFIED_ON_IMPLAUSIBLE_SQL = """
SELECT v.id AS visit_id, l.id AS location_id, l.implausible_reason
FROM visits v
JOIN agent_locations l ON l.agent_id = v.agent_id AND l.recorded_at = v.checked_in_at
WHERE v.verification = 'verified' AND l.implausible_reason IS NOT NULL
ORDER BY v.id
"""

# An implausible position the forwarder took without holding it back (sent to the GPS system,
# whose track verifies visits): every one it took has its quarantined record.
FORWARDED_IMPLAUSIBLE_SQL = """
SELECT l.id AS location_id, l.implausible_reason, l.forwarded_at
FROM agent_locations l
WHERE l.implausible_reason IS NOT NULL AND l.forwarded_at IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM quarantined_records q WHERE q.integration = 'GPS'
                  AND q.entity = 'position' AND q.record_key = l.id::text)
ORDER BY l.id
"""


def _outside_boxes_sql(area: ServiceArea) -> str:
    """Plausible points outside every ring's bounding box (certainly outside the area)."""
    inside = " OR ".join(f"(lat BETWEEN {b[0]} AND {b[1]} AND lon BETWEEN {b[2]} AND {b[3]})"
                         for b in area._boxes)
    return (f"SELECT id AS location_id, agent_id, lat, lon FROM agent_locations "
            f"WHERE implausible_reason IS NULL AND NOT ({inside}) ORDER BY id")


def violations(session: Session) -> list[dict]:
    """Every row that breaks a truth of positions, with the truth it breaks (``truth``):
    ``too_fast_consecutive`` (:data:`CONSECUTIVE_TOO_FAST_SQL`), ``plausible_outside_area``
    (a plausible point outside the service area's bounding boxes), ``verified_on_implausible``
    and ``forwarded_implausible``. For ``flask check invariants``."""
    found = []
    checks = [("too_fast_consecutive", CONSECUTIVE_TOO_FAST_SQL, {"limit_ms": max_speed_ms()}),
              ("verified_on_implausible", VERIFIED_ON_IMPLAUSIBLE_SQL, {}),
              ("forwarded_implausible", FORWARDED_IMPLAUSIBLE_SQL, {})]
    area = service_area()
    if area is not None:
        checks.append(("plausible_outside_area", _outside_boxes_sql(area), {}))
    for truth, sql, params in checks:
        found += [{"truth": truth, **row._mapping} for row in session.execute(text(sql), params)]
    return found
