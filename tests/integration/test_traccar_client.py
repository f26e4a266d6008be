"""The Traccar Client as it really behaves (issue 20 §3), replayed against /api/v1/field/osmand.

Fixtures, taken verbatim from:
- traccar/traccar src/test/java/org/traccar/protocol/OsmAndProtocolDecoderTest.java:
  every query of ``testDecodeQuery`` (DECODER_QUERIES) and every body of ``testDecodeJson``
  (DECODER_JSON; the first is the Flutter traccar-client's, flutter_background_geolocation's
  shape with its ``_`` echo; the second an iOS one with ``mock``; the third an Android one);
- traccar/traccar-client-android ProtocolFormatter(.kt) and its ProtocolFormatterTest: the
  query it builds (id, timestamp in seconds, lat, lon, speed, bearing, altitude, accuracy,
  batt, all as Kotlin prints floats: ``accuracy=0.0`` when the phone has none), sent by
  RequestManager as a POST with an empty body (ANDROID_QUERY).
Each is replayed at its own time (the clock frozen just after the point's timestamp, the
service area off: the fixtures are in Russia, Spain, the USA ...), then as sent today."""
# ruff: noqa: F811 - the field fixtures are imported from tests.field_support

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tests.field_support import (  # noqa: F401 - fixtures
    HCMC,
    field_team,
    make_device_token,
    make_field_agent,
)

URL = "/api/v1/field/osmand"
TODAY = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # a working Tuesday, 10:00 in Hanoi

# (query, expected recorded_at or None for "the time of receipt", stored values to check)
DECODER_QUERIES = [
    ("id=123456&timestamp=1377177267&cell=257,02,16,2224&cell=257,02,16,2223,-90"
     "&wifi=00-14-22-01-23-45,-80&wifi=00-1C-B3-09-85-15,-70",
     datetime(2013, 8, 22, 13, 14, 27, tzinfo=UTC), None),  # cells only: no position
    ("timestamp=1377177267&lat=60.0&lon=30.0",
     datetime(2013, 8, 22, 13, 14, 27, tzinfo=UTC), {"lat": 60.0, "lon": 30.0}),
    ("id=902064&lat=42.06288&lon=-88.23412&timestamp=2016-01-27T18%3A55%3A47Z&hdop=6.0"
     "&altitude=224.0&speed=0.0",
     datetime(2016, 1, 27, 18, 55, 47, tzinfo=UTC),
     {"lat": 42.06288, "lon": -88.23412, "accuracy_m": 6.0, "speed": 0.0}),
    ("id=902064&lat=42.06288&lon=-88.23412&timestamp=1442068686579&hdop=6.0&altitude=224.0"
     "&speed=0.0",
     datetime(2015, 9, 12, 14, 38, 6, 579000, tzinfo=UTC), {"lat": 42.06288}),
    ("lat=49.60688&lon=6.15788&timestamp=2014-06-04+09%3A10%3A11&altitude=384.7&speed=0.0"
     "&id=353861053849681",
     datetime(2014, 6, 4, 9, 10, 11, tzinfo=UTC), {"lat": 49.60688, "lon": 6.15788}),
    ("id=123456&timestamp=1377177267&lat=60.0&lon=30.0&speed=0.0&bearing=0.0&altitude=0"
     "&hdop=0.0",
     datetime(2013, 8, 22, 13, 14, 27, tzinfo=UTC), {"accuracy_m": None, "heading": 0.0}),
    ("id=123456&timestamp=1377177267&lat=60.0&lon=30.0",
     datetime(2013, 8, 22, 13, 14, 27, tzinfo=UTC), {"lat": 60.0}),
    ("lat=60.0&lon=30.0&speed=0.0&heading=0.0&vacc=0&hacc=0&altitude=0&deviceid=123456",
     None, {"lat": 60.0, "heading": 0.0}),
    ("id=861001000719969&lat=41.666667&lon=-0.883333&altitude=350.059479&speed=0.000000"
     "&batt=87",
     None, {"lat": 41.666667, "lon": -0.883333, "battery": 87.0}),
    ("id=123456&timestamp=1377177267&location=60.0,30.0",
     datetime(2013, 8, 22, 13, 14, 27, tzinfo=UTC), {"lat": 60.0, "lon": 30.0}),
    ("id=123456789012345&timestamp=1504763810&lat=40.7232948571&lon=-74.0061408571"
     "&bearing=7.19889788244&speed=40&ignition=true&rpm=933&fuel=24",
     datetime(2017, 9, 7, 5, 56, 50, tzinfo=UTC),
     {"lat": 40.723295, "speed": 20.58, "heading": 7.2}),  # 40 knots
]

