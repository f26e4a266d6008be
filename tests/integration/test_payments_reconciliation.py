"""Real HTTP both ways: the sandbox payment system posts signed webhooks to the portal (live
server) with duplicates, shuffled order, dropped and badly signed notifications; the daily
reconciliation reads its report, ingests what was dropped (exactly once), and after the events
are delivered the CRM holds exactly the payment system's transactions, every promise status and
every loan balance as expected."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import requests
from sqlalchemy import func, select

from integrations.http import Unavailable
from integrations.payments.client import PaymentsClient
from integrations.sandbox._api import ServerThread
from integrations.sandbox.payments_server import Knobs, create_app
from portal import clock
from portal.models import (
    AuditLog,
    Case,
    Discrepancy,
    Event,
    EventDelivery,
    Loan,
    Payment,
    Promise,
    ReconciliationRun,
)
from portal.models.payments import RejectedNotification
from portal.payments.reconcile import reconcile
from tests.integration.test_events_support import drain
from workers.jobs.payments import run_payments_reconciliation

SECRET = "test-payments-current"
API_KEY = "test-payments-key"
DUE = Decimal("50000000")
OUTSTANDING = Decimal("200000000")
PROMISED = Decimal("12000000")


@pytest.fixture
def sandbox(app, live_server):
    app_ = create_app(portal_url=live_server.url, secret=SECRET, api_key=API_KEY,
                      knobs=Knobs(), seed=6, senders=4)
    with ServerThread(app_) as server:
        server.system = app_.extensions["payments_sandbox"]
        yield server
        server.system.stop()


@pytest.fixture
def portfolio(db, make_user, make_customer, make_loan, make_case, make_promise):
    """40 customers, one loan each (50M due, 200M outstanding), a case with an agent and a
    pending 12M promise in 5 days."""
    agent = make_user(role="agent")
    loans = []
    for _ in range(40):
        customer = make_customer()
        loan = make_loan(customer, dpd=20, due_amount=DUE, outstanding=OUTSTANDING)
        make_case(customer, agent, total_overdue=DUE, max_dpd=20)
        make_promise(customer, PROMISED, clock.bank_today() + timedelta(days=5), loan=loan,
                     agent=agent)
        loans.append(loan)
    return loans


def yesterday_times(rng: random.Random, n: int) -> list[str]:
    """``n`` moments of yesterday's business date (bank zone), as ISO strings with offset."""
    day = clock.add_days(clock.bank_today(), -1)
    start = clock.bank_datetime(day, datetime.min.time())
    return [(start + timedelta(seconds=rng.randrange(1, 86399))).astimezone(
        clock.bank_zone()).isoformat(timespec="seconds") for _ in range(n)]


