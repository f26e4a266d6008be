"""The agent workspace as a new agent uses it: queue → top case → record a call with a promise
to pay → a call outside the contact window is refused → correct a phone number."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal import clock
from portal.cases import queue
from portal.models import (
    Action,
    Address,
    AuditLog,
    CallRecord,
    Card,
    Case,
    Collateral,
    Email,
    LoanCollateral,
    Payment,
    Phone,
    Promise,
    ReferenceCustomer,
    Visit,
)
from tests.factories import DEFAULT_PASSWORD

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
PORTFOLIO = [
    # name, dpd, overdue, product, segment
    ("Bui Thi Thu", 118, "48500000", "AUTO_LOAN", "AFFLUENT"),
    ("Do Van Quang", 96, "12800000", "PERSONAL_LOAN", "MASS"),
    ("Vu Thi Lan", 74, "9600000", "PERSONAL_LOAN", "MASS"),
    ("Hoang Van Nam", 58, "21000000", "MORTGAGE", "AFFLUENT"),
    ("Pham Thi Hoa", 44, "6400000", "CONSUMER_LOAN", "MASS"),
    ("Le Van Phuc", 27, "3200000", "PERSONAL_LOAN", "MASS"),
    ("Tran Thi Mai", 12, "2500000", "CONSUMER_LOAN", "MASS"),
    ("Ngo Thi Huong", 5, "1500000", "PERSONAL_LOAN", "MASS"),
]


def frozen_times():
    """A time inside the contact window and one outside it, both on the bank's today."""
    local_now = clock.now().astimezone(ZONE)
    today = local_now.date()
    inside = local_now if time(8) <= local_now.time() <= time(20) else \
        datetime.combine(today, time(10), tzinfo=ZONE)
    outside = datetime.combine(today, time(22, 30), tzinfo=ZONE)
    return inside.astimezone(UTC) - timedelta(minutes=1), outside.astimezone(UTC)


