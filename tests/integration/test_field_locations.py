"""GPS ingest from phones: the JSON API (one point or a batch) and the OsmAnd protocol of the
Traccar Client (query string, form, JSON), with their exact refusals, duplicates and
out-of-order points; the device mapping of OsmAnd ids; route history and suggestions."""
# ruff: noqa: F811 - the field fixtures are imported from tests.field_support

from __future__ import annotations

import re
from datetime import time, timedelta

from sqlalchemy import text

from tests.field_support import (  # noqa: F401 - fixtures
    HCMC,
    ago,
    field_team,
    iso,
    make_device_token,
    make_field_agent,
    make_field_customer,
    offset,
)

URL = "/api/v1/field/locations"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def stored(db, agent_id: int) -> list:
    return db.session.execute(text(
        "SELECT lat, lon, recorded_at, accuracy_m, speed, battery, flag, source "
        "FROM agent_locations WHERE agent_id = :a ORDER BY recorded_at"),
        {"a": agent_id}).all()


def point(seconds_ago: float, lat=HCMC[0], lon=HCMC[1], **extra) -> dict:
    return {"lat": lat, "lon": lon, "accuracy_m": 8, "recorded_at": iso(ago(seconds_ago)),
            **extra}


def test_batch_is_stored_with_exact_refusals_duplicates_and_out_of_order(
        client, db, make_field_agent, make_device_token):
    agent = make_field_agent()
    token = make_device_token(agent)
    points = [
        point(300, speed=4.5, battery=81, heading=370),   # 0 ok (heading wraps)
        point(100),                                        # 1 ok
        point(200),                                        # 2 ok, older than 1: out of order
        point(100),                                        # 3 duplicate of 1 in the batch
        point(50, lat=91.5),                               # 4 lat out of range
        point(50, lon=-181),                               # 5 lon out of range
        {**point(0), "recorded_at": iso(ago(-3600))},      # 6 an hour in the future
        point(40, accuracy_m=-3),                          # 7 negative accuracy
        point(40, accuracy_m=250_000),                     # 8 absurd accuracy
        point(30, accuracy_m=900),                         # 9 kept, flagged poor accuracy
        {"lat": "abc", "lon": 106.7, "recorded_at": iso(ago(20))},  # 10 not a number
        {"lon": 106.7, "recorded_at": iso(ago(20))},      # 11 lat missing
        {"lat": 10.7, "lon": 106.7, "recorded_at": "yesterday"},  # 12 bad timestamp
        {"lat": 10.7, "lon": 106.7, "recorded_at": "2026-11-24T08:00:00"},  # 13 no zone
        "not an object",                                   # 14
        point(20, lat=0, lon=0),                           # 15 no fix
        point(10 * 86400),                                 # 16 too old
        point(10, speed=400),                              # 17 kept, flagged speed
    ]
    response = client.post(URL, json={"points": points}, headers=bearer(token))
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["received"] == 18
    assert body["accepted"] == 5
    assert body["duplicates"] == 1
    assert body["flagged"] == 2
    refused = {r["index"]: r["code"] for r in body["refused"]}
    assert refused == {
        4: "lat_out_of_range", 5: "lon_out_of_range", 6: "future_timestamp",
        7: "accuracy_absurd", 8: "accuracy_absurd", 10: "invalid_number", 11: "missing_field",
        12: "invalid_timestamp", 13: "invalid_timestamp", 14: "malformed", 15: "null_island",
        16: "too_old",
    }
    messages = {r["index"]: r["message"] for r in body["refused"]}
    assert messages[4] == "lat 91.5 is not between -90 and 90"
    # an hour ahead when the batch was built; a busy host may take seconds to send it
    ahead = re.fullmatch(r"recorded_at is (\d+) s in the future \(tolerance 120 s\)", messages[6])
    assert ahead and 3540 <= int(ahead.group(1)) <= 3600, messages[6]
    assert messages[11] == "lat is required"
    assert "time zone" in messages[13]

    rows = stored(db, agent.id)
    assert len(rows) == 5
    assert [r.recorded_at for r in rows] == sorted(r.recorded_at for r in rows)
    first = rows[0]
    assert float(first.speed) == 4.5 and float(first.battery) == 81 and first.flag is None
    flags = sorted(r.flag for r in rows if r.flag)
    assert flags == ["implausible_speed", "poor_accuracy"]

    # the same batch again: everything valid is a duplicate now
    again = client.post(URL, json={"points": points}, headers=bearer(token)).get_json()
    assert again["accepted"] == 0 and again["duplicates"] == 6
    assert len(stored(db, agent.id)) == 5


