"""Browser: the integration health page. Ops sees every card with its charts, opens W4's failed
run, reads the quarantined record and its reason, retries the run (the card turns healthy),
then pauses the payments integration after confirming and sees it paused. Screenshots in
test-results/screenshots/ops-*.png."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import SCREENSHOTS
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.e2e

KINDS = {"PAYMENTS": "reconcile", "CTI": "reconcile", "GPS": "forward"}
EVERY_HOURS = {"T24": 24, "W4": 6, "LOS": 6, "PAYMENTS": 8, "CTI": 4, "GPS": 1}
MEDIAN_MS = {"T24": 48000, "W4": 9000, "LOS": 6500, "PAYMENTS": 3200, "CTI": 1400, "GPS": 350}
RECORDS = {"T24": 4200, "W4": 860, "LOS": 310, "PAYMENTS": 1200, "CTI": 640, "GPS": 90}


def seed_history(db, now):
    """A week of runs for each integration (a few failures), W4's latest failed with a
    quarantined record, and the CTI breaker open."""
    from portal.models import IntegrationRun, QuarantinedRecord

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
    # the latest runs: everyone healthy but W4, whose latest run failed with a bad record
    for name in EVERY_HOURS:
        if name != "W4":
            db.session.add(IntegrationRun(
                integration=name, kind=KINDS.get(name, "sync"), trigger="schedule",
                status="succeeded", started_at=now - timedelta(minutes=12),
                finished_at=now - timedelta(minutes=11), duration_ms=MEDIAN_MS[name],
                extracted=RECORDS[name], loaded=RECORDS[name]))
    failed = IntegrationRun(
        integration="W4", kind="sync", trigger="schedule", status="failed",
        started_at=now - timedelta(minutes=9), finished_at=now - timedelta(minutes=8),
        duration_ms=41000, extracted=900, transformed=899, loaded=640, quarantined=1,
        failed=0, attempt=4, correlation_id="e2e-w4-run", control_totals={"pages": 9},
        errors=[{"message": "W4 unavailable: HTTP 503 (gave up after 5 attempts)"}])
    db.session.add(failed)
    db.session.flush()
    db.session.add(QuarantinedRecord(
        integration="W4", run_id=failed.id, entity="card", record_key="4123-XXXX-0042",
        reason="credit_limit must not be negative",
        raw='{"contract_number": "4123-XXXX-0042", "credit_limit": -5000000, "cif": "CIF00012"}'))
    db.session.commit()
    seed_events(db, now, rnd)
    seed_log_lines("e2e-w4-run")
    return failed


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


def seed_log_lines(correlation_id):
    """What the W4 sync logged under its correlation id (kept by the capture handler)."""
    import logging

    from portal.logging import correlation_scope

    log = logging.getLogger("integrations.sync")
    with correlation_scope(correlation_id):
        log.info("sync started", extra={"integration": "W4", "attempt": 4})
        log.info("page loaded", extra={"integration": "W4", "page": 8, "records": 100})
        log.warning("record quarantined", extra={"integration": "W4",
                                                 "record_key": "4123-XXXX-0042"})
        log.error("sync attempt failed", extra={"integration": "W4", "attempt": 4,
                                                "error": "W4 unavailable: HTTP 503"})


@pytest.fixture
def w4_retry(db):
    """The W4 retry trigger, as the bank sync registers it: here it records a good run."""
    from portal.extensions import db as _db
    from portal.models import IntegrationRun
    from portal.services import ops_actions

    def retry(*, user, run):
        now = datetime.now(UTC)
        _db.session.add(IntegrationRun(
            integration="W4", kind="sync", trigger="retry", status="succeeded",
            started_at=now - timedelta(seconds=8), finished_at=now, duration_ms=8000,
            extracted=900, transformed=900, loaded=900, retry_of_id=run.id, attempt=1,
            triggered_by_id=user.id))
        _db.session.commit()
        return f"W4 sync retried (run {run.id})"

    saved = ops_actions.TRIGGERS.pop("W4", None)
    ops_actions.register_trigger("W4", retry_run=retry)
    yield
    ops_actions.TRIGGERS.pop("W4", None)
    if saved:
        ops_actions.TRIGGERS["W4"] = saved


def test_ops_health_page_retry_and_pause(page, live_server, db, make_user, redis_client,
                                         w4_retry, sign_in, screenshot):
    from integrations import control

    control.clear_pause_cache()
    now = datetime.now(UTC)
    failed = seed_history(db, now)
    control.breaker("CTI").force("open", "e2e", reason="vendor maintenance")
    db.session.commit()
    make_user(role="ops", username="minh.ops", full_name="Tran Van Minh")
    sign_in(page, "minh.ops", DEFAULT_PASSWORD)
    page.get_by_role("link", name="Integrations").click()
    expect(page.get_by_role("heading", name="Integration health")).to_be_visible()
    for name in ("T24", "W4", "LOS", "PAYMENTS", "CTI", "GPS", "EVENTS"):
        expect(page.get_by_test_id(f"card-{name}")).to_be_visible()
    expect(page.locator("svg.chart")).to_have_count(6 * 3 + 2)  # the bus: events per day, hour
    expect(page.get_by_test_id("state-W4")).to_have_text("Degraded")
    expect(page.get_by_test_id("state-CTI")).to_have_text("Down")
    expect(page.get_by_test_id("state-T24")).to_have_text("Healthy")
    screenshot(page, "ops-health")

    # the failed run: counts, quarantined record with its reason, retry
    page.get_by_test_id("last-run-W4").click()
    expect(page.get_by_role("heading", name=f"W4 card system · run {failed.id}")).to_be_visible()
    expect(page.get_by_test_id("quarantine-reason")).to_have_text(
        "credit_limit must not be negative")
    expect(page.get_by_test_id("quarantined")).to_contain_text("-5000000")
    expect(page.get_by_test_id("run-errors")).to_contain_text("HTTP 503")
    expect(page.get_by_test_id("log-lines")).to_contain_text("sync attempt failed")
    screenshot(page, "ops-run-detail")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("retry-run").click()
    expect(page.get_by_text(f"W4 sync retried (run {failed.id})")).to_be_visible()

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
