"""Issue 19, finding 16: every job ops trigger from the health page records a run, including
one that had nothing to do (``skipped``, with the reason); the card and the run page say it.
Each action goes through the page, the queue and an in-process worker."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from sqlalchemy import select

from integrations.sandbox._api import ServerThread
from integrations.sandbox.callcentre_server import create_app as create_callcentre
from portal import clock
from portal.models import CallRecord, Discrepancy, IntegrationRun, ReconciliationRun
from tests.integration.test_events_support import drain

CC_KEY = "test-cc-key"


def run_now(client, csrf_token, integration: str) -> str:
    token = csrf_token("/ops/integrations")
    response = client.post(f"/ops/integrations/{integration}/run",
                           data={"csrf_token": token})
    assert response.status_code in (302, 303)
    return client.get(response.headers["Location"]).get_data(as_text=True)


@pytest.mark.parametrize("integration, setting, reason", [
    ("T24", None, "no T24 file set waiting in the inbox"),
    ("CTI", "CALLCENTRE_URL", "No call centre is configured"),
    ("PAYMENTS", "PAYMENTS_API_URL", "No payment system report is configured"),
    ("GPS", "GPS_API_URL", "No GPS system is configured"),
])
def test_run_now_with_nothing_to_do_records_a_skipped_run_with_its_reason(
        app, db, client, login_as, csrf_token, monkeypatch, tmp_path, integration, setting,
        reason):
    monkeypatch.setitem(app.config, "T24_INBOX_DIR", str(tmp_path / "t24"))  # empty inbox
    if setting:
        monkeypatch.setitem(app.config, setting, None)
    ops = login_as("ops")
    page = run_now(client, csrf_token, integration)
    assert "queued (job" in page or "enqueued (job" in page  # what the page promised
    drain(app, queues=("integrations",), timeout=120)
    db.session.rollback()
    runs = db.session.scalars(select(IntegrationRun).where(
        IntegrationRun.integration == integration)).all()
    assert len(runs) == 1, [(r.status, r.note) for r in runs]
    run = runs[0]
    assert (run.status, run.trigger) == ("skipped", "manual")
    assert reason in run.note
    if integration != "GPS":  # the GPS forward job is not told who asked
        assert run.triggered_by_id == ops.id
    detail = client.get(f"/ops/integrations/runs/{run.id}").get_data(as_text=True)
    assert 'data-testid="run-note"' in detail and reason in detail
    cards = client.get("/ops/integrations/cards").get_data(as_text=True)
    assert f'data-testid="last-run-note-{integration}"' in cards


@pytest.fixture
def call_centre(app, live_server, monkeypatch):
    sandbox = create_callcentre(agents=[], portal_url=live_server.url, secret="x",
                                api_key=CC_KEY, traffic=False)
    with ServerThread(sandbox) as server:
        monkeypatch.setitem(app.config, "CALLCENTRE_URL", server.url)
        monkeypatch.setitem(app.config, "CALLCENTRE_API_KEY", CC_KEY)
        yield server


def test_reconcile_calls_now_records_its_run_and_its_gaps(app, db, client, login_as,
                                                          csrf_token, make_user, call_centre):
    agent = make_user(role="agent")
    day = clock.add_days(clock.bank_today(), -1)  # "Reconcile calls now" takes yesterday
    started = clock.bank_datetime(day, time(9, 0))
    db.session.add(CallRecord(call_id="CRM-ONLY-1", phone="+84900000001", direction="outbound",
                              started_at=started, ended_at=started + timedelta(minutes=1),
                              duration_s=60, agent_id=agent.id, source="cti"))
    db.session.commit()
    ops = login_as("ops")
    for _ in range(2):
        run_now(client, csrf_token, "CTI")
        drain(app, queues=("integrations",), timeout=120)
    db.session.rollback()
    runs = db.session.scalars(select(IntegrationRun).where(
        IntegrationRun.integration == "CTI").order_by(IntegrationRun.id)).all()
    assert [(r.kind, r.trigger, r.status, r.business_date) for r in runs] == [
        ("reconcile", "manual", "partial", day)] * 2
    assert {r.triggered_by_id for r in runs} == {ops.id}
    assert runs[-1].control_totals["superseded"] == 1  # the first run's open gap
    recon = db.session.scalars(select(ReconciliationRun).order_by(ReconciliationRun.id)).all()
    assert [r.integration_run_id for r in recon] == [r.id for r in runs]
    open_gaps = db.session.scalars(select(Discrepancy).where(Discrepancy.status == "open")).all()
    assert [(g.kind, g.key, g.run_id) for g in open_gaps] == [
        ("missing_in_source", "CRM-ONLY-1", recon[-1].id)]
    cards = client.get("/ops/integrations/cards").get_data(as_text=True)
    assert f'data-testid="last-run-CTI">#{runs[-1].id}<' in cards


def test_sync_now_that_fails_before_loading_records_the_failed_run(app, db, client, login_as,
                                                                   csrf_token, monkeypatch):
    monkeypatch.setitem(app.config, "W4_API_URL", None)  # it cannot even start
    monkeypatch.setitem(app.config, "SYNC_RETRIES", 0)
    ops = login_as("ops")
    assert "enqueued (job" in run_now(client, csrf_token, "W4")
    drain(app, queues=("integrations",), timeout=120)
    db.session.rollback()
    (run,) = db.session.scalars(select(IntegrationRun).where(
        IntegrationRun.integration == "W4")).all()
    assert (run.status, run.trigger, run.triggered_by_id) == ("failed", "manual", ops.id)
    assert "W4 is not configured" in run.errors[0]
