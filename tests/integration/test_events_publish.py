"""Publishing into the outbox: transactional, validated, triggering one relay after commit,
carrying the correlation id of the request."""

from __future__ import annotations

import json
import logging

import pytest
from redis import Redis
from sqlalchemy import func, select

from portal.events import EventValidationError, publish
from portal.events.relay import RELAY_JOB, RELAY_REQUESTED_KEY
from portal.models.customers import Customer
from portal.models.events import Event
from tests.integration.test_events_support import customer_updated, loan_updated


def count_events(db) -> int:
    n = db.session.execute(select(func.count()).select_from(Event)).scalar_one()
    db.session.rollback()
    return n


def queued_job_funcs(redis_client, queue="events") -> list[str]:
    from rq import Queue

    q = Queue(queue, connection=redis_client)
    return [job.func_name for job in q.get_jobs()]


def test_publish_adds_event_to_callers_transaction(db, redis_client):
    event = publish("LOAN_UPDATED", loan_updated("LN42"))
    assert count_events_in_session(db) == 1  # visible inside the transaction...
    db.session.commit()
    assert count_events(db) == 1
    stored = db.session.get(Event, event.id)
    assert stored.type == "LOAN_UPDATED" and stored.version == 1
    assert (stored.aggregate_type, stored.aggregate_id) == ("loan", "LN42")
    assert stored.payload["changes"] == {"dpd": {"old": 3, "new": 4}}
    assert stored.relayed_at is None and stored.seq >= 1


def count_events_in_session(db) -> int:
    return db.session.execute(select(func.count()).select_from(Event)).scalar_one()


def test_rolled_back_change_publishes_nothing(db, redis_client):
    db.session.add(Customer(cif="C-RB", type="INDIVIDUAL", name="Nguyen Van A"))
    publish("CUSTOMER_UPDATED", customer_updated("C-RB"))
    db.session.flush()
    db.session.rollback()
    assert count_events(db) == 0
    assert db.session.execute(select(func.count()).select_from(Customer)).scalar_one() == 0
    # and no relay was requested for it
    assert queued_job_funcs(redis_client) == []
    assert not redis_client.exists(RELAY_REQUESTED_KEY)


def test_change_and_event_commit_together(db, redis_client):
    db.session.add(Customer(cif="C-OK", type="INDIVIDUAL", name="Tran Thi B"))
    publish("CUSTOMER_UPDATED", customer_updated("C-OK"))
    db.session.commit()
    assert count_events(db) == 1
    assert db.session.execute(select(func.count()).select_from(Customer)).scalar_one() == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"cif": "C1", "source_system": "T24"}, "changes"),
        ({"cif": "C1", "source_system": "XX", "changes": {"a": {"old": 1, "new": 2}}},
         "source_system"),
        ({"cif": "C1", "source_system": "T24", "changes": {"dpd": {"old": 1}}}, "changes.dpd.new"),
        ({"cif": 12, "source_system": "T24", "changes": {"a": {"old": 1, "new": 2}}}, "cif"),
    ],
)
def test_invalid_payload_is_refused_naming_the_field(db, redis_client, payload, field):
    with pytest.raises(EventValidationError) as info:
        publish("CUSTOMER_UPDATED", payload)
    assert info.value.field == field
    assert f"'{field}'" in str(info.value)
    db.session.commit()  # even a commit afterwards writes nothing
    assert count_events(db) == 0
    assert queued_job_funcs(redis_client) == []


def test_unknown_event_type_is_refused(db):
    from portal.events import UnknownEventType

    with pytest.raises(UnknownEventType):
        publish("NOT_AN_EVENT", {})
    assert count_events(db) == 0


def test_commit_enqueues_one_relay_job_per_waiting_relay(db, redis_client):
    publish("LOAN_UPDATED", loan_updated("LN1"))
    db.session.commit()
    publish("LOAN_UPDATED", loan_updated("LN2"))
    db.session.commit()
    # the first relay job has not started: the second commit does not add another
    assert queued_job_funcs(redis_client) == [RELAY_JOB]
    assert redis_client.exists(RELAY_REQUESTED_KEY)
    db.session.commit()  # a commit without events requests nothing
    assert queued_job_funcs(redis_client) == [RELAY_JOB]