DECODER_JSON = [
    ('{"location":{"timestamp":"2025-06-15T13:45:12.862Z","coords":{"latitude":37.4219983,'
     '"longitude":-122.084,"accuracy":5,"speed":0,"heading":-1,"altitude":5},"is_moving":false,'
     '"odometer":0,"event":"motionchange","battery":{"level":1,"is_charging":false},'
     '"activity":{"type":"still"},"extras":{},"_":"&id=48241179&lat=37.4219983&lon=-122.084'
     '&timestamp=2025-06-15T13:45:12.862Z&"},"device_id":"48241179"}',
     datetime(2025, 6, 15, 13, 45, 12, 862000, tzinfo=UTC),
     {"lat": 37.421998, "accuracy_m": 5.0, "speed": 0.0, "heading": None, "battery": 100.0,
      "flag": None}),
    ('{"location":{"extras":{},"mock":true,"coords":{"speed_accuracy":-1,"speed":-1,'
     '"longitude":-122.406417,"ellipsoidal_altitude":0,"floor":null,"heading_accuracy":-1,'
     '"latitude":37.785834000000001,"accuracy":5,"altitude_accuracy":-1,"altitude":0,'
     '"heading":-1},"is_moving":false,"age":188,"odometer":0,'
     '"uuid":"2FB04C65-99CF-42AB-8DD3-EBCB4B108BF8","event":"motionchange",'
     '"battery":{"level":-1,"is_charging":false},"activity":{"type":"unknown","confidence":100},'
     '"timestamp":"2025-05-09T04:11:30.579Z"},"device_id":"658765"}',
     datetime(2025, 5, 9, 4, 11, 30, 579000, tzinfo=UTC),
     {"lat": 37.785834, "speed": None, "heading": None, "battery": None,
      "flag": "mock_location"}),
    ('{"location":{"event":"motionchange","is_moving":false,'
     '"uuid":"0e9a2473-a9a7-4c00-997b-fb97d2154e75","timestamp":"2021-07-21T08:06:34.444Z",'
     '"odometer":0,"coords":{"latitude":-6.1148096,"longitude":106.6837015,"accuracy":3.8,'
     '"speed":18.67,"speed_accuracy":0.26,"heading":63,"heading_accuracy":0.28,'
     '"altitude":35.7,"altitude_accuracy":3.8},"activity":{"type":"still","confidence":100},'
     '"battery":{"is_charging":false,"level":0.79},"extras":{}},"device_id":"8737767034"}',
     datetime(2021, 7, 21, 8, 6, 34, 444000, tzinfo=UTC),
     {"lat": -6.11481, "accuracy_m": 3.8, "speed": 18.67, "heading": 63.0, "battery": 79.0}),
]

# ProtocolFormatterTest's query, with a real position and the time a phone would have
ANDROID_QUERY = ("id=123456789012345&timestamp={ts}&lat=10.7769&lon=106.7009&speed=0.0"
                 "&bearing=0.0&altitude=0.0&accuracy=0.0&batt=87.0")


@pytest.fixture
def phone(app, db, make_field_agent, make_device_token):
    """A field agent's device token as its Authorization header, the service area off."""
    saved = app.config.get("GPS_SERVICE_AREA")
    app.config["GPS_SERVICE_AREA"] = "off"
    agent = make_field_agent()
    yield agent, {"Authorization": f"Bearer {make_device_token(agent)}"}
    app.config["GPS_SERVICE_AREA"] = saved


def stored(db, agent_id: int) -> list:
    return db.session.execute(text(
        "SELECT lat, lon, accuracy_m, speed, heading, battery, recorded_at, flag, "
        "time_source, source FROM agent_locations WHERE agent_id = :a ORDER BY recorded_at"),
        {"a": agent_id}).mappings().all()


def rejected(db, agent_id: int) -> list:
    return db.session.execute(text(
        "SELECT device_id, source, reason, message, raw, recorded_at, times "
        "FROM rejected_locations WHERE agent_id = :a ORDER BY id"),
        {"a": agent_id}).mappings().all()


