"""Strategies in the browser, in Vietnamese (issue 23): a supervisor builds a two-segment
strategy with an SMS step and call steps, adds a challenger taking 20 % of the accounts,
simulates it (the counts shown are the engine's), activates it; after the daily run the
challenger shows its own KPIs beside the champion's, with the interval of the difference — at
1440 px and on a phone (390 px), clean of serious axe violations."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal import clock
from portal.models import AuditLog, MessageTemplate, Strategy, StrategyAssignment
from portal.strategies import engine, run
from tests.e2e.test_vietnamese_walk import page_problems
from tests.factories import DEFAULT_PASSWORD

WIDTHS = {1440: {"width": 1440, "height": 900}, 390: {"width": 390, "height": 844}}


@pytest.mark.parametrize("width", WIDTHS)
def test_a_supervisor_builds_simulates_and_activates_a_strategy_with_a_challenger(
        page, live_server, db, make_user, make_team, ws_case, bank_hours, sign_in, screenshot,
        width):
    team = make_team(name="Đội Gọi 1")
    sup = make_user("supervisor", full_name="Lê Văn Giám", team_id=team.id, language="vi")
    db.session.add(MessageTemplate(code="SMS_NHAC", channel="sms", name="Nhắc trước hạn",
                                   body_vi="Kính gửi {name}", body_en="Dear {name}"))
    db.session.commit()
    cases = [ws_case(None, dpd=dpd) for dpd in (3, 6, 8, 12, 20, 25, 28) * 3]
    cases += [ws_case(None, dpd=dpd) for dpd in (35, 50, 70, 95)]
    page.set_viewport_size(WIDTHS[width])
    sign_in(page, sup.username, DEFAULT_PASSWORD)

    page.goto(f"{live_server.url}/strategies/")
    page.locator("#strategy-name").fill("Chiến lược nhắc sớm")
    page.locator("#strategy-code").fill("sai mã")
    page.get_by_test_id("strategy-create").click()
    expect(page.locator('[data-error-for="code"]')).to_have_text(
        "2 đến 30 chữ in hoa, chữ số hoặc _.")
    page.locator("#strategy-code").fill("NHAC_SOM")
    page.get_by_test_id("strategy-create").click()
    expect(page.get_by_test_id("version-status")).to_have_text("Bản nháp")
    strategy = db.session.scalar(select(Strategy).where(Strategy.code == "NHAC_SOM"))

    # segment 1: DPD up to 30 — an SMS, then the call queue from DPD 5
    form = page.get_by_test_id("segment-form")
    form.locator("#segment-name").fill("Sớm")
    form.locator("#cond_0_field").select_option("dpd")
    form.locator("#cond_0_op").select_option("le")
    form.locator("#cond_0_value").fill("ba mươi")
    form.get_by_test_id("segment-add").click()
    expect(page.locator('[data-error-for="segment_cond_0_value"]')).to_have_text(
        "Nhập một số nguyên.")
    page.locator("#cond_0_value").fill("30")
    page.get_by_test_id("segment-add").click()
    expect(page.get_by_test_id("segment-1")).to_contain_text("Sớm")
    steps = page.get_by_test_id("step-form-1")
    steps.locator("select[name=action]").select_option("sms")
    steps.locator("input[name=at_value]").fill("-3")
    steps.locator("select[name=template_code]").select_option("SMS_NHAC")
    steps.get_by_test_id("step-add-1").click()
    expect(page.get_by_test_id("steps-1")).to_contain_text("SMS_NHAC")
    steps = page.get_by_test_id("step-form-1")
    steps.locator("select[name=action]").select_option("call")
    steps.locator("input[name=at_value]").fill("5")
    steps.locator("input[name=priority_weight]").fill("200")
    steps.locator("select[name=team_id]").select_option(label="Đội Gọi 1")
    steps.get_by_test_id("step-add-1").click()
    expect(page.get_by_test_id("steps-1").locator("tbody tr")).to_have_count(2)

    # segment 2: past DPD 30 and at least 1,000,000 overdue — the call queue, weight 300
    form = page.get_by_test_id("segment-form")
    form.locator("#segment-name").fill("Muộn")
    form.locator("#cond_0_field").select_option("dpd")
    form.locator("#cond_0_op").select_option("gt")
    form.locator("#cond_0_value").fill("30")
    form.locator("#cond_1_field").select_option("overdue")
    form.locator("#cond_1_op").select_option("ge")
    form.locator("#cond_1_value").fill("1.000.000")
    form.get_by_test_id("exit-promise_pending").check()
    form.get_by_test_id("segment-add").click()
    expect(page.get_by_test_id("segment-2")).to_contain_text("Muộn")
    steps = page.get_by_test_id("step-form-2")
    steps.locator("select[name=action]").select_option("call")
    steps.locator("input[name=at_value]").fill("31")
    steps.locator("input[name=priority_weight]").fill("300")
    steps.get_by_test_id("step-add-2").click()
    expect(page.get_by_test_id("steps-2")).to_contain_text("DPD 31")

    # a challenger on 20 % of the accounts: the champion keeps 80 %
    challenger = page.get_by_test_id("challenger-form")
    challenger.locator("#challenger-name").fill("Gọi sớm hơn")
    challenger.locator("#challenger-split").fill("20")
    challenger.locator("#challenger-weight").fill("100")
    challenger.get_by_test_id("challenger-add").click()
    expect(page.get_by_test_id("variant-2")).to_be_visible()
    expect(page.get_by_test_id("variant-1")).to_contain_text("80 %")
    expect(page.get_by_test_id("variant-2")).to_contain_text("20 %")

    # simulate: the counts shown are the engine's, nothing written
    page.get_by_test_id("simulate").click()
    expect(page.get_by_test_id("sim-table")).to_be_visible()
    db.session.expire_all()
    version = strategy.versions[0]
    simulated = engine.simulate(db.session, version, clock.bank_today())
    early, late = simulated.segments
    assert (early["accounts"], late["accounts"]) == (21, 4)
    expect(page.get_by_test_id("sim-segment-1-count")).to_have_text("21")
    expect(page.get_by_test_id("sim-segment-2-count")).to_have_text("4")
    expect(page.get_by_test_id("sim-chart")).to_be_visible()
    expect(page.get_by_test_id("sim-sample").locator("tbody tr")).to_have_count(20)
    assert db.session.scalar(select(StrategyAssignment.id).limit(1)) is None
    screenshot(page, f"strategy-simulated-vi-{width}")
    assert page_problems(page) == []

    page.get_by_test_id("activate").click()
    expect(page.get_by_test_id("version-status")).to_have_text("Đang hoạt động")
    expect(page.get_by_test_id("segment-form")).to_have_count(0)  # frozen
    # a change starts a new draft (a copy); the active version stays as it was
    page.get_by_test_id("start-draft").click()
    expect(page.get_by_test_id("version-status")).to_have_text("Bản nháp")
    expect(page.get_by_test_id("version-1")).to_contain_text("Đang hoạt động")
    expect(page.get_by_test_id("version-2")).to_contain_text("Bản nháp")
    expect(page.get_by_test_id("steps-2")).to_contain_text("DPD 31")
    assert db.session.scalar(select(AuditLog.id).where(
        AuditLog.action == "strategy.activated")) is not None

    # the daily run, then the KPIs: the challenger has its own row and its interval
    run.run_business_date(db.session, clock.bank_today())
    db.session.commit()
    drawn = {c.loan.account_number: engine.stable_draw(strategy.id, c.loan.account_number)
             for c in cases}
    in_challenger = sum(1 for d in drawn.values() if d >= 80)
    assert 0 < in_challenger < len(cases)
    page.goto(f"{live_server.url}/strategies/{strategy.id}")
    kpis = page.get_by_test_id("kpis")
    expect(kpis.get_by_test_id("kpi-champion")).to_contain_text(str(len(cases) - in_challenger))
    expect(kpis.get_by_test_id("kpi-challenger-2")).to_contain_text("Gọi sớm hơn")
    expect(kpis.get_by_test_id("kpi-challenger-2")).to_contain_text(str(in_challenger))
    expect(kpis.get_by_test_id("kpi-ci-2")).to_contain_text("chênh lệch so với phương án chuẩn")
    screenshot(page, f"strategy-kpis-vi-{width}")
    assert page_problems(page) == []

    page.goto(f"{live_server.url}/strategies/")
    expect(page.get_by_test_id("strategy-NHAC_SOM")).to_contain_text("Phiên bản 1")
    screenshot(page, f"strategies-vi-{width}")
    assert page_problems(page) == []
