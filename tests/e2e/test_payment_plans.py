"""Payment plans in the browser, in Vietnamese (issue 22, case management 6): an agent records a
3-instalment plan on the case view (a plan that does not cover the overdue is refused next to
the field first); the customer pays instalment 1 through the payment system's signed webhook
and the panel shows it kept without a reload; with the clock past instalment 2's date the
hourly judging job breaks the plan (one missed instalment allowed: the default), and the case
shows it broken, in the work queue's "broken plan" filter — at 1440 px and on a phone (390 px),
axe-clean."""

from __future__ import annotations

import re
from datetime import time, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal import clock
from portal.cases import plans
from portal.models import PaymentPlan
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.test_payment_live import pay
from tests.e2e.test_vietnamese_walk import page_problems
from tests.factories import DEFAULT_PASSWORD
from tests.integration.test_events_support import drain
from workers.jobs.promises import run_broken_promises

pytestmark = pytest.mark.e2e

WIDTHS = {1440: {"width": 1440, "height": 900}, 390: {"width": 390, "height": 844}}


@pytest.mark.parametrize("width", WIDTHS)
def test_an_agent_records_a_plan_a_payment_keeps_instalment_1_and_a_miss_breaks_it(
        app, page, live_server, db, make_user, ws_case, bank_hours, frozen_now, sign_in,
        screenshot, monkeypatch, width):
    monkeypatch.setitem(app.config, "PAYMENTS_LIVE_POLL_SECONDS", 1)
    agent = make_user("agent", full_name="Trần Thị Thu", language="vi")
    case = ws_case(agent, dpd=45, overdue="9000000")
    today = clock.bank_today(bank_hours)
    dates = [today + timedelta(days=d) for d in (7, 21, 35)]
    sign_in(page, agent.username, DEFAULT_PASSWORD)
    page.set_viewport_size(WIDTHS[width])
    page.goto(f"{live_server.url}/cases/{case.cif}")

    panel = page.get_by_test_id("panel-plans")
    expect(panel).to_contain_text("Chưa có kế hoạch trả nợ")
    panel.get_by_test_id("new-plan").click()
    form = page.get_by_test_id("plan-form")
    expect(form.get_by_test_id("plan-row")).to_have_count(3)  # three suggested instalments
    expect(form.get_by_test_id("plan-overdue")).to_contain_text("9.000.000")
    for n, (day, amount) in enumerate(zip(dates, ("3.000.000", "3.000.000", "2.000.000"),
                                          strict=True), start=1):
        form.get_by_test_id(f"plan-date-{n}").fill(day.isoformat())
        form.get_by_test_id(f"plan-amount-{n}").fill(amount)
    form.get_by_test_id("plan-reason").fill("KH đồng ý trả 3 kỳ, mỗi kỳ 3 triệu")
    form.get_by_test_id("plan-save").click()
    # short of the overdue: refused next to the plan, what was typed kept, nothing written
    expect(page.locator('[data-error-for="instalments"]')).to_contain_text(
        "còn thiếu 1.000.000")
    expect(page.get_by_test_id("plan-amount-3")).to_have_value("2.000.000")
    assert db.session.scalar(select(PaymentPlan.id)) is None
    page.get_by_test_id("plan-form").scroll_into_view_if_needed()
    screenshot(page, f"case-plan-refused-vi-{width}")
    page.get_by_test_id("plan-amount-3").fill("3.000.000")
    page.get_by_test_id("plan-save").click()
    expect(page.get_by_test_id("plan-message")).to_have_text("Đã lưu kế hoạch trả nợ.")
    plan_box = page.get_by_test_id("plan")
    expect(plan_box).to_have_attribute("data-status", "active")
    expect(plan_box.get_by_test_id("plan-status")).to_have_text("Đang hiệu lực")
    rows = plan_box.get_by_test_id("instalment-row")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("3.000.000")

    # the customer pays instalment 1 (the payment system's signed webhook); the page keeps
    # polling and the panels reload when the payment is applied
    pay(live_server, case.loan, "3000000")
    drain(app)
    expect(rows.nth(0)).to_have_attribute("data-status", "kept", timeout=15000)
    expect(rows.nth(0).get_by_test_id("instalment-status")).to_have_text("Đã trả đúng hạn")
    expect(rows.nth(1)).to_have_attribute("data-status", "pending")
    panel.scroll_into_view_if_needed()
    screenshot(page, f"case-plan-kept-vi-{width}")
    panel.screenshot(path=str(SCREENSHOTS / f"panel-plans-kept-vi-{width}.png"))
    assert page_problems(page) == []

    # the bank's next day after instalment 2's date: the hourly job judges the plan
    frozen_now(clock.bank_datetime(dates[1] + timedelta(days=1), time(1, 5)))
    result = run_broken_promises()
    assert (result["instalments_missed"], result["plans_broken"]) == (1, 1)
    page.reload()
    plan_box = page.get_by_test_id("plan")
    expect(plan_box).to_have_attribute("data-status", "broken")
    expect(plan_box.get_by_test_id("plan-status")).to_have_text("Vi phạm cam kết")
    rows = plan_box.get_by_test_id("instalment-row")
    expect(rows.nth(1)).to_have_attribute("data-status", "missed")
    expect(rows.nth(1).get_by_test_id("instalment-status")).to_have_text("Trễ hạn")
    expect(rows.nth(2)).to_have_attribute("data-status", "pending")
    page.get_by_test_id("panel-plans").scroll_into_view_if_needed()
    screenshot(page, f"case-plan-broken-vi-{width}")
    page.get_by_test_id("panel-plans").screenshot(
        path=str(SCREENSHOTS / f"panel-plans-broken-vi-{width}.png"))
    assert page_problems(page) == []

    # the work queue: the "broken plan" filter finds the case
    page.goto(f"{live_server.url}/cases/")
    page.select_option("[data-testid=filter-plan]", "broken")
    expect(page).to_have_url(re.compile(r"[?&]plan=broken(&|$)"))
    expect(page.locator("#queue-results")).to_contain_text(case.customer.name)
    expect(page.get_by_test_id("filter-plan").locator("option:checked")).to_have_text(
        "Kế hoạch: Vi phạm cam kết")
    screenshot(page, f"queue-plan-broken-vi-{width}")
    assert page_problems(page) == []
    page.select_option("[data-testid=filter-plan]", "active")
    expect(page.locator("#queue-results")).not_to_contain_text(case.customer.name)

    db.session.expire_all()
    assert plans.violations(db.session, clock.now()) == []
