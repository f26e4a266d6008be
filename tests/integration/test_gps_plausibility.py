"""Impossible GPS positions ("146,272 km travelled": a route through 37.42,-122.08, 60,30,
40.72,-74.0 and -6.11,106.68) are stored flagged, never trusted: a position outside the service
area (default Vietnam) or one too fast from the agent's neighbouring plausible positions is
left out of routes, distances, the last position, visit verification and forwarding; the phone,
the supervisor and ops are told how many there are."""
# ruff: noqa: F811 - the field fixtures are imported from tests.field_support

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from sqlalchemy import text

from integrations.gps import forward
from integrations.gps.client import GpsClient
from portal import clock
from tests.factories import working_hour
from tests.field_support import (  # noqa: F401 - fixtures
    GPS_KEY,
    HCMC,
    field_team,
    gps_sandbox,
    iso,
    make_device_token,
    make_field_agent,
    make_field_customer,
    offset,
)

URL = "/api/v1/field/locations"
HANOI = (21.0285, 105.8542)
# the positions of the report: Mountain View, near Saint Petersburg, New York, Jakarta
IMPOSSIBLE = [(37.42, -122.08), (60.0, 30.0), (40.72, -74.0), (-6.11, 106.68)]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def point(at, lat, lon, accuracy=8) -> dict:
    return {"lat": lat, "lon": lon, "accuracy_m": accuracy, "recorded_at": iso(at)}


def stored(db, agent_id: int) -> list:
    db.session.rollback()
    return db.session.execute(text(
        "SELECT id, lat, lon, recorded_at, implausible_reason FROM agent_locations "
        "WHERE agent_id = :a ORDER BY recorded_at"), {"a": agent_id}).all()


@pytest.fixture
def now(frozen_now):
    """10:30 bank time today (whatever TEST_CLOCK says): the day's positions fit before it."""
    return frozen_now(working_hour())


def test_impossible_positions_are_left_out_of_the_route_distance_and_last_position(
        client, db, now, make_field_agent, make_device_token, login, field_team):
    from portal.models import User

    agent = make_field_agent()
    token = make_device_token(agent)
    start = now - timedelta(minutes=40)
    # a real ride in Ho Chi Minh City: 20 positions, 100 m apart, 30 s apart (1.9 km)
    points = [point(start + timedelta(seconds=30 * i), *offset(*HCMC, north_m=100 * i))
              for i in range(20)]
    # the four positions of the report among them; Jakarta the very latest one
    for n, (lat, lon) in enumerate(IMPOSSIBLE):
        at = start + timedelta(seconds=150 * n + 95 + 600 * (n == 3))
        points.insert(5 * n + 3, point(at, lat, lon))
    body = client.post(URL, json={"points": points}, headers=bearer(token)).get_json()

    # the phone is told: stored, flagged, which ones and why
    assert body["accepted"] == 24 and body["refused"] == [] and body["flagged"] == 4
    assert [(f["index"], f["reason"]) for f in body["implausible"]] == [
        (3, "outside_service_area"), (8, "outside_service_area"),
        (13, "outside_service_area"), (18, "outside_service_area")]
    assert "outside the service area" in body["implausible"][0]["message"]

    # the supervisor's route of the day: the ride, not 146,272 km
    supervisor = login(db.session.get(User, field_team.supervisor_id))
    assert supervisor.role == "supervisor"
    route = client.get(f"/field/map/agents/{agent.id}/route?date={clock.bank_today()}"
                       ).get_json()
    assert 1890 <= route["distance_m"] <= 1910, route["distance_m"]
    assert route["used_points"] == 20 and route["implausible_points"] == 4
    assert all(8 < lat < 24 and 102 < lon < 110 for lat, lon, _ in route["line"])
    # the phone's own route agrees
    mine = client.get(f"/api/v1/field/route?date={clock.bank_today()}", headers=bearer(token))
    assert mine.get_json()["distance_m"] == route["distance_m"]

    # the last position is the last plausible one (Jakarta is later), and the map counts them
    data = client.get("/field/map/data?team=all").get_json()
    me = next(a for a in data["agents"] if a["id"] == agent.id)
    last = offset(*HCMC, north_m=1900)
    assert (round(me["lat"], 5), round(me["lon"], 5)) == (round(last[0], 5), round(last[1], 5))
    assert me["implausible_today"] == 4

    rows = stored(db, agent.id)
    assert len(rows) == 24
    assert {(float(r.lat), float(r.lon)) for r in rows if r.implausible_reason} == set(
        IMPOSSIBLE)
    # the truths `flask check invariants` can state hold
    from portal.field import plausibility

    assert plausibility.violations(db.session) == []


