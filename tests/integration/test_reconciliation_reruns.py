"""Issue 19, finding 4: reconciling a business date again lists each gap once. A re-run
supersedes the open gaps of that date (saying which run did); a gap a person resolved or
ignored keeps its resolution and is not opened again. Payments over real HTTP to the sandbox
payment system's report, calls to the sandbox call centre's call list."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from sqlalchemy import select, text

from integrations.callcentre.client import CallCentreClient
from integrations.payments.client import PaymentsClient
from integrations.sandbox._api import ServerThread
from integrations.sandbox.callcentre_server import create_app as create_callcentre
from integrations.sandbox.payments_server import Knobs, create_app
from portal import clock
from portal.calls import operations as calls
from portal.models import CallRecord, Discrepancy
from portal.payments.reconcile import reconcile
from tests.integration.test_payments_reconciliation import API_KEY, SECRET, create

CC_KEY = "test-cc-key"

# the invariant proposed for `flask check invariants`: no two open gaps of one date and key
OPEN_TWICE = text("""
SELECT r.integration, r.business_date, d.kind, d.key, array_agg(d.id ORDER BY d.id) AS ids
FROM discrepancies d JOIN reconciliation_runs r ON r.id = d.run_id
WHERE d.status = 'open'
GROUP BY r.integration, r.business_date, d.kind, d.key HAVING count(*) > 1
""")


@pytest.fixture
def sandbox(app, live_server):
    app_ = create_app(portal_url=live_server.url, secret=SECRET, api_key=API_KEY,
                      knobs=Knobs(), seed=19, senders=1)
    with ServerThread(app_) as server:
        yield server
        app_.extensions["payments_sandbox"].stop()


@pytest.fixture
def three_gaps(db, sandbox, make_user, make_customer, make_loan, make_payment):
    """Yesterday: a report transaction for a loan the CRM does not know (missing in CRM, cannot
    be ingested), one whose amount differs, and a CRM payment the report lacks."""
    customer = make_customer()
    loan = make_loan(customer, dpd=20)
    day = clock.add_days(clock.bank_today(), -1)
    when = clock.bank_datetime(day).astimezone(clock.bank_zone()).isoformat()
    create(sandbox, [{"loan_account_number": "LN-UNKNOWN", "cif": "C-X", "amount": "5000",
                      "paid_at": when, "reference_number": "ONLY-SOURCE"},
                     {"loan_account_number": loan.account_number, "cif": loan.cif,
                      "amount": "700000", "paid_at": when, "reference_number": "DIFF"}],
           notify=False)
    make_payment(loan, "600000", paid_at=clock.bank_datetime(day), reference_number="DIFF")
    make_payment(loan, "250000", paid_at=clock.bank_datetime(day), reference_number="ONLY-CRM")
    return day


def page_rows(client, **query) -> list[str]:
    page = client.get("/payments/reconciliation", query_string=query).get_data(as_text=True)
    return [chunk.split('data-kind="', 1)[1].split('"', 1)[0]
            for chunk in page.split('data-testid="discrepancy-row"')[1:]]


def test_reconciling_a_date_again_lists_each_gap_once_and_keeps_resolutions(
        app, db, client, login, make_user, sandbox, three_gaps):
    day = three_gaps
    with PaymentsClient(sandbox.url, API_KEY) as payments:
        first = reconcile(db.session, payments, day, trigger="manual")
        second = reconcile(db.session, payments, day, trigger="manual")
    assert first.open == second.open == 3
    assert second.superseded == 3
    assert db.session.execute(OPEN_TWICE).all() == []

    ops = make_user(role="ops")
    login(ops)
    assert sorted(page_rows(client)) == ["amount_mismatch", "missing_in_crm",
                                         "missing_in_source"]  # open, the default
    assert len(page_rows(client, status="all")) == 3  # the current rows, not the replaced
    replaced = db.session.scalars(select(Discrepancy).where(
        Discrepancy.status == "superseded")).all()
    assert {d.superseded_by_run_id for d in replaced} == {second.run_id}
    assert {d.run_id for d in replaced} == {first.run_id}
    assert len(page_rows(client, status="superseded")) == 3

    # a person resolves the amount gap; the next run keeps that resolution
    mismatch = db.session.scalar(select(Discrepancy).where(
        Discrepancy.status == "open", Discrepancy.kind == "amount_mismatch"))
    page = client.get("/payments/reconciliation").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    done = client.post(f"/payments/discrepancies/{mismatch.id}/resolve",
                       data={"csrf_token": token, "note": "Bank confirmed 700,000",
                             "outcome": "resolved"})
    assert done.status_code == 302
    db.session.rollback()
    with PaymentsClient(sandbox.url, API_KEY) as payments:
        third = reconcile(db.session, payments, day, trigger="manual")
    assert (third.open, third.settled, third.superseded) == (2, 1, 2)
    assert db.session.get(Discrepancy, mismatch.id).status == "resolved"
    assert sorted(page_rows(client)) == ["missing_in_crm", "missing_in_source"]
    assert sorted(page_rows(client, status="all")) == ["amount_mismatch", "missing_in_crm",
                                                       "missing_in_source"]
    assert db.session.execute(OPEN_TWICE).all() == []

    # a replaced gap cannot be resolved any more: the page says so, nothing changes
    stale = replaced[0]
    refused = client.post(f"/payments/discrepancies/{stale.id}/resolve",
                          data={"csrf_token": token, "note": "late", "outcome": "resolved"},
                          follow_redirects=True)
    assert "superseded already" in refused.get_data(as_text=True)
    db.session.rollback()
    assert db.session.get(Discrepancy, stale.id).status == "superseded"


@pytest.fixture
def call_list(app, live_server):
    """The sandbox call centre, with no calls: its list of any day is empty."""
    sandbox = create_callcentre(agents=[], portal_url=live_server.url, secret="x",
                                api_key=CC_KEY, traffic=False)
    with ServerThread(sandbox) as server:
        yield server


def test_reconciling_calls_of_a_date_again_supersedes_its_open_gaps(db, call_list,
                                                                    make_user):
    agent = make_user(role="agent")
    day = clock.add_days(clock.bank_today(), -1)
    started = clock.bank_datetime(day, time(10, 0))
    for n in range(2):  # CTI records the call centre does not list: missing in source
        db.session.add(CallRecord(call_id=f"LOST-{n}", phone="+84900000000",
                                  direction="outbound", started_at=started,
                                  ended_at=started + timedelta(minutes=2), duration_s=120,
                                  agent_id=agent.id, source="cti"))
    db.session.commit()
    with CallCentreClient(call_list.url, CC_KEY) as client:
        runs = []
        for _ in range(3):
            runs.append(calls.reconcile_day(db.session, client, day, trigger="manual"))
            db.session.commit()
    gaps = db.session.scalars(select(Discrepancy).order_by(Discrepancy.id)).all()
    assert [(g.kind, g.status) for g in gaps if g.status == "open"] == [
        ("missing_in_source", "open")] * 2
    assert {g.run_id for g in gaps if g.status == "open"} == {runs[-1].id}
    assert sum(1 for g in gaps if g.status == "superseded") == 4
    assert db.session.execute(OPEN_TWICE).all() == []
