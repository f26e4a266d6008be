"""Relay and delivery with real RQ workers: exactly-once handling, retries, dead letters,
concurrent relays, lost jobs, replay."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from click.testing import CliRunner
from rq import Queue
from sqlalchemy import func, select, update

from portal.events import publish
from portal.events.relay import (
    DELIVER_JOB,
    delivery_job_id,
    relay_once,
    relay_pending,
    sweep_stale,
)
from portal.events.subscribers import subscribers_for
from portal.models.base import utcnow
from portal.models.events import Event, EventDelivery
from tests.integration.test_events_support import (  # noqa: F401  (bus is a fixture)
    BROKEN,
    FLAKY,
    NAMES,
    RECORD,
    bus,
    calls,
    customer_updated,
    drain,
    effects,
    loan_updated,
    payment_failed,
)


def delivery(db, subscriber: str, event_id=None) -> EventDelivery:
    query = select(EventDelivery).where(EventDelivery.subscriber == subscriber)
    if event_id is not None:
        query = query.where(EventDelivery.event_id == event_id)
    row = db.session.execute(query).scalar_one()
    db.session.expunge(row)
    db.session.rollback()
    return row


def delivery_jobs(redis_client) -> list[str]:
    """Ids of queued delivery jobs for the test subscribers."""
    queue = Queue("events", connection=redis_client)
    return [job.id for job in queue.get_jobs()
            if job.func_name == DELIVER_JOB and job.args[1] in NAMES]


@pytest.mark.usefixtures("bus")
def test_event_is_relayed_and_handled(app, db, redis_client):
    event = publish("CUSTOMER_UPDATED", customer_updated(), correlation_id="cid-1")
    db.session.commit()
    drain(app)  # the relay job enqueued by the commit, then the delivery
    row = delivery(db, RECORD)
    assert (row.status, row.attempts) == ("delivered", 1)
    assert row.job_id == delivery_job_id(event.id, RECORD)
    assert row.delivered_at is not None
    assert effects(db, RECORD) == 1
    assert db.session.get(Event, event.id).relayed_at is not None
    # the subscriber ran under the event's correlation id
    from portal.models.audit import AuditLog

    assert db.session.execute(select(AuditLog.correlation_id)).scalar_one() == "cid-1"


@pytest.mark.usefixtures("bus")
def test_event_relayed_twice_is_handled_once(app, db, redis_client):
    event = publish("CUSTOMER_UPDATED", customer_updated())
    db.session.commit()
    # one delivery per subscriber of the type (the test's and the product's own)
    assert relay_pending(db.session) == (1, len(subscribers_for("CUSTOMER_UPDATED")))
    # relay it again (as a replay or a confused relay would) ...
    db.session.execute(update(Event).values(relayed_at=None))
    db.session.commit()
    assert relay_pending(db.session) == (1, 0)
    # ... and enqueue its delivery job twice more by hand, under the same and another id
    from portal.queues import JobRequest, enqueue_many

    enqueue_many("events", [JobRequest(DELIVER_JOB, (str(event.id), RECORD),
                                       job_id=delivery_job_id(event.id, RECORD))])
    enqueue_many("events", [JobRequest(DELIVER_JOB, (str(event.id), RECORD), job_id="dup-1")])
    drain(app)
    assert calls(redis_client, RECORD) == 1
    assert effects(db, RECORD) == 1
    row = delivery(db, RECORD)
    assert (row.status, row.attempts) == ("delivered", 1)


@pytest.mark.usefixtures("bus")
def test_subscriber_failing_twice_then_succeeding_ends_delivered(app, db, redis_client):
    redis_client.set("bus-test:fail-count", 2)
    publish("LOAN_UPDATED", loan_updated())
    db.session.commit()
    drain(app)
    row = delivery(db, FLAKY)
    assert row.status == "delivered"
    assert row.attempts == 3
    assert "failing on purpose" in row.last_error
    assert calls(redis_client, FLAKY) == 3
    assert effects(db, FLAKY) == 1  # the failed attempts' effects were rolled back


@pytest.mark.usefixtures("bus")
def test_always_failing_subscriber_goes_dead_and_is_retried_from_cli(app, db,
                                                                     redis_client):
    redis_client.set("bus-test:broken", 1)
    publish("PAYMENT_FAILED", payment_failed())
    db.session.commit()
    drain(app)
    row = delivery(db, BROKEN)
    assert row.status == "dead"
    assert row.attempts == 3  # first try + 2 retries (EVENTS_RETRY_INTERVALS = 1,1)
    assert "downstream unavailable" in row.last_error
    assert effects(db, BROKEN) == 0
    failed = Queue("events", connection=redis_client).failed_job_registry
    assert row.job_id in failed.get_job_ids(cleanup=False)

    # still broken: retrying from the CLI goes dead again
    runner = CliRunner()
    from portal.events.cli import events as events_cli

    result = runner.invoke(events_cli, ["retry-dead"], obj=_script_info(app))
    assert result.exit_code == 0, result.output
    assert "re-enqueued 1 dead deliveries" in result.output
    drain(app)
    assert delivery(db, BROKEN).status == "dead"

    # fixed: the retry delivers it
    redis_client.delete("bus-test:broken")
    result = runner.invoke(events_cli, ["retry-dead", "--subscriber", BROKEN],
                           obj=_script_info(app))
    assert "re-enqueued 1 dead deliveries" in result.output
    drain(app)
    row = delivery(db, BROKEN)
    assert row.status == "delivered"
    assert row.attempts == 7
    assert effects(db, BROKEN) == 1
    # nothing left to retry
    result = runner.invoke(events_cli, ["retry-dead"], obj=_script_info(app))
    assert "re-enqueued 0 dead deliveries" in result.output


def _script_info(app):
    from flask.cli import ScriptInfo

    return ScriptInfo(create_app=lambda: app)


@pytest.mark.usefixtures("bus")
def test_concurrent_relays_never_enqueue_an_event_twice(app, db, redis_client):
    n = 300
    for i in range(n):
        publish("CUSTOMER_UPDATED", customer_updated(f"C{i:05d}"))
    db.session.commit()
    redis_client.delete("rq:queue:events")  # drop the after-commit relay job
    start = threading.Barrier(4)
    errors = []
    totals = []

    def relay():
        from portal.extensions import db as _db

        try:
            with app.app_context():
                start.wait()
                events = 0
                while True:
                    got, _ = relay_once(_db.session, limit=7)
                    if not got:
                        break
                    events += got
                totals.append(events)
                _db.session.remove()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=relay) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sum(totals) == n
    assert len([t for t in totals if t]) >= 2, "the relays did not actually run concurrently"
    jobs = delivery_jobs(redis_client)
    assert len(jobs) == n
    assert len(set(jobs)) == n
    assert db.session.execute(select(func.count()).select_from(EventDelivery)).scalar_one() \
        == n * len(subscribers_for("CUSTOMER_UPDATED"))


@pytest.mark.usefixtures("bus")
def test_lost_job_is_swept_and_handled_once(app, db, redis_client):
    publish("CUSTOMER_UPDATED", customer_updated())
    db.session.commit()
    relay_pending(db.session)
    # the job is lost (Redis lost its data, or the relay died between commit and enqueue)
    (job_id,) = delivery_jobs(redis_client)
    redis_client.delete("rq:queue:events", f"rq:job:{job_id}")
    assert sweep_stale(db.session, older_than=60) == 0  # not stale yet
    db.session.execute(update(EventDelivery).values(
        enqueued_at=utcnow() - timedelta(minutes=10)))
    db.session.commit()
    assert sweep_stale(db.session, older_than=60) == 1
    assert sweep_stale(db.session, older_than=60) == 0  # its new job is waiting: left alone
    drain(app)
    assert effects(db, RECORD) == 1
    row = delivery(db, RECORD)
    assert row.status == "delivered"
    assert row.job_id.startswith(delivery_job_id(row.event_id, RECORD) + "-s")


@pytest.mark.usefixtures("bus")
def test_replay_delivers_to_new_subscribers_only(app, db, redis_client):
    from portal.events.cli import events as events_cli
    from portal.events.subscribers import register, unregister

    publish("CUSTOMER_UPDATED", customer_updated())
    db.session.commit()
    drain(app)
    assert effects(db) == 1

    def late(event, session):
        from tests.integration.test_events_support import _effect

        _effect(event, session, "bus_test.late")

    register(late, "CUSTOMER_UPDATED", name="bus_test.late")
    try:
        result = CliRunner().invoke(events_cli, ["replay", "--since", "1h"],
                                    obj=_script_info(app))
        assert result.exit_code == 0, result.output
        assert "replayed 1 events: 1 new deliveries" in result.output
        drain(app)
    finally:
        unregister("bus_test.late")
    assert effects(db, RECORD) == 1  # not handled twice
    assert effects(db, "bus_test.late") == 1


@pytest.mark.usefixtures("bus")
def test_tail_prints_events_and_deliveries(app, db, redis_client):
    from portal.events.cli import events as events_cli

    publish("CUSTOMER_UPDATED", customer_updated("C-TAIL"), correlation_id="cid-tail")
    db.session.commit()
    drain(app)
    result = CliRunner().invoke(events_cli, ["tail", "-n", "5"], obj=_script_info(app))
    assert result.exit_code == 0, result.output
    assert "CUSTOMER_UPDATED" in result.output
    assert "customer:C-TAIL" in result.output
    assert "cid=cid-tail" in result.output
    assert "record=delivered" in result.output