@pytest.fixture
def workspace(app, db, make_user, make_customer, make_loan, ws_action_codes):
    inside, outside = frozen_times()
    app.config["FROZEN_NOW"] = inside
    agent = make_user("agent", username="minh.le", full_name="Le Van Minh")
    colleague = make_user("agent", full_name="Nguyen Thi Thao")
    for index, (name, dpd, overdue, product, segment) in enumerate(PORTFOLIO):
        customer = make_customer(name=name, segment=segment, national_id=f"07918800{index:04d}")
        loan = make_loan(customer=customer, dpd=dpd, due_amount=Decimal(overdue),
                         product_type=product, outstanding=Decimal(overdue) * 9,
                         original_amount=Decimal(overdue) * 14, term=36,
                         interest_rate=Decimal("11.5"))
        db.session.add(Phone(cif=customer.cif, type="MOBILE", number=f"09{index}2 345 6{index}8",
                             number_e164=f"+849{index}23456{index}8", is_primary=True,
                             is_verified=True, source_system="T24"))
        db.session.add(Phone(cif=customer.cif, type="HOME", number=f"028 38{index}2 114{index}",
                             source_system="T24"))
        db.session.add(Address(cif=customer.cif, type="HOME", line1=f"{12 + index} Nguyen Hue",
                               ward="Ben Nghe", district="Quan 1", city="Ho Chi Minh",
                               source_system="T24", is_verified=True))
        db.session.add(Email(cif=customer.cif, type="PERSONAL", source_system="T24",
                             address=f"{name.split()[-1].lower()}{index}@example.vn"))
        last_contact = inside - timedelta(days=index + 1) if index % 3 else None
        card_due = Decimal("3100000") if index == 0 else Decimal(0)
        db.session.add(Case(cif=customer.cif, assigned_agent_id=agent.id, max_dpd=dpd,
                            total_overdue=Decimal(overdue) + card_due,
                            total_outstanding=loan.outstanding,
                            last_contact_at=last_contact, status="open" if index % 2 else
                            "in_progress",
                            next_action_at=inside - timedelta(hours=2) if index in (2, 5)
                            else None))
        if index == 0:
            db.session.add(Card(contract_number="W4-0098812", cif=customer.cif,
                                masked_card_number="4386 **** **** 2231", product="PLATINUM",
                                credit_limit=Decimal("80000000"), outstanding=Decimal("61200000"),
                                min_due=Decimal("3100000"), days_overdue=35, bucket="31-60"))
            db.session.add(Collateral(collateral_number="COL-553120", cif=customer.cif,
                                      type="VEHICLE", value=Decimal("420000000"),
                                      vehicle_make="Toyota", vehicle_model="Vios",
                                      vehicle_year=2021, license_plate="51K-482.19",
                                      valuation_date=date(2025, 3, 14)))
            db.session.flush()
            db.session.add(LoanCollateral(account_number=loan.account_number,
                                          collateral_number="COL-553120"))
            db.session.add(ReferenceCustomer(ref_cif="R-0098812", primary_cif=customer.cif,
                                             relationship_type="spouse", name="Tran Van Khoa",
                                             national_id="079087004521", source_system="T24"))
            db.session.add(ReferenceCustomer(ref_cif="R-0098813", primary_cif=customer.cif,
                                             relationship_type="guarantor",
                                             name="Bui Van Long", source_system="LOS"))
            db.session.flush()
            db.session.add(Phone(ref_cif="R-0098812", type="MOBILE", number="0908 771 245",
                                 source_system="T24"))
            db.session.add(Payment(reference_number="FT2611180041", cif=customer.cif,
                                   account_number=loan.account_number,
                                   amount=Decimal("5000000"), currency="VND",
                                   paid_at=inside - timedelta(days=9), channel="BANK_TRANSFER"))
            db.session.add(CallRecord(call_id="CTI-88123", agent_id=colleague.id,
                                      cif=customer.cif, phone="0902 345 608",
                                      direction="outbound", started_at=inside - timedelta(days=4),
                                      duration_s=0, disposition="NO_ANSWER"))
            db.session.add(Visit(cif=customer.cif, agent_id=colleague.id,
                                 planned_for=inside.date() - timedelta(days=6),
                                 status="completed", verification="verified"))
        if index == 4:
            db.session.add(Promise(cif=customer.cif, agent_id=agent.id,
                                   amount=Decimal("2000000"), status="pending",
                                   promised_date=inside.astimezone(ZONE).date()))
        if index == 3:
            db.session.add(Promise(cif=customer.cif, agent_id=colleague.id,
                                   amount=Decimal("5000000"), status="broken",
                                   promised_date=inside.astimezone(ZONE).date()
                                   - timedelta(days=3)))
    db.session.commit()
    queue.recompute_case_totals(db.session)  # totals and product types from the products
    queue.recompute_priorities(db.session, now=inside)
    db.session.commit()
    yield agent, inside, outside
    app.config["FROZEN_NOW"] = None


HTMX_READY = """id => {
    const el = document.getElementById(id);
    const data = el && el['htmx-internal-data'];
    return !!(data && data.initHash) && !document.querySelector('.htmx-request');
}"""


def choose(page, select_id: str, label: str):
    """Pick an option; the form re-renders through HTMX, so wait for the swap to settle: no
    request in flight and the new select processed by HTMX (a change made before HTMX has
    attached its listener to the swapped-in select would be lost)."""
    page.wait_for_function(HTMX_READY, arg=select_id)
    page.select_option(f"#{select_id}", label=label)
    expect(page.locator(f"#{select_id} option:checked")).to_have_text(label)


