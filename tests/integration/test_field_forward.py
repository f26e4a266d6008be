"""Forwarding stored positions to the GPS system: the backlog survives the system being down and
drains in order, without duplicates, once it is back; a failure mid-way keeps the rest; every
run with work is an integration run; new points enqueue a (debounced) forward job."""
# ruff: noqa: F811 - the field fixtures are imported from tests.field_support

from __future__ import annotations

from datetime import timedelta

import requests
from sqlalchemy import text

from integrations.gps import circuit, forward
from integrations.gps.client import GpsClient
from tests.field_support import (  # noqa: F401 - fixtures
    GPS_KEY,
    HCMC,
    ago,
    field_team,
    gps_sandbox,
    iso,
    make_device_token,
    make_field_agent,
)


def post_points(client, token: str, start_seconds_ago: int, count: int) -> None:
    start = ago(start_seconds_ago)
    points = [{"lat": HCMC[0] + i * 1e-5, "lon": HCMC[1], "accuracy_m": 7,
               "recorded_at": iso(start + timedelta(seconds=i))} for i in range(count)]
    response = client.post("/api/v1/field/locations", json={"points": points},
                           headers={"Authorization": f"Bearer {token}"})
    assert response.get_json()["accepted"] == count


def faults(server, **knobs) -> None:
    requests.put(f"{server.url}/_sandbox/faults", json=knobs, timeout=5).raise_for_status()


def stats(server) -> dict:
    return requests.get(f"{server.url}/_sandbox/stats", timeout=5).json()


def received_ids(server) -> list[int]:
    return [p["id"] for p in requests.get(
        f"{server.url}/api/v1/positions", headers={"X-API-Key": GPS_KEY},
        timeout=5).json()["data"]]


def gps_client(server) -> GpsClient:
    return GpsClient(server.url, GPS_KEY, retries=1, backoff=0.01, sleep=lambda s: None)


def runs(db) -> list:
    return db.session.execute(text(
        "SELECT status, loaded, extracted, errors FROM integration_runs "
        "WHERE integration = 'GPS' AND kind = 'forward' ORDER BY id")).all()


def test_backlog_survives_an_outage_and_drains_in_order(client, db, gps_sandbox,
                                                        make_field_agent, make_device_token):
    a, b = make_field_agent(), make_field_agent()
    ta, tb = make_device_token(a), make_device_token(b)
    faults(gps_sandbox, outage=True)
    post_points(client, ta, 3000, 700)
    post_points(client, tb, 2000, 400)
    post_points(client, ta, 6000, 100)  # older points arriving late (out of order)
    assert forward.backlog(db.session) == 1200

    result = forward.forward_pending(db.session, client=gps_client(gps_sandbox),
                                     batch_size=500)
    assert result["status"] == "failed" and result["sent"] == 0
    assert result["backlog"] == 1200 == forward.backlog(db.session)
    assert "503" in result["error"]
    assert stats(gps_sandbox)["positions"] == 0
    assert runs(db)[-1].status == "failed"

    # still down: three failures in a row open the circuit, which then skips the system
    for _ in range(2):
        forward.forward_pending(db.session, client=gps_client(gps_sandbox), batch_size=500)
    assert circuit.is_open()
    skipped = forward.forward_pending(db.session, client=gps_client(gps_sandbox))
    assert skipped["status"] == "circuit_open" and skipped["backlog"] == 1200
    status = forward.backlog_status(db.session)
    assert status["backlog"] == 1200 and status["circuit"] == "open"
    assert status["oldest_received_at"] is not None

    # back up (and the circuit's pause over): everything goes, oldest first, once each
    faults(gps_sandbox, outage=False)
    circuit.reset()
    result = forward.forward_pending(db.session, client=gps_client(gps_sandbox),
                                     batch_size=500)
    assert result == {"status": "ok", "sent": 1200, "backlog": 0, "error": None,
                      "run_id": result["run_id"]}
    ids = received_ids(gps_sandbox)
    stored_ids = list(db.session.scalars(text("SELECT id FROM agent_locations ORDER BY id")))
    assert ids == stored_ids  # arrival order, nothing lost, nothing twice
    s = stats(gps_sandbox)
    assert s["batches"] == 3 and s["duplicates"] == 0 and s["out_of_order"] == 0
    assert s["agents"] == {a.username: 800, b.username: 400}
    last = runs(db)[-1]
    assert last.status == "succeeded" and last.loaded == 1200 and last.extracted == 1200
    assert forward.forward_pending(db.session, client=gps_client(gps_sandbox))["status"] == \
        "idle"


def test_a_failure_mid_way_keeps_the_rest_in_order(client, db, gps_sandbox, make_field_agent,
                                                  make_device_token):
    agent = make_field_agent()
    token = make_device_token(agent)
    post_points(client, token, 3000, 1000)
    # the system takes one batch, then goes down by itself
    faults(gps_sandbox, outage_after=1)
    result = forward.forward_pending(db.session, client=gps_client(gps_sandbox),
                                     batch_size=300)
    assert result["status"] == "failed" and result["sent"] == 300
    assert forward.backlog(db.session) == 700
    assert runs(db)[-1].status == "partial"
    faults(gps_sandbox, outage=False, outage_after=None)
    circuit.reset()
    result = forward.forward_pending(db.session, client=gps_client(gps_sandbox),
                                     batch_size=300)
    assert result["sent"] == 700 and result["backlog"] == 0
    ids = received_ids(gps_sandbox)
    assert ids == sorted(ids) and len(ids) == len(set(ids)) == 1000
    assert stats(gps_sandbox)["out_of_order"] == 0


def test_new_points_enqueue_one_forward_job(client, db, redis_client, make_field_agent,
                                            make_device_token):
    from portal.queues import get_queue

    agent = make_field_agent()
    token = make_device_token(agent)
    queue = get_queue("integrations", redis_client)
    before = queue.count
    post_points(client, token, 100, 10)
    post_points(client, token, 50, 10)  # within the debounce: no second job
    jobs = [j for j in queue.get_jobs() if j.func_name == "workers.jobs.field.forward_locations"]
    assert queue.count == before + 1 and len(jobs) == 1


def test_forwarding_is_disabled_without_a_gps_system(client, db, app, make_field_agent,
                                                     make_device_token):
    assert not app.config.get("GPS_API_URL")
    agent = make_field_agent()
    post_points(client, make_device_token(agent), 100, 5)
    assert forward.forward_pending(db.session) == {"status": "disabled", "sent": 0,
                                                   "backlog": 5}


def test_the_scheduled_job_drains_the_backlog(client, db, gps_sandbox, make_field_agent,
                                              make_device_token):
    from portal.schedules import SCHEDULES
    from workers.jobs.field import forward_locations

    schedule = next(s for s in SCHEDULES if s.name == "field.forward")
    assert schedule.cron == "* * * * *" and schedule.queue == "integrations"
    post_points(client, make_device_token(make_field_agent()), 600, 40)
    result = forward_locations()
    assert result["status"] == "ok" and result["sent"] == 40 and result["backlog"] == 0
    assert stats(gps_sandbox)["positions"] == 40