def test_a_jump_faster_than_the_limit_is_flagged_and_the_track_goes_on(
        client, db, now, make_field_agent, make_device_token):
    agent = make_field_agent()
    token = make_device_token(agent)
    t0 = now - timedelta(minutes=30)
    body = client.post(URL, headers=bearer(token), json={"points": [
        point(t0, *HCMC),
        point(t0 + timedelta(seconds=60), *HANOI),  # 1,140 km in a minute
        point(t0 + timedelta(seconds=120), *offset(*HCMC, north_m=200)),  # judged against t0
        # GPS jitter: 40 m in a second, within the two accuracies: not too fast
        point(t0 + timedelta(seconds=121), *offset(*HCMC, north_m=240), accuracy=15),
    ]}).get_json()
    assert [(f["index"], f["reason"]) for f in body["implausible"]] == [(1, "too_fast")]
    assert "1,1" in body["implausible"][0]["message"] and "km" in body["implausible"][0][
        "message"]
    # a position arriving late, between two stored ones: 3 km from the one 90 s before (120
    # km/h), 2.8 km from the one 30 s after (336 km/h): too fast to the next one
    late = client.post(URL, headers=bearer(token), json=point(
        t0 + timedelta(seconds=90), *offset(*HCMC, north_m=3_000))).get_json()
    assert [f["reason"] for f in late["implausible"]] == ["too_fast"]
    assert "next position" in late["implausible"][0]["message"]
    # the ride goes on, judged against the last plausible position, not the jumps
    later = client.post(URL, headers=bearer(token), json=point(
        t0 + timedelta(seconds=180), *offset(*HCMC, north_m=400))).get_json()
    assert later["implausible"] == [] and later["flagged"] == 0

    reasons = [r.implausible_reason for r in stored(db, agent.id)]
    assert reasons == [None, "too_fast", "too_fast", None, None, None]
    from portal.field import plausibility

    assert plausibility.violations(db.session) == []  # no two plausible neighbours too fast


def test_the_traccar_client_is_told_of_an_impossible_position(client, db, now,
                                                              make_field_agent,
                                                              make_device_token):
    agent = make_field_agent()
    token = make_device_token(agent)
    stamp = int((now - timedelta(minutes=5)).timestamp())
    r = client.post(f"/api/v1/field/osmand?id=phone-x&lat=37.422&lon=-122.084"
                    f"&timestamp={stamp}&accuracy=5&token={token}")
    assert r.status_code == 200
    body = r.get_json()
    assert body["accepted"] == 1 and body["flagged"] == 1
    assert [f["reason"] for f in body["implausible"]] == ["outside_service_area"]


def test_a_checkin_at_an_implausible_position_is_never_verified(
        client, db, now, gps_sandbox, make_field_agent, make_device_token, make_field_customer,
        login, field_team):
    from portal.field import visits
    from portal.models import User

    def faults_served() -> int:
        return requests.get(f"{gps_sandbox.url}/_sandbox/faults", timeout=5).json()["served"]

    def plan(agent):
        visit = visits.plan_visit(db.session, cif=make_field_customer(agent, *HCMC).cif,
                                  agent_id=agent.id, planned_for=clock.bank_today(),
                                  planned_by=agent)
        db.session.commit()
        return visit

    # the phone was 15 km away a minute ago: at the customer's door now, it cannot be
    agent = make_field_agent()
    token = make_device_token(agent)
    visit = plan(agent)
    client.post(URL, headers=bearer(token), json=point(now - timedelta(seconds=60),
                                                      *offset(*HCMC, north_m=15_000)))
    asked = faults_served()
    r = client.post(f"/api/v1/field/visits/{visit.id}/checkin", headers=bearer(token),
                    json={"lat": HCMC[0], "lon": HCMC[1], "accuracy_m": 8})
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.get_json()
    assert body["verification"] == "manual_pending" and body["verification_source"] == "local"
    assert body["reason"].startswith("implausible position")
    assert faults_served() == asked  # not verified against the GPS system's track either
    db.session.rollback()
    assert db.session.scalar(text("SELECT count(*) FROM events WHERE type = 'VISIT_VERIFIED'")
                             ) == 0
    # the supervisor reviewing it sees why
    login(db.session.get(User, field_team.supervisor_id))
    page = client.get("/field/reviews").get_data(as_text=True)
    assert "implausible position: moved too fast" in page

    # a phone that rode there: its check-in is verified as ever
    other = make_field_agent()
    other_token = make_device_token(other)
    near = plan(other)
    client.post(URL, headers=bearer(other_token), json=point(now - timedelta(minutes=10),
                                                            *offset(*HCMC, north_m=2_000)))
    body = client.post(f"/api/v1/field/visits/{near.id}/checkin", headers=bearer(other_token),
                       json={"lat": HCMC[0], "lon": HCMC[1], "accuracy_m": 8}).get_json()
    assert body["verification"] == "verified" and body["verification_source"] == "gps"


def test_ops_see_the_implausible_positions_which_are_never_forwarded(
        client, db, now, gps_sandbox, make_field_agent, make_device_token, login, make_user):
    agent = make_field_agent()
    token = make_device_token(agent)
    start = now - timedelta(minutes=20)
    points = [point(start + timedelta(seconds=20 * i), *offset(*HCMC, north_m=50 * i))
              for i in range(10)]
    points += [point(start + timedelta(seconds=20 * i + 7), lat, lon)
               for i, (lat, lon) in enumerate(IMPOSSIBLE[:3])]
    client.post(URL, json={"points": points}, headers=bearer(token))
    result = forward.forward_pending(db.session, client=GpsClient(gps_sandbox.url, GPS_KEY))
    assert result["sent"] == 10 and result["backlog"] == 0
    sent = requests.get(f"{gps_sandbox.url}/api/v1/positions",
                        headers={"X-API-Key": GPS_KEY}, timeout=5).json()["data"]
    assert len(sent) == 10 and all(8 < p["lat"] < 24 for p in sent)

    login(make_user(role="ops"))
    card = client.get("/ops/integrations").get_data(as_text=True)
    assert "Implausible positions (24 h) <b>3</b>" in card
    run_id = result["run_id"]
    page = client.get(f"/ops/integrations/runs/{run_id}").get_data(as_text=True)
    assert "3 held back from this run" in page
    assert page.count("not forwarded: implausible position (outside service area)") == 3