def test_commit_succeeds_when_redis_is_down(app, db, redis_client, caplog):
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    good = app.extensions.get("portal_redis")
    app.extensions["portal_redis"] = dead
    try:
        publish("LOAN_UPDATED", loan_updated("LN-DOWN"))
        with caplog.at_level(logging.WARNING, logger="portal.events.relay"):
            db.session.commit()
    finally:
        if good is None:
            app.extensions.pop("portal_redis", None)
        else:
            app.extensions["portal_redis"] = good
    assert count_events(db) == 1
    assert any("relay" in r.getMessage() for r in caplog.records)


def test_decimal_and_dates_are_converted(db, redis_client):
    from datetime import UTC, datetime
    from decimal import Decimal

    event = publish("PAYMENT_RECEIVED", {
        "reference_number": "FT1", "account_number": "LN1", "cif": "C1",
        "amount": Decimal("1500000.50"), "currency": "VND",
        "paid_at": datetime(2026, 1, 5, 2, 30, tzinfo=UTC),
    })
    db.session.commit()
    assert event.payload["amount"] == "1500000.50"
    assert event.payload["paid_at"] == "2026-01-05T02:30:00+00:00"
    assert (event.aggregate_type, event.aggregate_id) == ("payment", "FT1")


def test_request_correlation_id_reaches_event_response_and_logs(app, db, redis_client, capsys):
    # the request hooks run around a view that publishes, as a blueprint would via a service
    with app.test_request_context("/x", method="POST", headers={"X-Request-ID": "req-abc-123"}):
        app.preprocess_request()
        logging.getLogger("portal.test").info("publishing from a request")
        publish("CUSTOMER_UPDATED", customer_updated("C-REQ"))
        db.session.commit()
        response = app.process_response(app.make_response("ok"))
        app.do_teardown_request()
    assert response.headers["X-Request-ID"] == "req-abc-123"
    event = db.session.execute(select(Event)).scalar_one()
    assert event.correlation_id == "req-abc-123"
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()
             if line.startswith("{")]
    mine = [entry for entry in lines if entry["message"] == "publishing from a request"]
    assert mine and mine[0]["correlation_id"] == "req-abc-123"
    # the relay job carries it in its meta
    from rq import Queue

    (relay_job,) = Queue("events", connection=redis_client).get_jobs()
    assert relay_job.meta["correlation_id"] == "req-abc-123"
    # outside the request the id is gone
    from portal.logging import get_correlation_id

    assert get_correlation_id() is None


def test_every_response_carries_a_request_id(client):
    response = client.get("/auth/login", headers={"X-Request-ID": "given-1"})
    assert response.headers["X-Request-ID"] == "given-1"
    generated = client.get("/auth/login").headers["X-Request-ID"]
    assert len(generated) == 32
    unsafe = client.get("/auth/login", headers={"X-Request-ID": "bad id <x>"})
    assert unsafe.headers["X-Request-ID"] != "bad id <x>"


def test_in_a_web_request_the_relay_is_requested_by_a_background_thread(app, db, redis_client,
                                                                      monkeypatch):
    """Commits of concurrent requests share one relay request, made after the last of them."""
    import time

    from portal.events import relay

    monkeypatch.setitem(app.config, "EVENTS_RELAY_REQUEST_BACKGROUND", True)
    calls = []
    real = relay.request_relay
    monkeypatch.setattr(relay, "request_relay", lambda: calls.append(time.monotonic()) or real())
    with app.test_request_context("/"):
        nudger = relay.nudger()
        monkeypatch.setattr(nudger, "gather", 0.2)  # commits within 0.2 s share a request
        committed = []
        for n in range(3):
            publish("LOAN_UPDATED", loan_updated(f"LN{n}"))
            db.session.commit()
            committed.append(time.monotonic())
        assert calls == []  # not in the request: the request went on at once
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    assert len(calls) == 1 and calls[0] > committed[-1]
    assert queued_job_funcs(redis_client) == [RELAY_JOB]
    assert count_events(db) == 3
