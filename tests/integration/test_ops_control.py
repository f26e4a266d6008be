"""Pause/resume flags and circuit breakers (integrations/control.py) on real PostgreSQL and
Redis, and the breaker hook of JsonApiClient against the W4 simulator over real HTTP."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from integrations import control
from integrations.control import Breaker, BreakerOpen
from integrations.http import Unavailable
from integrations.sandbox._api import ServerThread
from integrations.sandbox.w4_server import DEFAULT_API_KEY, create_app, seed_cards
from integrations.w4.client import W4Client
from portal.clock import running_now
from portal.models import AuditLog, IntegrationSetting


class Clock:
    def __init__(self, start: float = 1_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def make_breaker(redis_client, clock):
    def make(system="W4", failures=3, cooldown=30):
        return Breaker(system, failures=failures, cooldown=cooldown, redis=redis_client,
                       clock=clock)

    return make


# --- pause / resume ---------------------------------------------------------------------------


def test_pause_flag_defaults_to_running_without_a_row(db):
    control.clear_pause_cache()
    assert db.session.get(IntegrationSetting, "W4") is None
    assert control.is_paused("W4") is False
    assert control.is_paused("NOT-AN-INTEGRATION") is False


def test_pause_and_resume_are_audited_and_seen_at_once(db, make_user):
    control.clear_pause_cache()
    ops = make_user(role="ops")
    assert control.is_paused("PAYMENTS") is False  # cached "running"
    control.pause("PAYMENTS", ops, "bank maintenance window")
    assert control.is_paused("PAYMENTS") is True  # this process forgot its cached answer
    setting = db.session.get(IntegrationSetting, "PAYMENTS")
    assert (setting.enabled, setting.changed_by_id, setting.change_reason) == \
        (False, ops.id, "bank maintenance window")
    control.resume("PAYMENTS", ops)
    assert control.is_paused("PAYMENTS") is False
    rows = db.session.scalars(select(AuditLog).order_by(AuditLog.id)).all()
    assert [(r.action, r.entity_id, r.actor_id) for r in rows] == [
        ("integration.paused", "PAYMENTS", ops.id), ("integration.resumed", "PAYMENTS", ops.id)]
    assert rows[0].after == {"enabled": False, "reason": "bank maintenance window"}
    assert rows[1].before == {"enabled": False, "reason": "bank maintenance window"}


def test_pause_flag_is_cached_for_a_few_seconds(db, make_user, monkeypatch):
    control.clear_pause_cache()
    assert control.is_paused("LOS") is False
    # another process pauses LOS: this one sees it only when its cache entry expires
    db.session.add(IntegrationSetting(integration="LOS", enabled=False))
    db.session.commit()
    assert control.is_paused("LOS") is False
    # (the time module is shared: the connection pool reads the same clock)
    monkeypatch.setattr(control.time, "monotonic", lambda: 1e9)
    assert control.is_paused("LOS") is True


def test_unknown_integration_cannot_be_paused(db):
    with pytest.raises(ValueError):
        control.pause("FAX", None, "no")


# --- breaker state machine --------------------------------------------------------------------


def test_breaker_opens_after_n_consecutive_failures(make_breaker):
    b = make_breaker(failures=3)
    assert b.state().state == "closed"
    b.record_failure("boom 1")
    b.record_failure("boom 2")
    b.record_success()  # the streak is broken: consecutive failures only
    b.record_failure("boom 3")
    b.record_failure("boom 4")
    assert b.allow() is True and b.state().state == "closed"
    b.record_failure("boom 5")
    state = b.state()
    assert (state.state, state.failures, state.last_error) == ("open", 3, "boom 5")
    assert b.allow() is False


def test_half_open_lets_one_probe_through_after_the_cooldown(make_breaker, clock):
    b = make_breaker(failures=1, cooldown=30)
    other_process = make_breaker(failures=1, cooldown=30)
    b.record_failure("down")
    clock.now += 29.9
    assert b.allow() is False
    clock.now += 0.2
    assert b.allow() is True  # the probe
    assert b.state().state == "half_open"
    assert other_process.allow() is False  # one probe at a time, across processes
    b.record_failure("still down")  # probe failed: open again, new cool-down
    assert b.state().state == "open"
    assert b.allow() is False
    clock.now += 30
    assert other_process.allow() is True
    other_process.record_success()
    assert b.state().state == "closed" and b.state().failures == 0
    assert b.allow() is True


def test_a_probe_that_never_reports_frees_the_slot(make_breaker, clock):
    b = make_breaker(failures=1, cooldown=10)
    b.record_failure("x")
    clock.now += 10
    assert b.allow() is True
    assert b.allow() is False
    clock.now += control.PROBE_TIMEOUT
    assert b.allow() is True


def test_forced_open_is_sticky_until_forced_closed(db, make_breaker, make_user, clock):
    ops = make_user(role="ops")
    b = make_breaker(failures=2, cooldown=5)
    b.force("open", ops, session=db.session, reason="vendor asked us to stop")
    db.session.commit()
    clock.now += 3600
    assert b.allow() is False  # no probe while forced
    b.record_success()
    assert b.state().state == "open" and b.state().forced
    b.force("closed", ops, session=db.session)
    db.session.commit()
    assert b.allow() is True and b.state().failures == 0
    actions = db.session.scalars(select(AuditLog.after).where(
        AuditLog.action == "breaker.forced").order_by(AuditLog.id)).all()
    assert actions == [{"state": "open", "reason": "vendor asked us to stop"},
                       {"state": "closed", "reason": None}]


def test_context_manager_and_decorator(make_breaker):
    b = make_breaker(failures=2)

    @b
    def flaky():
        raise ConnectionError("refused")

    for _ in range(2):
        with pytest.raises(ConnectionError):
            flaky()
    with pytest.raises(BreakerOpen) as refused, b:
        pytest.fail("must not run while open")
    assert refused.value.system == "W4"


def test_breaker_fails_open_when_redis_is_unreachable():
    from redis import Redis

    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, socket_timeout=0.2)
    b = Breaker("W4", failures=1, cooldown=1, redis=dead)
    b.record_failure("x")  # swallowed
    assert b.allow() is True


# --- the JsonApiClient hook, against the W4 simulator -----------------------------------------


@pytest.fixture
def w4_server():
    with ServerThread(create_app(seed_cards(20, 7))) as running:
        yield running


def test_client_breaker_opens_on_outage_and_closes_after_a_probe(w4_server, make_breaker,
                                                                  clock):
    b = make_breaker(failures=2, cooldown=60)
    client = W4Client(w4_server.url, DEFAULT_API_KEY, retries=1, sleep=lambda s: None,
                      breaker=b, page_size=5)
    assert client.card_pages().__next__().data  # healthy
    requests.put(f"{w4_server.url}/_sandbox/faults", json={"outage": True}, timeout=5)
    for _ in range(2):
        with pytest.raises(Unavailable):
            next(client.card_pages())
    assert b.state().state == "open"
    served = client.stats.requests
    with pytest.raises(Unavailable) as refused:
        next(client.card_pages())
    assert refused.value.code == "breaker_open"
    assert client.stats.requests == served  # not even attempted
    requests.put(f"{w4_server.url}/_sandbox/faults", json={"outage": False}, timeout=5)
    clock.now += 60
    assert next(client.card_pages()).data  # the probe succeeds
    assert b.state().state == "closed"


def test_resume_runs_the_hooks_and_survives_a_broken_one(db, make_user, monkeypatch):
    control.clear_pause_cache()
    ops = make_user(role="ops")
    seen = []
    # only this test's hooks (the product's own, e.g. releasing held payments, come back after)
    monkeypatch.setitem(control.RESUME_HOOKS, "PAYMENTS", [])

    def broken(name, user):
        raise RuntimeError("hook bug")

    control.register_resume_hook("PAYMENTS", broken)
    control.register_resume_hook("PAYMENTS", lambda name, user: seen.append((name, user.id)))
    control.pause("PAYMENTS", ops, "test")
    assert seen == []
    control.resume("PAYMENTS", ops)
    assert seen == [("PAYMENTS", ops.id)]
    assert control.is_paused("PAYMENTS") is False


def test_every_ops_button_enqueues_a_run_trigger_the_runs_table_accepts(db, make_user,
                                                                       redis_client):
    """The jobs behind "Sync now", "Reconcile now", "Forward now" and "Retry run" record their
    runs with a trigger of ``integration_runs`` (a value outside RUN_TRIGGERS fails the run's
    insert: every such run failed)."""
    from datetime import date

    from portal.models import IntegrationRun
    from portal.models.enums import RUN_TRIGGERS
    from portal.ops import actions as ops_actions
    from portal.queues import get_queue

    ops = make_user(role="ops")
    failed = IntegrationRun(integration="PAYMENTS", kind="reconcile", trigger="schedule",
                            status="failed", business_date=date(2026, 11, 23),
                            started_at=running_now())
    db.session.add(failed)
    db.session.commit()
    queue = get_queue("integrations", redis_client)
    for name, spec in ops_actions.TRIGGERS.items():
        for action in ("run_now", "full_resync", "retry_run"):
            if getattr(spec, action, None) is None or name == "EVENTS":
                continue
            run = failed if name == "PAYMENTS" and action == "retry_run" else None
            if action == "retry_run" and run is None:
                continue
            queue.empty()
            ops_actions.trigger(db.session, name, action, ops, run=run)
            jobs = queue.get_jobs()
            assert jobs, (name, action)
            for job in jobs:
                assert job.kwargs.get("trigger", "manual") in RUN_TRIGGERS, (name, action,
                                                                            job.kwargs)
