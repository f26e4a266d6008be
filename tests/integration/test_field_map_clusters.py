"""The field map's customers, clustered by PostgreSQL for the view: every customer in view is
counted once, a cluster's ring is its worst bucket, one building lists its customers at street
zoom, the first view is fitted as Leaflet fits it, and bad views get a 400 with a JSON error."""
# ruff: noqa: F811 - the field fixtures are imported from tests.field_support

from __future__ import annotations

import pytest

from portal.field import maps
from tests.field_support import (  # noqa: F401 - fixtures
    HCMC,
    field_team,
    make_field_agent,
    make_field_customer,
    offset,
)

# (north m, east m, dpd): a block of six around HCMC, two more 3 km east, one 20 km north
PLACES = [(0, 0, 10), (40, 30, 95), (-30, 20, 0), (25, -35, 45), (0, 0, 70), (0, 0, 5),
          (0, 3000, 15), (100, 3050, 35), (20000, 0, 120)]


@pytest.fixture
def supervised(db, login, field_team, make_field_agent, make_field_customer, make_user):
    from portal.models import User

    agent = make_field_agent()
    customers = [make_field_customer(agent, *offset(*HCMC, north, east), dpd=dpd,
                                     priority=10 * i)
                 for i, (north, east, dpd) in enumerate(PLACES)]
    supervisor = db.session.get(User, field_team.supervisor_id)
    login(supervisor)
    return {"team": field_team, "agent": agent, "customers": customers}


def _shown(body: dict) -> int:
    return sum(c[2] for c in body["clusters"]) + len(body["customers"])


def _box(north_m: float, east_m: float, half_m: float) -> str:
    south, west = offset(*HCMC, north_m - half_m, east_m - half_m)
    north, east = offset(*HCMC, north_m + half_m, east_m + half_m)
    return f"{west},{south},{east},{north}"


def test_every_customer_in_view_is_counted_once_at_every_zoom(client, supervised):
    team = supervised["team"].id
    for zoom in range(maps.MIN_ZOOM, maps.MAX_ZOOM + 1):
        body = client.get(f"/field/map/customers.json?team={team}&zoom={zoom}").get_json()
        assert body["total"] == len(PLACES) and body["in_view"] == len(PLACES), zoom
        assert _shown(body) == len(PLACES), zoom
    # at zoom 5 the whole city is one cell: one cluster of the nine, ringed 90+ (rank 5)
    body = client.get(f"/field/map/customers.json?team={team}&zoom=5").get_json()
    assert body["customers"] == [] and [c[2:4] for c in body["clusters"]] == [[9, 5]]
    # its box is what the nine cover
    south, west, north, east = body["clusters"][0][4:8]
    lats = [offset(*HCMC, n, e)[0] for n, e, _ in PLACES]
    assert south == pytest.approx(min(lats), abs=1e-5)
    assert north == pytest.approx(max(lats), abs=1e-5)


def test_the_box_limits_the_view_and_the_worst_bucket_rings_a_cluster(client, supervised):
    team = supervised["team"].id
    # around the block of six, at a district's zoom: the six in one cluster, worst 90+
    body = client.get(f"/field/map/customers.json?team={team}&zoom=13"
                      f"&bbox={_box(0, 0, 500)}").get_json()
    assert body["total"] == len(PLACES) and body["in_view"] == 6
    assert [c[2:4] for c in body["clusters"]] == [[6, 5]] and body["customers"] == []
    # the two 3 km east: 15 and 35 DPD, so the ring is 31-60 (rank 3)
    body = client.get(f"/field/map/customers.json?team={team}&zoom=13"
                      f"&bbox={_box(0, 3000, 500)}").get_json()
    assert [c[2:4] for c in body["clusters"]] == [[2, 3]]
    # the one 20 km north alone in its box: a customer, with the row a popup needs
    body = client.get(f"/field/map/customers.json?team={team}&zoom=13"
                      f"&bbox={_box(20000, 0, 500)}").get_json()
    far = supervised["customers"][8]
    assert body["clusters"] == []
    assert [r[0] for r in body["customers"]] == [far.cif]
    assert body["customers"][0][4] == "90+" and body["customers"][0][5] == 120


