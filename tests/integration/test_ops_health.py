"""Health derivation from hand-made integration_runs rows: states, exact p50/p95, rates, last
success/failure, quarantined and backlog figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from integrations import control
from integrations.control import Breaker
from portal.models import IntegrationRun, QuarantinedRecord
from portal.ops import health as ops_health

NOW = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)


@pytest.fixture
def add_run(db):
    def add(integration, status, *, minutes_ago, duration_ms=1000, loaded=10, extracted=10,
            attempt=1, kind="sync", **kwargs):
        started = NOW - timedelta(minutes=minutes_ago)
        finished = None if status == "running" else started + timedelta(milliseconds=duration_ms)
        run = IntegrationRun(integration=integration, kind=kind, trigger="schedule",
                             status=status, started_at=started, finished_at=finished,
                             duration_ms=None if status == "running" else duration_ms,
                             loaded=loaded, extracted=extracted, attempt=attempt, **kwargs)
        db.session.add(run)
        db.session.commit()
        return run

    return add


def by_name(cards):
    return {c.name: c for c in cards}


def test_states_figures_and_exact_percentiles(db, add_run, make_user, redis_client):
    control.clear_pause_cache()
    # W4: ten successful runs in the last 24 h, 100..1000 ms
    for i in range(10):
        add_run("W4", "succeeded", minutes_ago=60 * (i + 1), duration_ms=100 * (i + 1),
                loaded=5 * (i + 1))
    # and, two days ago, a slow failed one (only in the 7-day window)
    add_run("W4", "failed", minutes_ago=2 * 24 * 60, duration_ms=20000, loaded=0,
            errors=[{"message": "HTTP 503"}])
    # LOS: the last run failed once (degraded)
    add_run("LOS", "succeeded", minutes_ago=120)
    failed = add_run("LOS", "failed", minutes_ago=30, errors=["W4 unavailable: HTTP 503"])
    # T24: the last two runs failed (down), a success before them
    add_run("T24", "succeeded", minutes_ago=300)
    streak_start = add_run("T24", "failed", minutes_ago=200)
    add_run("T24", "failed", minutes_ago=100)
    t24_latest = add_run("T24", "failed", minutes_ago=50)
    db.session.add(QuarantinedRecord(integration="T24", run_id=t24_latest.id, entity="loan",
                                     reason="dpd is negative", payload={"dpd": -3}))
    db.session.commit()
    # GPS: healthy by its runs, but paused by ops
    add_run("GPS", "succeeded", minutes_ago=5, kind="forward")
    control.pause("GPS", make_user(role="ops"), "GPS vendor upgrade")
    # CTI: runs fine, but its breaker is open (down)
    add_run("CTI", "succeeded", minutes_ago=15, kind="reconcile")
    cti = Breaker("CTI", failures=1, redis=redis_client)
    cti.record_failure("connection refused")

    cards = by_name(ops_health.collect_cards(db.session, now=NOW))
    w4 = cards["W4"]
    assert w4.state == "healthy" and w4.reasons == []
    assert (w4.day.runs, w4.day.failed, w4.week.runs, w4.week.failed) == (10, 0, 11, 1)
    assert w4.day.p50_ms == pytest.approx(550.0)
    assert w4.day.p95_ms == pytest.approx(955.0)  # 900 + 0.55 * (1000 - 900)
    # 7 d: 100..1000 and 20000 → median 600, p95 at rank 9.5 → 1000 + .5 * 19000
    assert w4.week.p50_ms == pytest.approx(600.0)
    assert w4.week.p95_ms == pytest.approx(10500.0)
    assert w4.day.success_rate == 1.0
    assert w4.week.failure_rate == pytest.approx(1 / 11)
    assert w4.day.loaded_per_run == pytest.approx(27.5)
    assert w4.last_success == NOW - timedelta(minutes=60) + timedelta(milliseconds=100)
    assert w4.last_failure == NOW - timedelta(days=2) + timedelta(seconds=20)
    assert w4.last_error == "HTTP 503"
    assert sum(d["ok"] for d in w4.daily) == 10 and sum(d["failed"] for d in w4.daily) == 1
    assert sum(h["ok"] for h in w4.hourly) == 10

    los = cards["LOS"]
    assert (los.state, los.reasons) == ("degraded", ["last run failed"])
    assert los.last_failed_run["id"] == failed.id
    assert los.last_error == "W4 unavailable: HTTP 503"

    t24 = cards["T24"]
    assert t24.state == "down"
    assert t24.reasons == ["last 3 runs failed"]
    assert t24.down_since == streak_start.started_at == NOW - timedelta(minutes=200)
    assert t24.quarantined_open == 1

    gps = cards["GPS"]
    assert gps.state == "paused"
    assert gps.reasons[0] == "paused by ops: GPS vendor upgrade"

    assert cards["CTI"].state == "down"
    assert cards["CTI"].reasons == ["circuit breaker open"]
    assert cards["CTI"].breaker.last_error == "connection refused"

    assert cards["PAYMENTS"].state == "unknown"
    assert ops_health.summary(list(cards.values()))["down"] == 2


def test_event_bus_backlog_providers(db):
    from portal.models import Event, EventDelivery

    relayed = Event(type="CUSTOMER_UPDATED", version=1, aggregate_type="customer",
                    aggregate_id="CIF1", payload={}, relayed_at=NOW)
    db.session.add_all([relayed, Event(type="CUSTOMER_UPDATED", version=1,
                                       aggregate_type="customer", aggregate_id="CIF2",
                                       payload={})])
    db.session.flush()
    db.session.add(EventDelivery(event_id=relayed.id, subscriber="x.y", status="dead"))
    db.session.commit()
    events = ops_health.card(db.session, "EVENTS", now=NOW)
    backlog = {b["label"]: b["value"] for b in events.backlogs}
    assert backlog["unrelayed events"] == 1
    assert backlog["dead letters"] == 1
    assert events.state == "degraded" and events.reasons == ["1 dead letters"]


def test_a_provider_on_a_missing_table_shows_unavailable(db):
    ops_health.register_backlog("GPS", "test: missing table",
                                lambda s: s.execute(ops_health.text(
                                    "SELECT count(*) FROM no_such_table")).scalar())
    try:
        gps = ops_health.card(db.session, "GPS", now=NOW)
        row = next(b for b in gps.backlogs if b["label"] == "test: missing table")
        assert row["value"] is None and row["error"] == "ProgrammingError"
        # the session is still usable after the failed provider
        assert ops_health.card(db.session, "W4", now=NOW).state == "unknown"
    finally:
        ops_health.BACKLOGS.pop(("GPS", "test: missing table"))


def test_a_backlog_over_its_threshold_degrades_the_card(db):
    ops_health.register_backlog("GPS", "test: stuck", lambda s: 12, degraded_at=10, down_at=50)
    try:
        gps = ops_health.card(db.session, "GPS", now=NOW)
        assert gps.state == "degraded" and "12 test: stuck" in gps.reasons
    finally:
        ops_health.BACKLOGS.pop(("GPS", "test: stuck"))
