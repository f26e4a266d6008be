"""Geometry of field work: distances, Douglas–Peucker, stops, visiting order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from portal.field import geo as field_geo

HCMC = (10.7769, 106.7009)


def north(metres: float, east: float = 0.0) -> tuple[float, float]:
    from integrations.sandbox.phone_sim import _offset

    return _offset(*HCMC, metres, east)


def test_distance_and_bounding_box():
    assert field_geo.distance_m(*HCMC, *HCMC) == 0
    d = field_geo.distance_m(*HCMC, *north(1000))
    assert 998 < d < 1000  # _offset uses 111,320 m per degree, haversine the mean radius
    lo_lat, hi_lat, lo_lon, hi_lon = field_geo.bounding_box(*HCMC, 1000)
    assert lo_lat < HCMC[0] < hi_lat and lo_lon < HCMC[1] < hi_lon
    assert field_geo.distance_m(HCMC[0], HCMC[1], hi_lat, HCMC[1]) > 999


def test_douglas_peucker_keeps_corners_and_drops_straight_runs():
    line = [north(100 * i) for i in range(11)] + [north(1000, 100 * i) for i in range(1, 11)]
    keep = field_geo.simplify(line, 15)
    assert keep == [0, 10, 20]
    wiggle = [north(100 * i, 30 if i == 5 else 0) for i in range(11)]
    assert field_geo.simplify(wiggle, 15) == [0, 4, 5, 6, 10]
    assert field_geo.simplify(wiggle, 50) == [0, 10]
    assert field_geo.simplify([HCMC], 15) == [0]


def test_stops_need_time_within_the_radius():
    t0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    points = [(*HCMC, t0 + timedelta(minutes=i)) for i in range(7)]  # 6 minutes still
    points += [(*north(300 * i), t0 + timedelta(minutes=6 + i)) for i in range(1, 4)]
    points += [(*north(900), t0 + timedelta(minutes=9 + i)) for i in range(1, 3)]  # 2 min
    found = field_geo.stops(points)
    assert len(found) == 1 and found[0].minutes == 6
    assert abs(found[0].lat - HCMC[0]) < 1e-9


def test_route_order_is_short():
    # four stops on a line, given in a bad order; the start is at one end
    stops = [north(3000), north(1000), north(4000), north(2000)]
    order = field_geo.order_route(HCMC, stops)
    assert order == [1, 3, 0, 2]
    # 2-opt repairs nearest neighbour's crossing
    square = [north(0, 1000), north(1000, 1000), north(1000, 0), north(10, 500)]
    order = field_geo.order_route(HCMC, square)
    path = [HCMC] + [square[i] for i in order]
    assert field_geo.path_length_m(path) < 3100
    assert field_geo.order_route(None, []) == []