def create(server, items: list[dict], **body) -> list[dict]:
    r = requests.post(server.url + "/_sandbox/transactions",
                      json={"transactions": items, **body}, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()["transactions"]


def test_thousand_notifications_with_duplicates_shuffle_and_drops_reconcile_exactly(
        app, db, sandbox, portfolio, monkeypatch):
    rng = random.Random(2026)
    system = sandbox.system
    system.knobs.update({"duplicate_rate": 0.3, "reorder_ms": 4000, "drop_rate": 0.05,
                         "bad_signature_rate": 0.02, "max_attempts": 8})
    # 930 payments received, 30 failed attempts, then 40 reversals of received payments
    times = yesterday_times(rng, 960)
    items = []
    for i in range(960):
        loan = rng.choice(portfolio)
        items.append({"type": "payment.failed" if i % 32 == 0 else "payment.received",
                      "loan_account_number": loan.account_number, "cif": loan.cif,
                      "amount": str(rng.randrange(100, 1500) * 1000), "currency": "VND",
                      "paid_at": times[i], "reason": "insufficient funds"})
    created = create(sandbox, items)
    received = [t for t in created if t["type"] == "payment.received"]
    to_reverse = rng.sample(received, 40)
    reversal_times = {t["reference_number"]: max(t["paid_at"], times[0]) for t in to_reverse}
    create(sandbox, [{"type": "payment.reversed", "original_reference": t["reference_number"],
                      "paid_at": reversal_times[t["reference_number"]], "reason": "chargeback"}
                     for t in to_reverse])
    assert system.wait_idle(240), "the sandbox did not deliver every notification in time"
    stats = requests.get(sandbox.url + "/_sandbox/deliveries", timeout=5).json()
    assert stats["transactions"] == 1000
    assert stats["dropped"] > 20 and stats["duplicates"] > 200
    assert stats["bad_signatures"] > 0

    business_date = clock.add_days(clock.bank_today(), -1)
    monkeypatch.setitem(app.config, "PAYMENTS_API_URL", sandbox.url)
    summary = run_payments_reconciliation(business_date.isoformat(), "manual")
    assert summary["status"] == "succeeded", summary
    assert summary["open"] == 0
    assert summary["ingested"] >= stats["dropped"]
    assert summary["matched"] == 1000
    drain(app, timeout=600)
    db.session.rollback()  # forget the rows this session loaded before the deliveries

    # the CRM holds exactly the payment system's transactions
    truth = {t["reference_number"]: t for t in system.transactions.values()}
    crm = {p.reference_number: p for p in db.session.scalars(select(Payment))}
    assert set(crm) == set(truth)
    for ref, txn in truth.items():
        assert crm[ref].amount == Decimal(txn["amount"]), ref
        assert crm[ref].status == txn["status"], ref
    assert sum(1 for p in crm.values() if p.source == "reconciliation") == summary["ingested"]
    # one event per transaction, none doubled
    events = dict(db.session.execute(select(Event.type, func.count()).group_by(Event.type))
                  .all())
    assert events["PAYMENT_RECEIVED"] == sum(1 for t in truth.values()
                                             if t["type"] == "payment.received")
    assert events["PAYMENT_FAILED"] == sum(1 for t in truth.values()
                                           if t["type"] == "payment.failed")
    assert events["PAYMENT_REVERSED"] == 40

    deliveries = dict(db.session.execute(
        select(EventDelivery.status, func.count())
        .where(EventDelivery.subscriber.like("payments.%"))
        .group_by(EventDelivery.status)).all())
    assert deliveries == {"delivered": 1000}, db.session.scalars(
        select(EventDelivery.last_error).where(EventDelivery.status != "delivered").limit(3)).all()

    # every loan balance and promise as the remaining payments say
    net: dict[str, Decimal] = defaultdict(Decimal)
    for txn in truth.values():
        if txn["type"] == "payment.received" and txn["status"] == "received":
            net[txn["loan_account_number"]] += Decimal(txn["amount"])
    for loan in db.session.scalars(select(Loan)):
        paid = net[loan.account_number]
        assert loan.outstanding == OUTSTANDING - paid, loan.account_number
        assert loan.due_amount == DUE - paid, loan.account_number
        promise = db.session.scalar(select(Promise).where(
            Promise.account_number == loan.account_number))
        assert promise.paid_amount == min(PROMISED, paid), loan.account_number
        expected = "kept" if paid >= PROMISED else "partially_kept" if paid else "pending"
        assert promise.status == expected, loan.account_number
        case = db.session.scalar(select(Case).where(Case.cif == loan.cif))
        assert case.total_overdue == DUE - paid
    applied = db.session.execute(select(Payment.status, func.sum(Payment.applied_amount))
                                 .group_by(Payment.status)).all()
    assert {s: v for s, v in applied if v} == {"received": sum(net.values())}

    # refused first attempts were logged; a second run finds nothing to do
    assert db.session.scalar(select(func.count()).select_from(RejectedNotification)) > 0
    db.session.rollback()
    again = run_payments_reconciliation(business_date.isoformat(), "manual")
    assert again["ingested"] == 0 and again["matched"] == 1000 and again["open"] == 0
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 1000


def test_gaps_the_portal_cannot_close_are_left_for_ops_who_resolve_them(
        app, db, client, sandbox, portfolio, make_payment, login, make_user):
    loan = portfolio[0]
    day = clock.add_days(clock.bank_today(), -1)
    when = clock.bank_datetime(day).astimezone(clock.bank_zone()).isoformat()
    # in the payment system only: one for a loan the CRM does not know
    create(sandbox, [{"loan_account_number": "LN-UNKNOWN", "cif": "C-X", "amount": "5000",
                      "paid_at": when, "reference_number": "ONLY-SOURCE"}], notify=False)
    # in both, but amounts differ
    create(sandbox, [{"loan_account_number": loan.account_number, "cif": loan.cif,
                      "amount": "700000", "paid_at": when, "reference_number": "DIFF"}],
           notify=False)
    make_payment(loan, "600000", paid_at=clock.bank_datetime(day), reference_number="DIFF")
    # in the CRM only
    make_payment(loan, "250000", paid_at=clock.bank_datetime(day), reference_number="ONLY-CRM")

    with PaymentsClient(sandbox.url, API_KEY) as payments:
        summary = reconcile(db.session, payments, day, trigger="manual")
    assert summary.status == "partial"
    assert summary.kinds == {"missing_in_crm": 1, "amount_mismatch": 1, "missing_in_source": 1}
    open_rows = db.session.scalars(select(Discrepancy).where(Discrepancy.status == "open")
                                   ).all()
    assert {d.kind for d in open_rows} == {"missing_in_crm", "amount_mismatch",
                                           "missing_in_source"}
    unknown = next(d for d in open_rows if d.kind == "missing_in_crm")
    assert unknown.crm_value["error"] == "unknown_loan"
    run = db.session.get(ReconciliationRun, summary.run_id)
    assert run.source_count == 2 and run.crm_count == 2 and run.discrepancy_count == 3
    target = next(d for d in open_rows if d.kind == "amount_mismatch").id
    db.session.rollback()

    ops = login(make_user(role="ops"))
    page = client.get("/payments/reconciliation?status=open")
    assert page.status_code == 200 and "DIFF" in page.get_data(as_text=True)
    token = page.get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    refused = client.post(f"/payments/discrepancies/{target}/resolve",
                          data={"csrf_token": token, "note": ""})
    assert refused.status_code == 302
    assert db.session.get(Discrepancy, target).status == "open"
    db.session.rollback()
    done = client.post(f"/payments/discrepancies/{target}/resolve",
                       data={"csrf_token": token, "note": "Bank confirmed 700,000; CRM fixed",
                             "outcome": "resolved"})
    assert done.status_code == 302
    row = db.session.get(Discrepancy, target)
    assert row.status == "resolved" and row.resolved_by_id == ops.id
    audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "discrepancy.resolve"))
    assert audit.after["resolution"] == "Bank confirmed 700,000; CRM fixed"


