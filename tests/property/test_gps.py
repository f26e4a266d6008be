"""GPS ingest (our JSON batch API and the OsmAnd / Traccar Client protocol) under arbitrary
bodies and parameters: 200 or a 4xx JSON answer, never a 500; every point received is
accounted for (stored, duplicate or refused with a reason); a refused point is never stored;
a valid point always is, with the coordinates sent."""
# ruff: noqa: F811 - the field fixtures are imported from tests.field_support

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import select, text

from portal import clock
from portal.models import Visit
from portal.models.field import FieldDevice
from portal.models.gps_rejections import RejectedLocation
from portal.permissions import tokens as api_tokens
from tests.field_support import (  # noqa: F401 - fixtures
    HCMC,
    ago,
    field_team,
    iso,
    make_device_token,
    make_field_agent,
)
from tests.property.conftest import examples
from tests.property.strategies import any_values, json_values

LOCATIONS = "/api/v1/field/locations"
OSMAND = "/api/v1/field/osmand"
DEVICE = "860000000000001"


@pytest.fixture
def phone(db, make_field_agent, make_device_token):
    agent = make_field_agent()
    db.session.add(FieldDevice(device_id=DEVICE, agent_id=agent.id, label="test phone"))
    _, gateway = api_tokens.create_token(db.session, name="gateway", scopes=["api.locations"],
                                         user=None, created_by="test")
    db.session.commit()
    return {"agent": agent, "device": make_device_token(agent), "gateway": gateway}


def stored(db, agent_id: int) -> int:
    value = db.session.execute(text("SELECT count(*) FROM agent_locations WHERE agent_id = :a"),
                               {"a": agent_id}).scalar()
    db.session.rollback()
    return value


def answered(response, statuses=(200, 400, 401, 403, 404, 413, 422)):
    assert response.status_code in statuses, (response.status_code,
                                              response.get_data()[:300])
    assert response.mimetype == "application/json"
    body = response.get_json()
    if response.status_code >= 400:
        assert body["error"]["code"] and body["error"]["message"]
    return body


def point(seconds_ago: int = 60, **extra) -> dict:
    return {"lat": HCMC[0], "lon": HCMC[1], "accuracy_m": 8, "recorded_at": iso(ago(seconds_ago)),
            **extra}


point_values = any_values


@st.composite
def hostile_points(draw):
    raw = point(draw(st.integers(0, 3 * 86400)))
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(["lat", "lon", "lng", "recorded_at", "accuracy_m", "accuracy",
                                    "speed", "heading", "battery", "device_id", "extra"]))
        if draw(st.booleans()):
            raw.pop(key, None)
        else:
            raw[key] = draw(point_values)
    return raw


batches = st.one_of(
    hostile_points(), st.lists(hostile_points(), max_size=6),
    st.builds(lambda ps, d: {"points": ps, "device_id": d}, st.lists(hostile_points(),
                                                                      max_size=6), point_values),
    json_values,
)


def accounted(body: dict, received: int) -> None:
    assert body["received"] == received
    assert body["accepted"] + body["duplicates"] + len(body["refused"]) == received
    assert all(r["code"] and r["message"] for r in body["refused"])


@examples()
@given(batch=batches)
def test_any_batch_is_answered_and_only_good_points_are_stored(client, db, phone, batch):
    before = stored(db, phone["agent"].id)
    response = client.post(LOCATIONS, data=json.dumps(batch, default=str),
                           content_type="application/json",
                           headers={"Authorization": f"Bearer {phone['device']}"})
    body = answered(response)
    added = stored(db, phone["agent"].id) - before
    if response.status_code == 200:
        received = len(batch) if isinstance(batch, list) else len(batch.get("points", [batch]))
        accounted(body, received)
        assert added == body["accepted"]
    else:
        assert added == 0


@examples()
@given(seconds=st.lists(st.integers(0, 6 * 86400), min_size=1, max_size=20, unique=True),
       lat=st.floats(-89.9, 89.9), lon=st.floats(-179.9, 179.9).filter(lambda x: abs(x) > 1e-3),
       accuracy=st.one_of(st.none(), st.floats(0, 500)))
def test_valid_points_are_all_stored_with_their_coordinates(client, db, phone, seconds, lat,
                                                            lon, accuracy):
    db.session.execute(text("DELETE FROM agent_locations"))
    db.session.commit()
    points = [{"lat": lat, "lon": lon, "accuracy_m": accuracy, "recorded_at": iso(ago(s))}
              for s in seconds]
    response = client.post(LOCATIONS, json={"points": points},
                           headers={"Authorization": f"Bearer {phone['device']}"})
    body = answered(response, (200,))
    assert body["accepted"] == len(points) and body["refused"] == []
    rows = db.session.execute(text("SELECT lat, lon FROM agent_locations")).all()
    db.session.rollback()
    assert {(round(float(a), 6), round(float(o), 6)) for a, o in rows} == {
        (round(lat, 6), round(lon, 6))}


