"""Alerts: raised once while the condition holds, cleared when it ends, every ops user
notified, and a signed JSON POST received by a real HTTP server on a free port. Includes the
W4-outage scenario: sandbox outage → breaker opens, card down, alert raised once and posted;
outage ends → card healthy, alert cleared."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from sqlalchemy import select

from integrations.control import Breaker
from integrations.http import Unavailable
from integrations.sandbox._api import ServerThread
from integrations.sandbox.w4_server import DEFAULT_API_KEY, create_app, seed_cards
from integrations.w4.client import W4Client
from portal import clock
from portal.models import Alert, IntegrationRun, Notification
from portal.ops import alerts
from portal.ops import health as ops_health
from portal.signing import verify

SECRET = "alert-test-secret"
HEALTHY_WORKERS = {
    "workers": [{"name": "w1", "heartbeat_age_s": 3.0, "alive": True}],
    "queues": [{"name": "events", "depth": 0, "workers": 1}],
    "cron_schedulers": [{"name": "c1", "alive": True}],
}


class Receiver:
    """A tiny real HTTP server that records what it is sent (the bank's paging system)."""

    def __init__(self, status: int = 200):
        self.requests: list[tuple[dict, bytes]] = []
        self.status = status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append((dict(self.headers), body))
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def bodies(self) -> list[dict]:
        out = []
        for headers, body in self.requests:
            verify(headers, body, [SECRET])  # raises when not signed with our secret
            out.append(json.loads(body))
        return out


@pytest.fixture
def receiver(app):
    server = Receiver()
    saved = {k: app.config.get(k) for k in ("ALERT_WEBHOOK_URL", "ALERT_WEBHOOK_SECRET",
                                           "ALERT_DOWN_MINUTES")}
    app.config.update(ALERT_WEBHOOK_URL=server.url, ALERT_WEBHOOK_SECRET=SECRET,
                      ALERT_DOWN_MINUTES=0)
    yield server
    app.config.update(saved)
    server.close()


def run_row(db, integration, status, at, **kwargs):
    row = IntegrationRun(integration=integration, kind="sync", trigger="schedule",
                         status=status, started_at=at, finished_at=at + timedelta(seconds=2),
                         duration_ms=2000, **kwargs)
    db.session.add(row)
    db.session.commit()
    return row


def test_dead_letters_raise_once_and_clear(db, make_user, receiver):
    from portal.models import Event, EventDelivery

    ops1, ops2 = make_user(role="ops"), make_user(role="ops")
    make_user(role="agent")
    event = Event(type="CUSTOMER_UPDATED", version=1, aggregate_type="customer",
                  aggregate_id="C1", payload={})
    db.session.add(event)
    db.session.flush()
    delivery = EventDelivery(event_id=event.id, subscriber="portal.workflow.on_customer",
                             status="dead", attempts=5, last_error="boom")
    db.session.add(delivery)
    db.session.commit()

    first = alerts.evaluate(db.session, health=HEALTHY_WORKERS)
    assert [a.key for a in first.raised] == ["dead_letters"]
    again = alerts.evaluate(db.session, health=HEALTHY_WORKERS)
    assert again.raised == [] and again.holding == 1  # not repeated while it holds
    assert db.session.scalar(select(Alert).where(Alert.key == "dead_letters")).status == "firing"
    notes = db.session.scalars(select(Notification).order_by(Notification.id)).all()
    assert sorted(n.user_id for n in notes) == sorted([ops1.id, ops2.id])
    assert notes[0].title == "Alert: 1 dead event delivery"

    delivery.status = "delivered"
    db.session.commit()
    cleared = alerts.evaluate(db.session, health=HEALTHY_WORKERS)
    assert [a.key for a in cleared.cleared] == ["dead_letters"]
    alert = db.session.scalar(select(Alert))
    assert alert.status == "resolved" and alert.resolved_at is not None
    titles = [n.title for n in db.session.scalars(select(Notification).order_by(Notification.id))]
    assert titles.count("Cleared: 1 dead event delivery") == 2
    assert [(b["key"], b["status"]) for b in receiver.bodies()] == [
        ("dead_letters", "firing"), ("dead_letters", "resolved")]
    assert alerts.evaluate(db.session, health=HEALTHY_WORKERS).cleared == []


def test_missing_worker_heartbeat_and_queue_depth(db, app, redis_client):
    # the real worker health of this test's Redis: no worker, no scheduler
    outcome = alerts.evaluate(db.session)
    keys = sorted(a.key for a in outcome.raised)
    assert "worker_heartbeat:workers" in keys and "worker_heartbeat:scheduler" in keys
    deep = {**HEALTHY_WORKERS, "queues": [{"name": "integrations", "depth": 5000, "workers": 1}]}
    outcome = alerts.evaluate(db.session, health=deep)
    assert [a.key for a in outcome.raised] == ["queue_depth:integrations"]
    assert sorted(a.key for a in outcome.cleared) == keys


def test_failed_webhook_is_retried_at_the_next_evaluation(db, receiver):
    receiver.status = 500
    run_row(db, "PAYMENTS", "failed", clock.now() - timedelta(minutes=1),
            errors=["report unavailable"])
    alerts.evaluate(db.session, health=HEALTHY_WORKERS)
    alert = db.session.scalar(select(Alert).where(Alert.rule == "run_failed"))
    assert (alert.webhook_status, alert.webhook_attempts) == ("failed", 1)
    receiver.status = 200
    alerts.evaluate(db.session, health=HEALTHY_WORKERS)
    db.session.refresh(alert)
    assert (alert.webhook_status, alert.webhook_attempts) == ("sent", 2)
    assert len(receiver.requests) == 2


def test_sync_run_failing_before_its_last_attempt_does_not_alert(db, app):
    run_row(db, "W4", "failed", clock.now() - timedelta(minutes=1), attempt=1)
    keys = [c.key for c in alerts.conditions(db.session, health=HEALTHY_WORKERS)]
    assert "run_failed:W4" not in keys
    run_row(db, "W4", "failed", clock.now(), attempt=app.config["SYNC_RETRIES"] + 1)
    keys = [c.key for c in alerts.conditions(db.session, health=HEALTHY_WORKERS)]
    assert "run_failed:W4" in keys


# --- the W4 outage, end to end ------------------------------------------------------------------


def sync_w4(db, client) -> IntegrationRun:
    """A minimal W4 run as the bank sync records it: one integration_runs row per attempt."""
    started = clock.now()
    run = IntegrationRun(integration="W4", kind="sync", trigger="schedule", status="running",
                         started_at=started, attempt=4)
    db.session.add(run)
    db.session.commit()
    try:
        records = sum(len(page.data) for page in client.card_pages())
    except Unavailable as exc:
        run.status, run.errors = "failed", [{"message": str(exc)}]
    else:
        run.status, run.extracted, run.loaded = "succeeded", records, records
    run.finished_at = clock.now()
    run.duration_ms = int((run.finished_at - started).total_seconds() * 1000)
    db.session.commit()
    return run


def test_w4_outage_card_down_breaker_open_alert_once_then_recovery(db, redis_client, receiver,
                                                                   make_user):
    make_user(role="ops")
    with ServerThread(create_app(seed_cards(30, 11))) as w4:
        clock = [1_000_000.0]
        breaker = Breaker("W4", failures=2, cooldown=60, redis=redis_client,
                          clock=lambda: clock[0])
        client = W4Client(w4.url, DEFAULT_API_KEY, retries=1, sleep=lambda s: None,
                          breaker=breaker, page_size=10)
        assert sync_w4(db, client).status == "succeeded"
        assert ops_health.card(db.session, "W4").state == "healthy"

        requests.put(f"{w4.url}/_sandbox/faults", json={"outage": True}, timeout=5)
        for _ in range(3):
            assert sync_w4(db, client).status == "failed"
        assert breaker.state().state == "open"
        card = ops_health.card(db.session, "W4")
        assert card.state == "down"
        assert "circuit breaker open" in card.reasons

        first = alerts.evaluate(db.session, health=HEALTHY_WORKERS)
        assert sorted(a.key for a in first.raised) == ["integration_down:W4", "run_failed:W4"]
        second = alerts.evaluate(db.session, health=HEALTHY_WORKERS)
        assert second.raised == []
        posted = receiver.bodies()
        assert sorted((b["key"], b["status"]) for b in posted) == [
            ("integration_down:W4", "firing"), ("run_failed:W4", "firing")]
        assert next(b for b in posted if b["key"] == "integration_down:W4")["severity"] == \
            "critical"

        requests.put(f"{w4.url}/_sandbox/faults", json={"outage": False}, timeout=5)
        clock[0] += 60  # the cool-down passed: the next call is the probe
        assert sync_w4(db, client).status == "succeeded"
        assert breaker.state().state == "closed"
        assert ops_health.card(db.session, "W4").state == "healthy"
        third = alerts.evaluate(db.session, health=HEALTHY_WORKERS)
        assert sorted(a.key for a in third.cleared) == ["integration_down:W4", "run_failed:W4"]
        statuses = [(b["key"], b["status"]) for b in receiver.bodies()[2:]]
        assert sorted(statuses) == [("integration_down:W4", "resolved"),
                                    ("run_failed:W4", "resolved")]
