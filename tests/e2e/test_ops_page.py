"""Browser: the integration health page. W4's latest run is a real sync against the W4 sandbox
server (real HTTP, free port) that quarantined malformed cards and then failed in an outage. Ops
sees every card with its charts, opens that failed run, reads a quarantined record and its
reason, retries the run (the retry is enqueued and a real RQ worker runs the sync against the
recovered sandbox: the card turns healthy), then pauses the payments integration after
confirming and sees it paused. Screenshots in test-results/screenshots/ops-*.png."""

from __future__ import annotations

import random
import tempfile
from datetime import date, timedelta
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect
from sqlalchemy import select

from portal import clock
from tests.e2e.conftest import SCREENSHOTS
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.e2e

KINDS = {"PAYMENTS": "reconcile", "CTI": "reconcile", "GPS": "forward"}
EVERY_HOURS = {"T24": 24, "W4": 6, "LOS": 6, "PAYMENTS": 8, "CTI": 4, "GPS": 1}
MEDIAN_MS = {"T24": 48000, "W4": 9000, "LOS": 6500, "PAYMENTS": 3200, "CTI": 1400, "GPS": 350}
CUSTOMERS, PRODUCTS = 60, 90  # the W4 sandbox's portfolio (as in the W4 sync tests)
RECORDS = {"T24": 4200, "W4": 860, "LOS": 310, "PAYMENTS": 1200, "CTI": 640, "GPS": 90}


def seed_history(db, now):
    """A week of runs for each integration (a few failures) and the latest run of each but W4
    (whose latest run is the real sync of the test)."""
    from portal.models import IntegrationRun

    rnd = random.Random(9)
    for name, hours in EVERY_HOURS.items():
        at = now - timedelta(days=7) + timedelta(minutes=rnd.randint(5, 50))
        while at < now - timedelta(minutes=20):
            duration = int(MEDIAN_MS[name] * rnd.uniform(0.6, 1.6))
            failed = rnd.random() < 0.06
            extracted = int(RECORDS[name] * rnd.uniform(0.7, 1.3))
            db.session.add(IntegrationRun(
                integration=name, kind=KINDS.get(name, "sync"), trigger="schedule",
                status="failed" if failed else "succeeded", started_at=at,
                finished_at=at + timedelta(milliseconds=duration), duration_ms=duration,
                extracted=extracted, transformed=extracted, loaded=0 if failed else extracted,
                errors=[{"message": "connection reset by peer"}] if failed else None))
            at += timedelta(hours=hours, minutes=rnd.randint(-20, 20))
    # the latest runs: everyone healthy; W4's is the test's own
    for name in EVERY_HOURS:
        if name != "W4":
            db.session.add(IntegrationRun(
                integration=name, kind=KINDS.get(name, "sync"), trigger="schedule",
                status="succeeded", started_at=now - timedelta(minutes=12),
                finished_at=now - timedelta(minutes=11), duration_ms=MEDIAN_MS[name],
                extracted=RECORDS[name], loaded=RECORDS[name]))
    db.session.commit()
    seed_events(db, now, rnd)


def seed_events(db, now, rnd):
    """A week of events on the bus, each handled by one subscriber after a short lag."""
    from portal.models import Event, EventDelivery

    for n in range(240):
        at = now - timedelta(minutes=rnd.randint(5, 7 * 24 * 60))
        event = Event(type="LOAN_UPDATED", version=1, aggregate_type="loan",
                      aggregate_id=f"LN{n:06d}", payload={}, occurred_at=at, relayed_at=at)
        db.session.add(event)
        db.session.flush()
        dead = n in (17, 160)
        db.session.add(EventDelivery(
            event_id=event.id, subscriber="portal.workflow.subscribers.on_loan_updated",
            status="dead" if dead else "delivered", attempts=6 if dead else 1,
            delivered_at=None if dead else at + timedelta(milliseconds=rnd.randint(80, 2400)),
            updated_at=at + timedelta(minutes=30),
            last_error="IntegrityError: loan LN000017 is gone" if dead else None))
    db.session.commit()