osmand_values = st.one_of(
    st.text(max_size=20), st.sampled_from(["", "nan", "inf", "-0", "1e400", "²", "10.7,106.7",
                                           "0", "106.7", DEVICE, "\x00", "%00"]),
    st.integers(-10**20, 10**20).map(str), st.floats().map(str),
    st.just("now"), st.just("now_ms"))


def _value(value: str) -> str:
    if value == "now":
        return str(int(ago(30).timestamp()))
    if value == "now_ms":
        return str(int(ago(30).timestamp() * 1000))
    return value


@examples()
@example(params={"id": "\x00", "lat": "10.7", "lon": "106.7", "timestamp": "now"},
         method="GET", token="gateway")
@given(params=st.dictionaries(st.sampled_from(["id", "deviceid", "lat", "lon", "location",
                                               "timestamp", "accuracy", "hdop", "speed",
                                               "bearing", "batt", "altitude"]),
                              osmand_values, max_size=8),
       method=st.sampled_from(["GET", "POST"]), token=st.sampled_from(["gateway", "device"]))
def test_any_osmand_request_is_answered_and_refusals_store_nothing(client, db, phone, params,
                                                                   method, token):
    params = {k: _value(v) for k, v in params.items()} | {"token": phone[token]}
    before = stored(db, phone["agent"].id)
    if method == "GET":
        response = client.get(f"{OSMAND}?{urlencode(params)}")
    else:
        response = client.post(OSMAND, data=params)
    body = answered(response)
    added = stored(db, phone["agent"].id) - before
    if response.status_code == 200:
        accounted(body, 1)
        assert added == body["accepted"]
    else:
        assert added == 0


@examples()
@given(location=st.one_of(point_values, st.lists(point_values, max_size=3),
                          st.fixed_dictionaries({"timestamp": st.just(iso(ago(30))),
                                                 "coords": st.one_of(
                                                     st.dictionaries(st.sampled_from(
                                                         ["latitude", "longitude", "accuracy",
                                                          "speed", "heading"]), point_values),
                                                     st.none()),
                                                 "battery": point_values})),
       device=any_values)
def test_any_traccar_json_is_answered(client, db, phone, location, device):
    before = stored(db, phone["agent"].id)
    response = client.post(f"{OSMAND}?token={phone['gateway']}",
                           data=json.dumps({"device_id": device, "location": location},
                                           default=str),
                           content_type="application/json")
    answered(response)
    if response.status_code != 200:
        assert stored(db, phone["agent"].id) == before


def test_an_oversized_batch_is_refused_whole(client, db, phone):
    points = [point(i) for i in range(1001)]
    response = client.post(LOCATIONS, json={"points": points},
                           headers={"Authorization": f"Bearer {phone['device']}"})
    assert response.status_code == 413 and response.get_json()["error"]["code"] == \
        "batch_too_large"
    assert stored(db, phone["agent"].id) == 0
    huge = b'{"points": [' + b'{"lat": 1},' * 400_000 + b'{}]}'
    response = client.post(LOCATIONS, data=huge, content_type="application/json",
                           headers={"Authorization": f"Bearer {phone['device']}"})
    assert response.status_code == 413 and response.mimetype == "application/json"


@pytest.mark.parametrize("url", [LOCATIONS, OSMAND])
def test_json_nested_deeper_than_the_decoder_goes_is_malformed(client, db, phone, url):
    deep = b"[" * 50_000 + b"]" * 50_000
    response = client.post(url, data=deep, content_type="application/json",
                           headers={"Authorization": f"Bearer {phone['device']}"})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "malformed_json"


def test_timestamps_are_checked_in_both_forms(client, db, phone):
    old = iso(ago(0) - timedelta(days=30))
    response = client.post(LOCATIONS, json=point(recorded_at=old) | {"recorded_at": old},
                           headers={"Authorization": f"Bearer {phone['device']}"})
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "too_old"


numbers_as_text = st.one_of(osmand_values, st.sampled_from(["nan", "-inf", "1e400", "91", "-181",
                                                          "0x1A", "1_000"]))


