"""Test-only subscribers and helpers shared by the event-bus and worker tests.

The subscribers are registered by ``register_test_subscribers`` — in the test process by the
``bus`` fixture (and unregistered after), in worker subprocesses through
EVENT_SUBSCRIBER_MODULES=tests.integration.test_events_support:register_test_subscribers.
Their behaviour is steered through Redis keys, so a test can change it while a worker runs;
their effect is an ``audit_log`` row (action ``bus_test``), written in the delivery's transaction.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import func, select

from workers.worker import PortalSimpleWorker

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = "tests.integration.test_events_support:register_test_subscribers"

RECORD = "bus_test.record"  # CUSTOMER_UPDATED: always succeeds
FLAKY = "bus_test.flaky"  # LOAN_UPDATED: fails while bus-test:fail-count > 0
BROKEN = "bus_test.broken"  # PAYMENT_FAILED: fails while bus-test:broken exists
SLOW = "bus_test.slow"  # VISIT_CHECKED_IN: the first call blocks (to be killed)
NOOP = "bus_test.noop"  # AGENT_STATUS_CHANGED: does nothing (benchmark)
NAMES = (RECORD, FLAKY, BROKEN, SLOW, NOOP)


def _redis() -> Redis:
    from portal.extensions import get_redis

    return get_redis()


def _effect(event, session, subscriber: str) -> None:
    from portal.models.audit import AuditLog

    session.add(AuditLog(action="bus_test", entity_type="event", entity_id=str(event.id),
                         actor_label=subscriber, correlation_id=event.correlation_id))


def _record(event, session):
    _redis().incr(f"bus-test:calls:{RECORD}")
    _effect(event, session, RECORD)


def _flaky(event, session):
    r = _redis()
    r.incr(f"bus-test:calls:{FLAKY}")
    _effect(event, session, FLAKY)
    session.flush()  # the effect is in the transaction when the failure rolls it back
    if int(r.get("bus-test:fail-count") or 0) > 0:
        r.decr("bus-test:fail-count")
        raise RuntimeError("flaky subscriber failing on purpose")


def _broken(event, session):
    r = _redis()
    r.incr(f"bus-test:calls:{BROKEN}")
    if r.exists("bus-test:broken"):
        raise ValueError("broken subscriber: downstream unavailable")
    _effect(event, session, BROKEN)


def _slow(event, session):
    r = _redis()
    calls = r.incr(f"bus-test:calls:{SLOW}")
    _effect(event, session, SLOW)
    session.flush()  # holds the delivery row lock and an uncommitted effect
    if calls == 1:
        r.set("bus-test:slow-pid", os.getpid())
        time.sleep(60)


def _noop(event, session):
    return None


def register_test_subscribers() -> None:
    from portal.events.subscribers import register

    register(_record, "CUSTOMER_UPDATED", name=RECORD)
    register(_flaky, "LOAN_UPDATED", name=FLAKY)
    register(_broken, "PAYMENT_FAILED", name=BROKEN)
    register(_slow, "VISIT_CHECKED_IN", name=SLOW)
    register(_noop, "AGENT_STATUS_CHANGED", name=NOOP)


@pytest.fixture
def bus(app, db, monkeypatch):
    """Test subscribers registered, short retry intervals, an empty bus."""
    from portal.events.subscribers import unregister

    monkeypatch.setitem(app.config, "EVENTS_RETRY_INTERVALS", [1, 1])
    register_test_subscribers()
    yield
    for name in NAMES:
        unregister(name)


# -- payloads -----------------------------------------------------------------------------------


def customer_updated(cif: str = "C0001") -> dict:
    return {"cif": cif, "source_system": "T24", "changes": {"name": {"old": "A", "new": "B"}}}


def loan_updated(account: str = "LN0001") -> dict:
    return {"account_number": account, "cif": "C0001", "source_system": "T24",
            "changes": {"dpd": {"old": 3, "new": 4}}}


def payment_failed(ref: str = "PAY-1") -> dict:
    return {"reference_number": ref, "amount": "150000.00", "currency": "VND",
            "reason": "insufficient funds"}


def visit_checked_in(visit_id: int = 1) -> dict:
    return {"visit_id": visit_id, "cif": "C0001", "agent_id": 7,
            "checked_in_at": "2026-01-05T09:30:00+07:00"}


def agent_status(agent_id: int = 1) -> dict:
    return {"agent_id": agent_id, "status": "available", "since": "2026-01-05T09:30:00Z"}


# -- running jobs -------------------------------------------------------------------------------


def effects(db, subscriber: str | None = None) -> int:
    from portal.models.audit import AuditLog

    query = select(func.count()).select_from(AuditLog).where(AuditLog.action == "bus_test")
    if subscriber:
        query = query.where(AuditLog.actor_label == subscriber)
    count = db.session.execute(query).scalar_one()
    db.session.rollback()
    return count


def calls(redis_client, subscriber: str) -> int:
    return int(redis_client.get(f"bus-test:calls:{subscriber}") or 0)


def worker_connection(app) -> Redis:
    return Redis.from_url(app.config["REDIS_URL"])


def drain(app, *, timeout: float = 20.0, queues=("events",)) -> None:
    """Run in-process burst workers (with RQ's scheduler for retries) until no job is queued,
    scheduled or running on ``queues``."""
    from portal.queues import get_queue

    connection = worker_connection(app)
    deadline = time.monotonic() + timeout
    try:
        while True:
            qs = [get_queue(name, connection) for name in queues]
            PortalSimpleWorker(qs, connection=connection).work(burst=True, with_scheduler=True,
                                                         logging_level="WARNING")
            busy = sum(q.count + q.scheduled_job_registry.get_job_count(cleanup=False)
                       for q in qs)
            if not busy:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"jobs still pending after {timeout}s")
            time.sleep(0.2)
    finally:
        connection.close()


def worker_env(app, **extra: str) -> dict:
    env = dict(os.environ)
    env.update({
        "PORTAL_ENV": "testing",
        "TEST_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "TEST_REDIS_URL": app.config["REDIS_URL"],
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        "EVENT_SUBSCRIBER_MODULES": SUPPORT,
        "EVENTS_RETRY_INTERVALS": "1,1",
        "LOG_FORMAT": "json",
        "PYTHONPATH": str(ROOT),
    })
    env.update(extra)
    return env


def flask_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "flask", "--app", "wsgi", *args]


def start_worker(app, *args: str, **env: str) -> subprocess.Popen:
    """``flask workers run …`` in its own process group (killed with ``stop_process``)."""
    return subprocess.Popen(
        flask_command("workers", "run", *args), cwd=ROOT, env=worker_env(app, **env),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=10)
    finally:
        if proc.stdout:
            proc.stdout.close()


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