def test_single_point_answers_its_refusal_as_422(client, db, make_field_agent,
                                                 make_device_token):
    agent = make_field_agent()
    token = make_device_token(agent)
    ok = client.post(URL, json=point(5), headers=bearer(token))
    assert ok.status_code == 200 and ok.get_json()["accepted"] == 1
    future = client.post(URL, json={**point(0), "recorded_at": iso(ago(-600))},
                         headers=bearer(token))
    assert future.status_code == 422
    assert future.get_json()["error"]["code"] == "future_timestamp"
    assert len(stored(db, agent.id)) == 1


def test_malformed_envelopes_and_limits(client, db, make_field_agent, make_device_token):
    agent = make_field_agent()
    token = make_device_token(agent)
    r = client.post(URL, data="{not json", headers={**bearer(token),
                                                    "Content-Type": "application/json"})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "malformed_json"
    r = client.post(URL, json={"points": "nope"}, headers=bearer(token))
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "malformed"
    r = client.post(URL, json={"points": []}, headers=bearer(token))
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "empty_batch"
    r = client.post(URL, json={"points": [point(i + 1) for i in range(1001)]},
                    headers=bearer(token))
    assert r.status_code == 413 and r.get_json()["error"]["code"] == "batch_too_large"
    r = client.post(URL, json={"points": [point(i + 1) for i in range(1000)]},
                    headers=bearer(token))
    assert r.status_code == 200 and r.get_json()["accepted"] == 1000


def test_tokens_scopes_and_roles(client, db, make_user, make_field_agent, make_device_token):
    agent = make_field_agent()
    assert client.post(URL, json=point(5)).status_code == 401
    profile_only = make_device_token(agent, scopes=("api.profile",))
    r = client.post(URL, json=point(5), headers=bearer(profile_only))
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "insufficient_scope"
    # a system token must name a registered device
    from portal.permissions import tokens as api_tokens

    _, system = api_tokens.create_token(db.session, name="gateway", scopes=["api.locations"],
                                        user=None, created_by="test")
    db.session.commit()
    r = client.post(URL, json=point(5), headers=bearer(system))
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "device_required"
    r = client.post(URL, json={**point(5), "device_id": "nope"}, headers=bearer(system))
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "unknown_device"