def test_report_outage_records_a_failed_run(app, db, sandbox):
    sandbox.system.knobs.update({"outage": True})
    with PaymentsClient(sandbox.url, API_KEY, retries=1, backoff=0.01) as payments, \
            pytest.raises(Unavailable):
        reconcile(db.session, payments, clock.add_days(clock.bank_today(), -1))
    run = db.session.scalar(select(ReconciliationRun))
    assert run.status == "failed"


def test_wrong_api_key_is_refused_by_the_report(sandbox):
    r = requests.get(sandbox.url + f"/api/v1/reports/{clock.now().date()}/transactions",
                     headers={"X-API-Key": "nope"}, timeout=5)
    assert r.status_code == 401


def test_ops_queue_a_reconciliation_that_a_worker_runs(app, db, client, sandbox, portfolio,
                                                       login, make_user, monkeypatch):
    loan = portfolio[0]
    day = clock.add_days(clock.bank_today(), -1)
    when = clock.bank_datetime(day).astimezone(clock.bank_zone()).isoformat()
    create(sandbox, [{"loan_account_number": loan.account_number, "cif": loan.cif,
                      "amount": "420000", "paid_at": when, "reference_number": "DROPPED-1"}],
           notify=False)
    monkeypatch.setitem(app.config, "PAYMENTS_API_URL", sandbox.url)
    login(make_user(role="ops"))
    page = client.get("/payments/reconciliation").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    response = client.post("/payments/reconciliation/run",
                           data={"csrf_token": token, "business_date": day.isoformat()})
    assert response.status_code == 302
    drain(app, queues=("integrations", "events"), timeout=120)
    db.session.rollback()
    run = db.session.scalar(select(ReconciliationRun))
    assert run.status == "succeeded" and run.business_date == day and run.matched_count == 1
    payment = db.session.scalar(select(Payment).where(Payment.reference_number == "DROPPED-1"))
    assert payment.source == "reconciliation" and payment.applied_amount == Decimal("420000")
    assert db.session.get(Loan, loan.id).outstanding == OUTSTANDING - Decimal("420000")
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "payments.reconcile"))