def check_values(row, expected: dict) -> None:
    for name, value in expected.items():
        got = row[name]
        if value is None or isinstance(value, str):
            assert got == value, (name, got)
        else:
            assert got is not None and abs(float(got) - value) < 0.01, (name, got, value)


@pytest.mark.parametrize("query,recorded_at,values", DECODER_QUERIES,
                         ids=[f"query{i}" for i in range(len(DECODER_QUERIES))])
def test_every_decoder_query_is_handled_at_its_own_time(client, db, frozen_now, phone, query,
                                                        recorded_at, values):
    agent, auth = phone
    now = frozen_now((recorded_at or TODAY) + timedelta(seconds=30))
    r = client.post(f"{URL}?{query}", headers=auth)  # as the Android client: POST, no body
    assert r.status_code == 200, r.get_data(as_text=True)
    answer = r.get_json()
    if values is None:  # cell and wifi only: Traccar's "last known position", none here
        assert answer["accepted"] == 0 and answer["rejected"] == 1
        assert [(x["code"], x["retry"]) for x in answer["refused"]] == [
            ("missing_field", False)]
        [row] = rejected(db, agent.id)
        assert row["reason"] == "missing_field" and row["recorded_at"] == recorded_at
        assert row["raw"]["cell"] == ["257,02,16,2224", "257,02,16,2223,-90"]
        return
    assert answer["accepted"] == 1 and answer["refused"] == [], answer
    [row] = stored(db, agent.id)
    assert row["recorded_at"] == (recorded_at or now)
    assert row["time_source"] == ("device" if recorded_at else "received")
    assert row["source"] == "osmand"
    check_values(row, values)


@pytest.mark.parametrize("body,recorded_at,values", DECODER_JSON,
                         ids=["flutter", "ios_mock", "android"])
