"""Browser: an agent has a customer's case open with a pending promise; the customer pays (a
signed webhook from the payment system); without reloading, the agent sees the promise "kept",
the payment in the live panel and a new notification on the bell (HTMX polling).
Screenshots: test-results/screenshots/payment-live-*.png."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from playwright.sync_api import expect

from portal import clock
from tests.factories import DEFAULT_PASSWORD
from tests.integration.test_events_support import drain

pytestmark = pytest.mark.e2e

SECRET = "test-payments-current"


@pytest.fixture
def promised_case(app, db, make_user, make_customer, make_loan, make_case, make_promise,
                  monkeypatch):
    monkeypatch.setitem(app.config, "PAYMENTS_LIVE_POLL_SECONDS", 1)
    agent = make_user(role="agent", username="hoa.agent", full_name="Tran Thi Hoa")
    customer = make_customer(name="Nguyen Van Binh")
    loan = make_loan(customer, dpd=18, due_amount=Decimal("4500000"),
                     outstanding=Decimal("36000000"))
    make_case(customer, agent, total_overdue=Decimal("4500000"), max_dpd=18,
              total_outstanding=Decimal("36000000"))
    make_promise(customer, "4500000", clock.bank_today() + timedelta(days=3), loan=loan,
                 agent=agent)
    return agent, customer, loan


def pay(live_server, loan, amount: str) -> dict:
    from portal.signing import signed_headers

    body = json.dumps({
        "event_id": f"evt-live-{loan.account_number}", "type": "payment.received",
        "reference_number": f"FT{loan.account_number}", "loan_account_number":
        loan.account_number, "cif": loan.cif, "amount": amount, "currency": "VND",
        "paid_at": clock.now().isoformat(timespec="seconds"),
        "channel": "MOBILE_BANKING",
    }).encode()
    r = requests.post(f"{live_server.url}/api/v1/payments/notifications", data=body,
                      headers=signed_headers(SECRET, body), timeout=10)
    assert r.status_code == 201, r.text
    return r.json()


def test_agent_sees_the_promise_kept_without_reloading(app, page, live_server, db,
                                                        promised_case, sign_in, screenshot):
    agent, customer, loan = promised_case
    sign_in(page, agent.username, DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/cases/{customer.cif}")
    live = page.get_by_test_id("payments-live")
    assert live.count() == 1, ('templates/cases/view.html must include '
                               '{% include "payments/_case_payments_live.html" %}')
    expect(live).to_contain_text("No payments yet")
    promise_row = page.get_by_test_id("panel-promises").get_by_test_id("promise-row")
    expect(promise_row).to_have_attribute("data-status", "pending")
    expect(page.get_by_test_id("bell-count")).to_have_text("0")
    screenshot(page, "payment-live-before")

    loaded_at = page.evaluate("performance.timeOrigin")
    pay(live_server, loan, "4500000")
    drain(app)  # the event workers apply the payment; the page keeps polling meanwhile

    expect(page.get_by_test_id("payment-live-banner")).to_contain_text("promise kept",
                                                                       timeout=15000)
    expect(promise_row).to_have_attribute("data-status", "kept", timeout=15000)
    expect(promise_row).to_contain_text("Kept")
    expect(live.get_by_test_id("live-payment-row")).to_contain_text("4,500,000")
    expect(page.get_by_test_id("bell-count")).to_have_text("1", timeout=15000)
    assert page.evaluate("performance.timeOrigin") == loaded_at  # the page was not reloaded
    screenshot(page, "payment-live-after")


def test_ops_reviews_refused_notifications_and_resolves_a_discrepancy(
        page, live_server, db, make_user, make_customer, make_loan, sign_in, screenshot):
    from portal import clock
    from portal.models import Discrepancy, ReconciliationRun

    ops = make_user(role="ops", username="minh.ops", full_name="Le Van Minh")
    loan = make_loan(make_customer(), dpd=5)
    body = json.dumps({"event_id": "evt-ops-1", "type": "payment.received",
                       "reference_number": "FT-OPS-1", "loan_account_number": "LN-NOPE",
                       "cif": loan.cif, "amount": "150000", "currency": "VND",
                       "paid_at": clock.now().isoformat()}).encode()
    from portal.signing import signed_headers

    url = f"{live_server.url}/api/v1/payments/notifications"
    assert requests.post(url, data=body, headers=signed_headers(SECRET, body)).status_code == 422
    assert requests.post(url, data=body, headers=signed_headers("guess", body)).status_code == 401
    day = clock.add_days(clock.bank_today(), -1)
    run = ReconciliationRun(integration="PAYMENTS", business_date=day, status="partial",
                            source_count=412, crm_count=411, matched_count=410,
                            discrepancy_count=2, source_total=Decimal("1523400000"),
                            crm_total=Decimal("1522900000"), started_at=clock.now(),
                            finished_at=clock.now())
    db.session.add(run)
    db.session.flush()
    db.session.add_all([
        Discrepancy(run_id=run.id, kind="amount_mismatch", entity="payment", key="FT26327AB12",
                    source_value={"amount": "1000000.00", "currency": "VND",
                                  "status": "received"},
                    crm_value={"amount": "500000.00", "currency": "VND", "status": "received"}),
        Discrepancy(run_id=run.id, kind="missing_in_crm", entity="payment", key="FT26327CD34",
                    source_value={"amount": "250000.00", "currency": "VND",
                                  "status": "received"},
                    crm_value={"payment_id": 17}, status="resolved",
                    resolution="Ingested automatically as payment 17."),
    ])
    db.session.commit()

    sign_in(page, ops.username, DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/payments/rejected")
    rows = page.get_by_test_id("rejected-row")
    expect(rows).to_have_count(2)
    expect(page.locator("[data-code=unknown_loan]")).to_contain_text("Unknown loan")
    expect(page.locator("[data-code=signature_mismatch]")).to_be_visible()
    screenshot(page, "payment-ops-rejected")

    page.goto(f"{live_server.url}/payments/reconciliation")
    expect(page.get_by_test_id("reconciliation-runs")).to_contain_text("412")
    row = page.get_by_test_id("discrepancy-row")
    expect(row).to_have_count(1)  # open ones by default
    screenshot(page, "payment-ops-reconciliation")
    row.get_by_label("Resolution note").fill("Bank confirmed 1,000,000; corrected")
    with page.expect_navigation():
        row.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Discrepancy FT26327AB12 marked resolved.")).to_be_visible()
    expect(page.get_by_test_id("discrepancy-row")).to_have_count(0)