@examples()
@example(query={"lat": "1e400", "lon": "5"}, path="/api/v1/field/suggestions")
@example(query={"date": "9999-12-31"}, path="/api/v1/field/route")
@given(query=st.dictionaries(st.sampled_from(["lat", "lon", "radius_km", "limit", "date"]),
                             numbers_as_text.map(_value), max_size=4),
       path=st.sampled_from(["/api/v1/field/suggestions", "/api/v1/field/route",
                             "/api/v1/field/visits"]))
def test_field_queries_are_answered_never_a_500(client, db, phone, query, path):
    answered(client.get(f"{path}?{urlencode(query)}",
                        headers={"Authorization": f"Bearer {phone['device']}"}),
             (200, 400, 422))


@examples()
@example(body={"cif": "x\x00"}, checkin=False)
@example(body={"lat": 1e300, "lon": "nan", "accuracy_m": -1}, checkin=True)
@example(body={"lat": 10.7769, "lon": 106.7009, "accuracy_m": 5}, checkin=True)
@given(body=st.one_of(st.dictionaries(st.sampled_from(["cif", "planned_for", "notes", "lat",
                                                      "lon", "accuracy_m", "recorded_at"]),
                                      any_values, max_size=5), json_values),
       checkin=st.booleans())
def test_visit_bodies_are_answered_and_a_refusal_plans_nothing(client, db, phone, make_customer,
                                                               body, checkin):
    visit = db.session.scalar(select(Visit).where(Visit.agent_id == phone["agent"].id))
    if visit is None:  # the agent's visit of today, to check in to
        visit = Visit(cif=make_customer().cif, agent_id=phone["agent"].id,
                      planned_for=clock.bank_today(), status="planned",
                      planned_by_id=phone["agent"].id)
        db.session.add(visit)
    visit.status = "planned"
    db.session.commit()
    visit_id = visit.id
    before = db.session.execute(text("SELECT count(*) FROM visits")).scalar()
    db.session.rollback()
    url = f"/api/v1/field/visits/{visit_id}/checkin" if checkin else "/api/v1/field/visits"
    response = client.post(url, data=json.dumps(body, default=str),
                           content_type="application/json",
                           headers={"Authorization": f"Bearer {phone['device']}"})
    answered(response, (200, 201, 400, 403, 404, 409, 422))
    if response.status_code >= 400:
        assert db.session.execute(text("SELECT count(*) FROM visits")).scalar() == before
        db.session.rollback()


@pytest.mark.parametrize("bad", [
    {"lat": 10**400, "lon": 106.7, "recorded_at": "now"},  # OverflowError in _fast_point
    {"lat": "10.7", "lon": 10**400, "recorded_at": "now"},  # OverflowError in _number
    {"lat": 10.7, "lon": 106.7, "recorded_at": "0001-01-01T00:00:00+05:00"},  # astimezone
])
def test_overflowing_numbers_and_times_are_refused_points(client, db, phone, bad):
    bad = {**bad, "recorded_at": iso(ago(30))} if bad["recorded_at"] == "now" else bad
    response = client.post(LOCATIONS, data=json.dumps(bad), content_type="application/json",
                           headers={"Authorization": f"Bearer {phone['device']}"})
    assert response.status_code == 422 and stored(db, phone["agent"].id) == 0


@pytest.mark.parametrize("coords", [True, [1, 2], "10.7,106.7"])
def test_traccar_coords_that_are_not_an_object_are_refused_for_good(client, db, phone, coords):
    # a point that can never be accepted answers 2xx (the client would resend it forever and
    # hold back every later point) and is kept as rejected, with its reason, for ops to read
    body = {"device_id": DEVICE, "location": {"timestamp": iso(ago(30)), "coords": coords}}
    response = client.post(f"{OSMAND}?token={phone['gateway']}", json=body)
    assert response.status_code == 200 and stored(db, phone["agent"].id) == 0
    assert response.get_json()["refused"][0]["retry"] is False
    rejected = db.session.scalars(select(RejectedLocation).where(
        RejectedLocation.agent_id == phone["agent"].id)).all()
    assert len(rejected) == 1 and rejected[0].reason


def test_a_checkin_with_an_integer_beyond_float_range_is_a_422(client, db, phone,
                                                                make_customer):
    visit = Visit(cif=make_customer().cif, agent_id=phone["agent"].id,
                  planned_for=clock.bank_today(), status="planned",
                  planned_by_id=phone["agent"].id)
    db.session.add(visit)
    db.session.commit()
    response = client.post(f"/api/v1/field/visits/{visit.id}/checkin",
                           data=json.dumps({"lat": 10**400, "lon": 106.7, "accuracy_m": 5}),
                           content_type="application/json",
                           headers={"Authorization": f"Bearer {phone['device']}"})
    assert response.status_code == 422