def test_every_decoder_json_is_handled_at_its_own_time(client, db, frozen_now, phone, body,
                                                       recorded_at, values):
    agent, auth = phone
    frozen_now(recorded_at + timedelta(seconds=30))
    r = client.post(URL, data=body, headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["accepted"] == 1
    [row] = stored(db, agent.id)
    assert row["recorded_at"] == recorded_at and row["time_source"] == "device"
    check_values(row, values)


def test_a_point_refused_for_good_answers_2xx_and_does_not_block_the_phone(
        client, db, frozen_now, phone):
    """Today every decoder fixture is years old: each is answered 200 and kept as rejected
    (too_old), so the client moves on to its next point, which is stored."""
    agent, auth = phone
    frozen_now(TODAY)
    timestamped = [q for q, at, _ in DECODER_QUERIES if at is not None]
    for query in timestamped:
        r = client.post(f"{URL}?{query}&token=not-kept", headers=auth)
        assert r.status_code == 200, (query, r.get_data(as_text=True))
        assert r.get_json()["rejected"] == 1
    # the Android client resends the same point after a lost answer: one row, sent twice
    client.post(f"{URL}?{timestamped[-1]}&token=not-kept", headers=auth)
    ok = client.post(f"{URL}?{ANDROID_QUERY.format(ts=int(TODAY.timestamp()) - 20)}",
                     headers=auth)
    assert ok.status_code == 200 and ok.get_json()["accepted"] == 1

    rows = rejected(db, agent.id)
    reasons = sorted(r["reason"] for r in rows)
    # the cell-only query is incomplete (no position); the others are too old
    assert reasons == ["missing_field"] + ["too_old"] * (len(timestamped) - 1)
    assert all("token" not in r["raw"] for r in rows)  # never kept
    assert [r["times"] for r in rows if r["raw"].get("id") == "123456789012345"] == [2]
    last = next(r for r in rows if r["raw"].get("id") == "123456789012345")
    assert last["device_id"] == "123456789012345" and last["source"] == "osmand"
    assert last["recorded_at"] == datetime(2017, 9, 7, 5, 56, 50, tzinfo=UTC)
    assert last["message"] == "recorded_at is older than 7 days"
    [good] = stored(db, agent.id)
    assert good["accuracy_m"] is None  # accuracy=0.0: not set, not 0 m
    assert float(good["battery"]) == 87.0


def test_request_shapes_without_content_type_form_text_and_query(client, db, frozen_now,
                                                                 phone):
    agent, auth = phone
    now = frozen_now(TODAY)
    token = auth["Authorization"].removeprefix("Bearer ")
    ts = int(now.timestamp())
    body = f"id=phone-7&lat=10.7769&lon=106.7009&timestamp={ts - 60}&accuracy=0"
    # a query-string body with no Content-Type, the token in it too
    r = client.post(URL, data=f"{body}&token={token}".encode())
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["accepted"] == 1
    # as text/plain, and as a form
    r = client.post(URL, data=body.replace(str(ts - 60), str(ts - 50)).encode(),
                    headers={**auth, "Content-Type": "text/plain"})
    assert r.status_code == 200 and r.get_json()["accepted"] == 1
    r = client.post(URL, data={"id": "phone-7", "lat": "10.777", "lon": "106.701",
                               "timestamp": str(ts - 40), "token": token})
    assert r.status_code == 200 and r.get_json()["accepted"] == 1
    # the query string with an empty body (Android), GET (older clients)
    r = client.post(f"{URL}?{ANDROID_QUERY.format(ts=ts - 30)}", data=b"", headers=auth)
    assert r.status_code == 200 and r.get_json()["accepted"] == 1
    r = client.get(f"{URL}?{ANDROID_QUERY.format(ts=ts - 20)}&token={token}")
    assert r.status_code == 200 and r.get_json()["accepted"] == 1
    rows = stored(db, agent.id)
    assert len(rows) == 5 and all(row["accuracy_m"] is None for row in rows)


@pytest.mark.parametrize("stamp,zone,expected", [
    ("2026-11-24 02:58:00", None, datetime(2026, 11, 24, 2, 58, tzinfo=UTC)),
    ("2026-11-24T02:58:00", None, datetime(2026, 11, 24, 2, 58, tzinfo=UTC)),
    ("2026-11-24 09:58:00", "Asia/Ho_Chi_Minh", datetime(2026, 11, 24, 2, 58, tzinfo=UTC)),
    ("2026-11-24T09:58:00+07:00", None, datetime(2026, 11, 24, 2, 58, tzinfo=UTC)),
    ("2026-11-24T09:58:00+07:00[Asia/Ho_Chi_Minh]", None,
     datetime(2026, 11, 24, 2, 58, tzinfo=UTC)),
    ("2026-11-24T02:58:00.250Z", None, datetime(2026, 11, 24, 2, 58, 0, 250000, tzinfo=UTC)),
    ("1795489080", None, datetime(2026, 11, 24, 2, 58, tzinfo=UTC)),
    ("1795489080000", None, datetime(2026, 11, 24, 2, 58, tzinfo=UTC)),
])
def test_every_timestamp_form_of_the_decoder(app, client, db, frozen_now, phone, stamp, zone,
                                             expected):
    agent, auth = phone
    frozen_now(TODAY)
    saved = app.config.get("OSMAND_NAIVE_TIMEZONE")
    if zone:
        app.config["OSMAND_NAIVE_TIMEZONE"] = zone
    try:
        r = client.get(URL, query_string={"id": "p", "lat": "10.7769", "lon": "106.7009",
                                          "timestamp": stamp}, headers=auth)
    finally:
        app.config["OSMAND_NAIVE_TIMEZONE"] = saved
    assert r.status_code == 200 and r.get_json()["accepted"] == 1, r.get_data(as_text=True)
    [row] = stored(db, agent.id)
    assert row["recorded_at"] == expected and row["time_source"] == "device"


def test_only_what_can_succeed_later_is_refused_with_a_non_2xx(client, db, frozen_now, phone,
                                                              make_field_agent):
    from portal.models.field import FieldDevice
    from portal.permissions import tokens as api_tokens

    agent, auth = phone
    now = frozen_now(TODAY)
    query = f"id=phone-9&lat=10.7769&lon=106.7009&timestamp={int(now.timestamp()) + 300}"
    # five minutes ahead (a phone clock a little fast): refused for now, kept by the phone
    r = client.post(f"{URL}?{query}", headers=auth)
    assert r.status_code == 409 and r.headers["Retry-After"] == "60"
    assert r.get_json()["error"]["code"] == "future_timestamp"
    assert r.get_json()["refused"][0]["retry"] is True
    assert rejected(db, agent.id) == [] and stored(db, agent.id) == []
    # four minutes later the same request is accepted
    frozen_now(now + timedelta(minutes=4))
    r = client.post(f"{URL}?{query}", headers=auth)
    assert r.status_code == 200 and r.get_json()["accepted"] == 1
    # two days ahead: beyond any clock skew, refused for good
    far = f"id=phone-9&lat=10.7769&lon=106.7009&timestamp={int(now.timestamp()) + 172800}"
    r = client.post(f"{URL}?{far}", headers=auth)
    assert r.status_code == 200 and r.get_json()["rejected"] == 1
    assert [row["reason"] for row in rejected(db, agent.id)] == ["future_timestamp"]

    # a device not registered yet (a gateway token names agents by device): 404 until it is
    _, gateway = api_tokens.create_token(db.session, name="gateway", scopes=["api.locations"],
                                         user=None, created_by="test")
    db.session.commit()
    later = f"id=860000000000009&lat=10.78&lon=106.70&timestamp={int(now.timestamp())}"
    r = client.post(f"{URL}?{later}&token={gateway}")
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "unknown_device"
    other = make_field_agent()
    db.session.add(FieldDevice(device_id="860000000000009", agent_id=other.id))
    db.session.commit()
    r = client.post(f"{URL}?{later}&token={gateway}")
    assert r.status_code == 200 and r.get_json()["accepted"] == 1
    assert len(stored(db, other.id)) == 1


def test_the_batch_api_keeps_its_refusals_for_good_as_rejected(client, db, frozen_now, phone):
    agent, auth = phone
    now = frozen_now(TODAY)
    stamp = now.isoformat()
    points = [
        {"lat": 10.7769, "lon": 106.7009, "recorded_at": stamp, "accuracy_m": 0},  # ok
        {"lat": 95, "lon": 106.7, "recorded_at": stamp},  # never
        {"lat": 10.7, "lon": 106.7, "recorded_at": (now + timedelta(minutes=5)).isoformat()},
        {"lat": 10.7, "lon": 106.7, "recorded_at": (now - timedelta(days=30)).isoformat()},
    ]
    r = client.post("/api/v1/field/locations", json={"points": points}, headers=auth)
    assert r.status_code == 200
    answer = r.get_json()
    assert answer["accepted"] == 1 and answer["rejected"] == 2
    assert [(x["index"], x["code"], x["retry"]) for x in answer["refused"]] == [
        (1, "lat_out_of_range", False), (2, "future_timestamp", True), (3, "too_old", False)]
    assert sorted(row["reason"] for row in rejected(db, agent.id)) == [
        "lat_out_of_range", "too_old"]
    assert all(row["source"] == "api" for row in rejected(db, agent.id))
    [row] = stored(db, agent.id)
    assert row["accuracy_m"] is None


def test_ops_and_supervisors_see_the_rejected_points_in_words(
        client, db, frozen_now, phone, login, make_user, field_team, make_team):
    agent, auth = phone
    now = frozen_now(TODAY)
    for days in (10, 11):
        client.post(f"{URL}?id=phone-3&lat=10.7&lon=106.7"
                    f"&timestamp={int((now - timedelta(days=days)).timestamp())}", headers=auth)
    client.post(f"{URL}?id=phone-3&lat=91&lon=106.7&timestamp={int(now.timestamp())}",
                headers=auth)

    def page_as(user):
        login(user)
        return client.get("/field/rejected")

    ops = make_user(role="ops")
    r = page_as(ops)
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    html = r.get_data(as_text=True)
    assert "Older than the oldest position accepted (phone offline too long)" in html
    assert "Latitude outside -90 to 90" in html
    assert html.count('data-testid="rejected-row"') == 3
    assert "too_old" not in html.replace('data-code="too_old"', "")  # no raw codes shown

    supervisor = db.session.get(type(ops), field_team.supervisor_id)
    r = page_as(supervisor)
    assert r.status_code == 200
    assert r.get_data(as_text=True).count('data-testid="rejected-row"') == 3
    stranger = make_user(role="supervisor", team_id=make_team(name="Other team").id)
    assert page_as(stranger).get_data(as_text=True).count('data-testid="rejected-row"') == 0
    assert page_as(make_user(role="agent")).status_code == 403
