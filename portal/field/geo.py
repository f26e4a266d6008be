"""Geometry of field work, in plain Python: distances on the sphere, route simplification
(Douglas–Peucker), stops, and ordering a day's visits into a short route."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

EARTH_RADIUS_M = 6_371_008.8


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def bounding_box(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lon, max_lon) around a point: a cheap pre-filter for SQL."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    dlon = math.degrees(radius_m / (EARTH_RADIUS_M * max(0.01, math.cos(math.radians(lat)))))
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


def _xy(lat: float, lon: float, lat0: float) -> tuple[float, float]:
    """Equirectangular projection in metres around latitude ``lat0`` (good within a city)."""
    return (math.radians(lon) * EARTH_RADIUS_M * math.cos(math.radians(lat0)),
            math.radians(lat) * EARTH_RADIUS_M)


def simplify(points: Sequence[tuple[float, float]], tolerance_m: float = 15.0) -> list[int]:
    """Douglas–Peucker: the indexes of ``points`` (lat, lon) to keep, first and last included."""
    n = len(points)
    if n <= 2:
        return list(range(n))
    lat0 = points[0][0]
    xy = [_xy(lat, lon, lat0) for lat, lon in points]
    keep = [False] * n
    keep[0] = keep[-1] = True
    stack = [(0, n - 1)]
    while stack:
        first, last = stack.pop()
        (x1, y1), (x2, y2) = xy[first], xy[last]
        dx, dy = x2 - x1, y2 - y1
        length2 = dx * dx + dy * dy
        worst, worst_d = -1, tolerance_m
        for i in range(first + 1, last):
            px, py = xy[i]
            if length2 == 0:
                d = math.hypot(px - x1, py - y1)
            else:
                t = max(0.0, min(1.0, ((px - x1) * dx + (py - y1) * dy) / length2))
                d = math.hypot(px - (x1 + t * dx), py - (y1 + t * dy))
            if d > worst_d:
                worst, worst_d = i, d
        if worst >= 0:
            keep[worst] = True
            stack.append((first, worst))
            stack.append((worst, last))
    return [i for i in range(n) if keep[i]]


def path_length_m(points: Sequence[tuple[float, float]]) -> float:
    return sum(distance_m(*points[i - 1], *points[i]) for i in range(1, len(points)))


@dataclass(frozen=True)
class Stop:
    lat: float
    lon: float
    started_at: datetime
    ended_at: datetime

    @property
    def minutes(self) -> float:
        return (self.ended_at - self.started_at).total_seconds() / 60


def stops(points: Sequence[tuple[float, float, datetime]], *, radius_m: float = 50.0,
          min_minutes: float = 5.0) -> list[Stop]:
    """Places where the agent stayed within ``radius_m`` for at least ``min_minutes``.

    ``points`` are (lat, lon, recorded_at) in time order.
    """
    found: list[Stop] = []
    i, n = 0, len(points)
    while i < n:
        lat0, lon0, t0 = points[i]
        j = i + 1
        while j < n and distance_m(lat0, lon0, points[j][0], points[j][1]) <= radius_m:
            j += 1
        t_end = points[j - 1][2]
        if (t_end - t0).total_seconds() >= min_minutes * 60:
            cluster = points[i:j]
            found.append(Stop(sum(p[0] for p in cluster) / len(cluster),
                              sum(p[1] for p in cluster) / len(cluster), t0, t_end))
            i = j
        else:
            i += 1
    return found


def order_route(start: tuple[float, float] | None,
                stops_: Sequence[tuple[float, float]]) -> list[int]:
    """A short visiting order of ``stops_`` from ``start``: nearest neighbour, then 2-opt.

    Returns indexes into ``stops_``. An open path (no return to the start)."""
    n = len(stops_)
    if n <= 1:
        return list(range(n))
    origin = start if start is not None else stops_[0]
    left = set(range(n))
    order: list[int] = []
    here = origin
    while left:
        nxt = min(left, key=lambda k: (distance_m(*here, *stops_[k]), k))
        order.append(nxt)
        left.remove(nxt)
        here = stops_[nxt]
    nodes = [origin] + [stops_[k] for k in order]

    def d(a: int, b: int) -> float:
        return distance_m(*nodes[a], *nodes[b])

    improved = True
    while improved:  # 2-opt on the open path; node 0 (the start) stays first
        improved = False
        for i in range(1, len(nodes) - 1):
            for k in range(i + 1, len(nodes)):
                before = d(i - 1, i) + (d(k, k + 1) if k + 1 < len(nodes) else 0)
                after = d(i - 1, k) + (d(i, k + 1) if k + 1 < len(nodes) else 0)
                if after + 1e-6 < before:
                    nodes[i:k + 1] = reversed(nodes[i:k + 1])
                    order[i - 1:k] = reversed(order[i - 1:k])
                    improved = True
    return order


def in_ring(lat: float, lon: float, ring: Sequence[tuple[float, float]]) -> bool:
    """Whether (lat, lon) lies inside the polygon ``ring`` of (lat, lon) corners (ray casting;
    the ring need not repeat its first corner). Plane geometry on degrees: for areas that do not
    cross the antimeridian."""
    inside = False
    n = len(ring)
    for i in range(n):
        lat1, lon1 = ring[i - 1]
        lat2, lon2 = ring[i]
        if (lat1 > lat) != (lat2 > lat):
            cross = lon1 + (lat - lat1) * (lon2 - lon1) / (lat2 - lat1)
            if lon < cross:
                inside = not inside
    return inside