def test_osmand_query_string_form_and_json(client, db, make_field_agent, make_device_token):
    from portal.models.field import FieldDevice

    agent = make_field_agent()
    token = make_device_token(agent)
    t = int(ago(120).timestamp())
    # query string, token in the URL (the Traccar Client cannot send headers), speed in knots
    r = client.post(f"/api/v1/field/osmand?id=phone-1&lat=10.7769&lon=106.7009&timestamp={t}"
                    f"&accuracy=12&speed=10&bearing=90&batt=77&token={token}")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["accepted"] == 1
    # form body, milliseconds
    r = client.post("/api/v1/field/osmand", data={
        "id": "phone-1", "lat": "10.7770", "lon": "106.7010",
        "timestamp": str((t + 60) * 1000), "accuracy": "9", "token": token})
    assert r.status_code == 200 and r.get_json()["accepted"] == 1
    # GET works too (older clients)
    r = client.get(f"/api/v1/field/osmand?id=phone-1&lat=10.7771&lon=106.7011"
                   f"&timestamp={t + 90}", headers=bearer(token))
    assert r.status_code == 200 and r.get_json()["accepted"] == 1
    # the JSON form of the Traccar Client, two locations, one of them in the future
    body = {"device_id": "phone-1", "location": [
        {"timestamp": iso(ago(15)), "coords": {"latitude": 10.7772, "longitude": 106.7012,
                                               "accuracy": 6, "speed": 3.2, "heading": -1},
         "battery": {"level": 0.64, "is_charging": False}},
        {"timestamp": iso(ago(-7200)), "coords": {"latitude": 10.7773,
                                                  "longitude": 106.7013}},
    ]}
    r = client.post("/api/v1/field/osmand", json=body, headers=bearer(token))
    assert r.status_code == 200
    answer = r.get_json()
    assert answer["accepted"] == 1
    assert [x["code"] for x in answer["refused"]] == ["future_timestamp"]

    rows = stored(db, agent.id)
    assert len(rows) == 4
    assert all(row.source == "osmand" for row in rows)
    assert abs(float(rows[0].speed) - 5.14) < 0.01  # 10 knots in m/s
    assert float(rows[0].battery) == 77
    assert float(rows[3].battery) == 64 and float(rows[3].speed) == 3.2

    # points that can never be accepted: 200 (the Traccar Client resends until it gets a 2xx,
    # blocking every later point), refused with the reason and kept as rejected (issue 20 §3)
    for query, code in ((f"lat=abc&lon=1&timestamp={t}", "invalid_number"),
                        (f"lat=10.7&lon=106.7&timestamp={t + 86400}", "future_timestamp"),
                        ("lon=106.7", "missing_field")):
        r = client.post(f"/api/v1/field/osmand?id=phone-1&{query}", headers=bearer(token))
        assert r.status_code == 200, (query, r.get_data(as_text=True))
        answer = r.get_json()
        assert answer["rejected"] == 1 and answer["accepted"] == 0
        assert [(x["code"], x["retry"]) for x in answer["refused"]] == [(code, False)]
    assert db.session.execute(text(
        "SELECT count(*) FROM rejected_locations WHERE agent_id = :a"), {"a": agent.id}
    ).scalar() == 4  # the three, and the JSON location two hours ahead
    r = client.post("/api/v1/field/osmand", json=["x"], headers=bearer(token))
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "malformed_json"
    # duplicate: same timestamp again is accepted silently (the tracker can drop it)
    r = client.post(f"/api/v1/field/osmand?id=phone-1&lat=10.7769&lon=106.7009&timestamp={t}",
                    headers=bearer(token))
    assert r.status_code == 200 and r.get_json()["duplicates"] == 1
    assert len(stored(db, agent.id)) == 4

    # a device registered to another agent cannot post for this token's agent
    other = make_field_agent()
    db.session.add(FieldDevice(device_id="phone-2", agent_id=other.id))
    db.session.commit()
    r = client.post(f"/api/v1/field/osmand?id=phone-2&lat=10.7&lon=106.7&timestamp={t}",
                    headers=bearer(token))
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "device_mismatch"


def test_osmand_device_mapping_with_a_gateway_token(client, db, make_field_agent):
    from portal.models.field import FieldDevice
    from portal.permissions import tokens as api_tokens

    agent = make_field_agent()
    db.session.add(FieldDevice(device_id="860000000000001", agent_id=agent.id,
                               label="Samsung A14"))
    _, system = api_tokens.create_token(db.session, name="traccar gateway",
                                        scopes=["api.locations"], user=None, created_by="test")
    db.session.commit()
    t = int(ago(30).timestamp())
    r = client.get(f"/api/v1/field/osmand?id=860000000000001&lat=10.78&lon=106.70"
                   f"&timestamp={t}&token={system}")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert len(stored(db, agent.id)) == 1
    device = db.session.get(FieldDevice, "860000000000001")
    db.session.refresh(device)
    assert device.last_seen_at is not None


