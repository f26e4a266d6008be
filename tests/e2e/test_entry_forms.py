"""What agents enter, in the browser (issue 19, findings 10-12): "Correct" saved without a change
says so and adds nothing; an amount in the bank's format is taken; a second promise for the
same loan is refused with the offer to replace the pending one, and replacing it works — at
1440 px and on a phone (390 px)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from playwright.sync_api import expect
from sqlalchemy import select

from portal import clock
from portal.models import Phone, Promise
from tests.e2e.test_agent_workspace import HTMX_READY, choose
from tests.factories import DEFAULT_PASSWORD


def test_correct_without_a_change_then_replace_the_pending_promise(
        page, live_server, db, make_user, ws_case, make_phone, ws_action_codes, bank_hours,
        sign_in, screenshot):
    agent = make_user("agent")
    case = ws_case(agent, dpd=40, overdue="12000000")
    make_phone(case.cif, "0903123456", is_primary=True)
    db.session.add(Promise(cif=case.cif, account_number=case.loan.account_number,
                           agent_id=agent.id, amount=Decimal("5000000"), status="pending",
                           promised_date=clock.bank_today() + timedelta(days=2)))
    db.session.commit()
    sign_in(page, agent.username, DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/cases/{case.cif}")

    phone_row = page.get_by_test_id("phone-row")
    expect(phone_row).to_contain_text("0903 123 456")
    phone_row.get_by_role("link", name="Correct").click()
    form = page.get_by_test_id("contact-form")
    expect(form.get_by_label("Number")).to_have_value("0903 123 456")  # as every page shows it
    form.get_by_test_id("contact-save").click()
    expect(page.get_by_test_id("contact-message")).to_have_text("Nothing changed.")
    expect(page.get_by_test_id("phone-row")).to_have_count(1)
    expect(page.locator(".contacts .badge.navy")).to_have_count(1)  # one "Primary"

    choose(page, "action-type", "Call")
    choose(page, "action-subtype", "Outbound")
    choose(page, "action-result", "Promise to pay")
    expect(page.get_by_test_id("promise-fields")).to_be_visible()  # the result's form is in
    page.wait_for_function(HTMX_READY, arg="action-result")
    page.select_option("#action-account", value=case.loan.account_number)
    page.get_by_test_id("promise-amount").fill("3.500.000")
    page.get_by_test_id("action-save").click()
    offer = page.get_by_test_id("replace-pending-box")
    expect(offer).to_contain_text("A promise of 5,000,000 ₫")
    expect(offer).to_contain_text("is already pending")
    expect(page.get_by_test_id("promise-amount")).to_have_value("3.500.000")
    offer.scroll_into_view_if_needed()
    screenshot(page, "entry-replace-offer-1440")
    page.set_viewport_size({"width": 390, "height": 844})
    offer.scroll_into_view_if_needed()
    screenshot(page, "entry-replace-offer-390")
    page.set_viewport_size({"width": 1440, "height": 900})

    page.get_by_test_id("replace-pending").check()
    page.get_by_test_id("action-save").click()
    expect(page.get_by_test_id("action-saved")).to_be_visible()
    rows = page.get_by_test_id("promise-row")
    expect(rows.filter(has_text="Superseded")).to_contain_text("5,000,000 ₫")
    expect(rows.filter(has_text="Pending")).to_contain_text("3,500,000 ₫")
    expect(page.get_by_test_id("timeline-item").first).to_contain_text("replaced by a promise")
    screenshot(page, "entry-replaced-1440")
    db.session.expire_all()
    assert db.session.scalar(select(Phone.id).where(Phone.source_system == "CRM")) is None
    assert [(p.status, p.amount) for p in db.session.scalars(
        select(Promise).order_by(Promise.id))] == [("superseded", Decimal("5000000")),
                                                   ("pending", Decimal("3500000"))]