@pytest.fixture
def w4_sandbox(app, monkeypatch):
    """The W4 sandbox server on a free port, with the customers its cards belong to loaded from
    T24 files; the sync configured to reach it with small pages and no retry back-off."""
    import psycopg

    from integrations.sandbox._api import ServerThread
    from integrations.sandbox.t24_files import SeedSource, generate_day
    from integrations.sandbox.w4_server import DEFAULT_API_KEY, create_app, seed_cards
    from integrations.t24.load import load_set
    from integrations.t24.manifest import verify
    from tests.integration.sync_helpers import pg_url

    with tempfile.TemporaryDirectory(prefix="e2e-w4-") as files:
        source = SeedSource(CUSTOMERS, PRODUCTS, business_date=date(2026, 11, 24))
        with psycopg.connect(pg_url(app), autocommit=True) as conn:
            load_set(conn, verify(generate_day(Path(files) / "t24", source)))
            conn.execute("TRUNCATE events, integration_runs CASCADE")
    with ServerThread(create_app(seed_cards(CUSTOMERS, PRODUCTS))) as server:
        for key, value in {"W4_API_URL": server.url, "W4_API_KEY": DEFAULT_API_KEY,
                           "SYNC_PAGE_SIZE": 10, "SYNC_HTTP_RETRIES": 0, "SYNC_RETRIES": 0,
                           "SYNC_RETRY_BACKOFF": 0}.items():
            monkeypatch.setitem(app.config, key, value)
        yield server


def faults(server, **knobs):
    assert requests.put(f"{server.url}/_sandbox/faults", json=knobs, timeout=5).ok


def failed_w4_sync(app, server):
    """A real W4 sync: pages with malformed cards (quarantined), then an outage (the run fails
    after its attempts). Returns the failed run."""
    from integrations.sync import SyncError, run_sync
    from portal.extensions import db
    from portal.models import IntegrationRun, QuarantinedRecord

    faults(server, malformed_rate=0.3, outage_after=1)  # one page served, then down
    with pytest.raises(SyncError, match="W4 unavailable"):
        run_sync("W4", app=app, trigger="schedule")
    db.session.expire_all()
    run = db.session.scalars(select(IntegrationRun).where(IntegrationRun.integration == "W4")
                             .order_by(IntegrationRun.id.desc())).first()
    assert run.status == "failed" and run.quarantined > 0
    quarantined = db.session.scalars(select(QuarantinedRecord).where(
        QuarantinedRecord.run_id == run.id).order_by(QuarantinedRecord.id)).all()
    assert len(quarantined) == run.quarantined
    return run, quarantined[0]


def run_queued_syncs(app) -> list:
    """What a worker of the integrations queue does with the jobs the ops page enqueued: a real
    RQ worker (in this process, burst mode) runs them."""
    from rq.registry import FailedJobRegistry, FinishedJobRegistry

    from portal.queues import get_queue
    from tests.integration.test_events_support import drain, worker_connection

    queue = get_queue("integrations", worker_connection(app))
    assert queue.count == 1  # the retry the button enqueued
    drain(app, queues=("integrations",), timeout=60)
    assert FailedJobRegistry(queue=queue).get_job_ids() == []
    return FinishedJobRegistry(queue=queue).get_job_ids()