def test_at_street_zoom_one_building_lists_its_customers(client, supervised):
    team = supervised["team"].id
    body = client.get(f"/field/map/customers.json?team={team}&zoom={maps.MAX_ZOOM}"
                      f"&bbox={_box(0, 0, 200)}").get_json()
    # three customers share HCMC's door; the three others stand apart
    groups = [c for c in body["clusters"] if c[8]]
    assert len(groups) == 1 and groups[0][2] == 3
    by_priority = [r[0] for r in groups[0][8]]
    block = supervised["customers"]
    assert by_priority == [block[5].cif, block[4].cif, block[0].cif]  # priority 50, 40, 0
    assert len(body["customers"]) == 3 and _shown(body) == 6


def test_the_first_view_is_fitted_on_the_browsers_map_size(client, supervised):
    team = supervised["team"].id
    body = client.get(f"/field/map/customers.json?team={team}&size=834x680").get_json()
    # no agent placed and no visit today: the customers' extent, fitted as Leaflet does
    lats = [offset(*HCMC, n, e)[0] for n, e, _ in PLACES]
    lons = [offset(*HCMC, n, e)[1] for n, e, _ in PLACES]
    (south, west), (north, east) = body["view"]["bounds"]
    assert [south, west, north, east] == pytest.approx([min(lats), min(lons),
                                                        max(lats), max(lons)])
    assert body["view"]["zoom"] == maps.fit_view(body["view"]["bounds"], (834, 680))[1]
    assert body["in_view"] == len(PLACES) == _shown(body)
    # a phone's map is narrower: the same extent needs a wider view (a lower zoom), or the same
    phone = client.get(f"/field/map/customers.json?team={team}&size=390x500").get_json()
    assert phone["view"]["zoom"] <= body["view"]["zoom"]


def test_fit_view_agrees_with_leaflets_arithmetic():
    # 22 km north-south at the equator's neighbourhood: 680 px hold it at zoom 10, not 11
    bounds = [[10.70, 106.65], [10.90, 106.75]]
    center, zoom = maps.fit_view(bounds, (834, 680))
    span_px = abs(maps._pixel(10.70 - 0.01, 0, zoom)[1] - maps._pixel(10.90 + 0.01, 0, zoom)[1])
    assert span_px <= 680 < 2 * span_px
    assert center[0] == pytest.approx(10.80, abs=0.01) and center[1] == pytest.approx(106.70)
    # one point: the fitted zoom stops at a neighbourhood
    assert maps.fit_view([[10.7, 106.7], [10.7, 106.7]], (834, 680))[1] == maps.FIT_MAX_ZOOM
    # the view holds what was fitted; the box asked for is it padded half a screen each way
    west, south, east, north = maps.view_box(center, zoom, (834, 680), pad=0)
    assert south < 10.70 and north > 10.90 and west < 106.65 and east > 106.75
    w2, s2, e2, n2 = maps.view_box(center, zoom, (834, 680))
    assert (e2 - w2) == pytest.approx(2 * (east - west))
    assert (n2 - s2) == pytest.approx(2 * (north - south), rel=0.01)


@pytest.mark.parametrize("query, code", [
    ("zoom=4", "invalid_zoom"), ("zoom=19", "invalid_zoom"), ("zoom=twelve", "invalid_zoom"),
    ("zoom=12&bbox=106.8,10.7,106.6,10.9", "invalid_bbox"),
    ("zoom=12&bbox=106.6,10.7,106.8", "invalid_bbox"),
    ("zoom=12&bbox=a,b,c,d", "invalid_bbox"), ("zoom=12&bbox=0,-95,1,1", "invalid_bbox"),
])
def test_a_bad_view_gets_a_400_naming_it(client, supervised, query, code):
    answer = client.get(f"/field/map/customers.json?team={supervised['team'].id}&{query}")
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] == code


def test_another_teams_customers_are_refused(client, supervised, make_team):
    other = make_team(name="Somebody else's field team")
    answer = client.get(f"/field/map/customers.json?team={other.id}&zoom=12",
                        headers={"Accept": "application/json"})
    assert answer.status_code == 403