def test_route_history_is_simplified_with_distance_and_stops(client, db, make_field_agent,
                                                            make_device_token):
    from portal import clock
    from portal.field import locations

    agent = make_field_agent()
    token = make_device_token(agent)
    # yesterday noon (bank time): the points all fall in one bank day, whatever the hour now
    start = clock.bank_datetime(clock.bank_today() - timedelta(days=1), time(12, 0))
    points = []
    # 10 minutes standing still, then 2 km north in a straight line (one point every 100 m)
    for i in range(11):
        points.append({"lat": HCMC[0], "lon": HCMC[1], "accuracy_m": 5,
                       "recorded_at": iso(start + timedelta(minutes=i))})
    for i in range(1, 21):
        lat, lon = offset(*HCMC, north_m=100 * i)
        points.append({"lat": lat, "lon": lon, "accuracy_m": 5,
                       "recorded_at": iso(start + timedelta(minutes=10, seconds=15 * i))})
    # one wild point with poor accuracy is kept out of the line and the distance
    lat, lon = offset(*HCMC, north_m=1000, east_m=3000)
    points.append({"lat": lat, "lon": lon, "accuracy_m": 1500,
                   "recorded_at": iso(start + timedelta(minutes=12, seconds=1))})
    assert client.post(URL, json={"points": points},
                       headers=bearer(token)).get_json()["accepted"] == 32
    day = clock.bank_today(start)
    route = locations.route_history(db.session, agent.id, day)
    assert route["points"] == 32 and route["used_points"] == 31
    assert 1990 <= route["distance_m"] <= 2010  # the jitter-free 2 km; the wild point ignored
    assert len(route["line"]) <= 3  # a still period and a straight line simplify away
    assert len(route["stops"]) == 1 and route["stops"][0]["minutes"] >= 9.9
    api = client.get(f"/api/v1/field/route?date={day.isoformat()}", headers=bearer(token))
    assert api.status_code == 200 and api.get_json()["distance_m"] == route["distance_m"]


def test_suggestions_by_priority_then_distance(client, db, make_field_agent, make_device_token,
                                               make_field_customer):
    agent = make_field_agent()
    colleague = make_field_agent()
    token = make_device_token(agent)
    near_low = make_field_customer(agent, *offset(*HCMC, 300), priority=10)
    far_high = make_field_customer(agent, *offset(*HCMC, 2000), priority=90)
    near_high = make_field_customer(colleague, *offset(*HCMC, 500), priority=90)
    make_field_customer(agent, *offset(*HCMC, 9000), priority=99)  # beyond 3 km
    assert client.get("/api/v1/field/suggestions", headers=bearer(token)).get_json()[
        "customers"] == []  # no position yet
    client.post(URL, json=point(10), headers=bearer(token))
    body = client.get("/api/v1/field/suggestions", headers=bearer(token)).get_json()
    assert body["origin"]["source"] == "latest"
    assert [c["cif"] for c in body["customers"]] == [near_high.cif, far_high.cif, near_low.cif]
    assert body["customers"][0]["mine"] is False and body["customers"][1]["mine"] is True
    assert 290 <= body["customers"][2]["distance_m"] <= 310
    small = client.get("/api/v1/field/suggestions?radius_km=1", headers=bearer(token))
    assert [c["cif"] for c in small.get_json()["customers"]] == [near_high.cif, near_low.cif]


def test_devices_are_registered_from_the_cli(app, db, make_field_agent):
    from portal.models import AuditLog
    from portal.models.field import FieldDevice

    agent = make_field_agent(username="tuan")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["field", "register-device", "860000000000009", "tuan",
                                 "--label", "Samsung A14"])
    assert result.exit_code == 0, result.output
    assert db.session.get(FieldDevice, "860000000000009").agent_id == agent.id
    assert "860000000000009" in runner.invoke(args=["field", "devices"]).output
    bad = runner.invoke(args=["field", "register-device", "x", "nobody"])
    assert bad.exit_code != 0 and "not a field agent" in bad.output
    assert db.session.query(AuditLog).filter_by(action="field_device.register").count() == 1