def test_ops_health_page_retry_and_pause(app, page, live_server, db, make_user, redis_client,
                                         w4_sandbox, sign_in, screenshot):
    from integrations import control
    from portal.models import IntegrationRun

    control.clear_pause_cache()
    now = clock.now()
    seed_history(db, now)
    failed, bad_card = failed_w4_sync(app, w4_sandbox)
    control.breaker("CTI").force("open", "e2e", reason="vendor maintenance")
    db.session.commit()
    make_user(role="ops", username="minh.ops", full_name="Tran Van Minh")
    sign_in(page, "minh.ops", DEFAULT_PASSWORD)
    page.get_by_role("link", name="Integrations").click()
    expect(page.get_by_role("heading", name="Integration health")).to_be_visible()
    for name in ("T24", "W4", "LOS", "PAYMENTS", "CTI", "GPS", "EVENTS", "STRATEGIES"):
        expect(page.get_by_test_id(f"card-{name}")).to_be_visible()
    # the bus: events per day, hour; the push integrations: their traffic per hour
    expect(page.locator("svg.chart")).to_have_count(7 * 3 + 2 + 3)  # the strategies' run: 3
    expect(page.get_by_test_id("state-W4")).to_have_text("Degraded")
    expect(page.get_by_test_id("state-CTI")).to_have_text("Down")
    expect(page.get_by_test_id("state-T24")).to_have_text("Healthy")
    screenshot(page, "ops-health")

    # the failed run: counts, quarantined record with its reason, retry
    page.get_by_test_id("last-run-W4").click()
    expect(page.get_by_role("heading", name=f"W4 card system · run {failed.id}")).to_be_visible()
    expect(page.get_by_test_id("quarantine-reason").first).to_have_text(bad_card.reason)
    expect(page.get_by_test_id("quarantined")).to_contain_text(bad_card.record_key)
    expect(page.get_by_test_id("run-errors")).to_contain_text("W4 unavailable")
    expect(page.get_by_test_id("log-lines")).to_contain_text("sync attempt failed")
    screenshot(page, "ops-run-detail")

    # W4 is back; ops retries the run, the worker runs the sync, the card turns healthy
    faults(w4_sandbox, outage=False, outage_after=None, malformed_rate=0)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("retry-run").click()
    expect(page.get_by_text(f"W4 run {failed.id} retried")).to_be_visible()
    assert len(run_queued_syncs(app)) == 1
    db.session.expire_all()
    latest = db.session.scalars(select(IntegrationRun).where(IntegrationRun.integration == "W4")
                                .order_by(IntegrationRun.id.desc())).first()
    assert latest.id > failed.id and latest.status == "succeeded" and latest.loaded > 0

    page.get_by_role("link", name="Integration health").first.click()
    expect(page.get_by_test_id("state-W4")).to_have_text("Healthy")

    # pause payments: dismissing the confirmation changes nothing, accepting pauses it
    card = page.get_by_test_id("card-PAYMENTS")
    card.get_by_test_id("menu-PAYMENTS").locator("summary").click()
    card.get_by_test_id("reason-input-PAYMENTS").fill("payment system maintenance 22:00")
    page.screenshot(path=str(SCREENSHOTS / "ops-pause-menu.png"),
                    clip={**card.bounding_box(), "y": card.bounding_box()["y"] - 40,
                          "height": card.bounding_box()["height"] + 40})
    page.once("dialog", lambda dialog: dialog.dismiss())
    card.get_by_test_id("pause-PAYMENTS").click()
    expect(page.get_by_test_id("state-PAYMENTS")).to_have_text("Healthy")
    assert control.is_paused("PAYMENTS") is False
    page.once("dialog", lambda dialog: dialog.accept())
    card.get_by_test_id("pause-PAYMENTS").click()
    expect(page.get_by_text("Payments paused")).to_be_visible()
    expect(page.get_by_test_id("state-PAYMENTS")).to_have_text("Paused")
    expect(page.get_by_test_id("reason-PAYMENTS")).to_contain_text(
        "payment system maintenance 22:00")
    control.clear_pause_cache()
    assert control.is_paused("PAYMENTS") is True
    screenshot(page, "ops-health-paused")

    page.get_by_role("link", name="Workers & queues").first.click()
    expect(page.get_by_role("heading", name="Workers and queues")).to_be_visible()
    expect(page.get_by_test_id("queues")).to_contain_text("integrations")
    screenshot(page, "ops-workers")