def test_agent_workspace(page, live_server, app, db, workspace, sign_in, screenshot):
    agent, inside, outside = workspace
    sign_in(page, agent.username, DEFAULT_PASSWORD)

    # the agent's home is the work queue, highest priority first
    table = page.get_by_test_id("queue-table")
    expect(table).to_be_visible()
    expect(page.get_by_test_id("queue-row")).to_have_count(len(PORTFOLIO))
    top = page.get_by_test_id("queue-row").first
    expect(top).to_contain_text("Bui Thi Thu")
    expect(top.locator(".chip-product")).to_have_text(["Auto loan", "Card"])
    page.get_by_role("link", name="Work queue").click()
    expect(page.get_by_role("heading", name="Work queue")).to_be_visible()
    page.keyboard.press("j")  # keyboard: select the first row
    expect(page.locator("tr.queue-row.selected")).to_have_count(1)
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "queue")

    page.keyboard.press("Enter")  # open the selected (top) case
    expect(page.get_by_test_id("customer-name")).to_have_text("Bui Thi Thu")
    cif = page.get_by_test_id("customer-cif").inner_text()
    loan = page.get_by_test_id("loan-row").first.locator(".mono").first.inner_text()

    # record a call with a promise to pay for the loan
    choose(page, "action-type", "Call")
    choose(page, "action-subtype", "Outbound")
    choose(page, "action-result", "Promise to pay")
    expect(page.get_by_test_id("promise-fields")).to_be_visible()
    follow_up = (inside.astimezone(ZONE).date() + timedelta(days=1))
    expect(page.get_by_test_id("follow-up-date")).to_have_value(follow_up.isoformat())
    page.select_option("#action-account", value=loan)
    page.select_option("#action-phone", index=1)
    page.get_by_test_id("promise-amount").fill("15000000")
    promise_date = inside.astimezone(ZONE).date() + timedelta(days=3)
    page.get_by_test_id("promise-date").fill(promise_date.isoformat())
    page.get_by_test_id("action-notes").fill("Customer agreed to pay 15 million after payday.")
    page.get_by_test_id("action-save").click()
    expect(page.get_by_test_id("action-saved")).to_be_visible()

    promise_row = page.get_by_test_id("promise-row").filter(has_text=loan)
    expect(promise_row).to_contain_text("Pending")
    expect(promise_row).to_contain_text("15,000,000 ₫")
    expect(page.get_by_test_id("next-follow-up")).to_have_text(follow_up.strftime("%d/%m/%Y"))
    expect(page.get_by_test_id("timeline-item").first).to_contain_text("after payday")
    db.session.expire_all()
    promise = db.session.scalar(select(Promise).where(Promise.cif == cif,
                                                      Promise.status == "pending"))
    assert promise.amount == Decimal("15000000") and promise.account_number == loan
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "case_view")

    # a second call at 22:30 bank time is outside the contact window
    app.config["FROZEN_NOW"] = outside
    choose(page, "action-type", "Call")
    choose(page, "action-subtype", "Outbound")
    choose(page, "action-result", "No answer")
    page.get_by_test_id("action-save").click()
    refusal = page.get_by_test_id("contact-refused")
    expect(refusal).to_contain_text("outside the contact window")
    opening = datetime.combine(outside.astimezone(ZONE).date() + timedelta(days=1), time(7),
                               tzinfo=ZONE).astimezone(UTC)
    expect(refusal).to_have_attribute("data-next-allowed", opening.isoformat())
    expect(refusal).to_contain_text(opening.astimezone(ZONE).strftime("%d/%m/%Y 07:00"))
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "case_view_refused")
    db.session.expire_all()
    assert db.session.query(Action).filter_by(cif=cif).count() == 1
    app.config["FROZEN_NOW"] = inside

    # correct the bank's home number: it becomes a CRM contact, with an audit row
    bank_home = page.get_by_test_id("phone-row").filter(has_text="Home").first
    bank_home.get_by_role("link", name="Correct").click()
    form = page.get_by_test_id("contact-form")
    expect(form).to_be_visible()
    form.get_by_label("Number").fill("028 3822 9999")
    form.get_by_label("Note").fill("Customer gave the new landline")
    form.get_by_test_id("contact-save").click()
    expect(page.get_by_test_id("contact-message")).to_contain_text("CRM correction")
    crm_row = page.locator('[data-testid="phone-row"][data-source="CRM"]')
    expect(crm_row).to_contain_text("028 3822 9999")
    expect(crm_row).to_contain_text("CRM")
    # the action form's "Number called" list follows the change without a reload
    expect(page.locator("#action-phone")).to_contain_text("028 3822 9999")
    db.session.expire_all()
    audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "phone.correct"))
    assert audit is not None and audit.actor_id == agent.id
    assert audit.after["number"] == "028 3822 9999"
    assert re.match(r"028 38\d2 114\d", audit.before["number"])
