"""Reference persons and reassignment from the case view, in the browser, in Vietnamese (issue
22, case management 4-5): an agent adds a spouse with a phone (an invalid number refused next
to the field with the customer phones' message), verifies it and retires the person; a
supervisor reassigns the case from the case view, sees the new row in the history, and the
previous agent no longer has the case in their queue — at 1440 px and on a phone (390 px)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal.models import Case, CaseAssignment, Phone, ReferenceCustomer
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.test_vietnamese_walk import page_problems
from tests.factories import DEFAULT_PASSWORD

WIDTHS = {1440: {"width": 1440, "height": 900}, 390: {"width": 390, "height": 844}}
PHONE_REFUSED = "Nhập số điện thoại, ví dụ 0912 345 678 hoặc +84912345678."


@pytest.mark.parametrize("width", WIDTHS)
def test_an_agent_adds_verifies_and_retires_a_spouse_in_vietnamese(
        page, live_server, db, make_user, ws_case, bank_hours, sign_in, screenshot, width):
    agent = make_user("agent", full_name="Trần Thị Thu", language="vi")
    case = ws_case(agent, dpd=75, overdue="18500000")
    sign_in(page, agent.username, DEFAULT_PASSWORD)
    page.set_viewport_size(WIDTHS[width])
    page.goto(f"{live_server.url}/cases/{case.cif}")
    panel = page.get_by_test_id("panel-references")
    expect(panel.locator("h2")).to_have_text("Người liên quan")

    # the customer's own phone form, for the message an invalid number gets there
    page.get_by_test_id("add-phone").click()
    page.locator("#contact-number").fill("12345")
    page.locator("#contact-form-slot").get_by_test_id("contact-save").click()
    customer_error = page.locator('#contact-form-slot [data-error-for="number"]')
    expect(customer_error).to_have_text(PHONE_REFUSED)
    page.locator("#contact-form-slot").get_by_role("button", name="Hủy").click()

    # a spouse: the name is asked for first
    panel.get_by_test_id("add-reference").click()
    page.select_option("#ref-relationship", value="spouse")
    page.locator("#ref-name").evaluate("el => el.removeAttribute('required')")
    panel.get_by_test_id("reference-save").click()
    expect(panel.locator('[data-error-for="name"]')).to_have_text("Hãy nhập họ tên người này.")
    page.locator("#ref-name").fill("Lê Thị Bình")
    page.locator("#ref-national-id").fill("079185001234")
    panel.get_by_test_id("reference-save").click()
    expect(panel.get_by_test_id("reference-message")).to_have_text("Đã thêm Lê Thị Bình.")
    person = panel.get_by_test_id("reference-row")
    expect(person).to_have_count(1)
    expect(person).to_contain_text("Vợ/chồng")
    ref = db.session.scalar(select(ReferenceCustomer).where(
        ReferenceCustomer.primary_cif == case.cif))

    # their phone: an invalid number refused next to the field, as for the customer
    person.get_by_test_id(f"ref-{ref.id}-add-phone").click()
    page.locator("#ref-contact-number").fill("12345")
    page.locator("#reference-form-slot").get_by_test_id("contact-save").click()
    expect(page.locator('#reference-form-slot [data-error-for="number"]')).to_have_text(
        PHONE_REFUSED)
    page.locator("#ref-contact-number").fill("0933 111 222")
    page.locator("#reference-form-slot").get_by_test_id("contact-save").click()
    expect(panel.get_by_test_id("reference-message")).to_have_text("Điện thoại đã được thêm.")
    phone = db.session.scalar(select(Phone).where(Phone.ref_cif == ref.ref_cif))
    expect(panel.get_by_test_id("ref-phone-number")).to_have_text("0933 111 222")
    panel.get_by_test_id(f"ref-phone-{phone.id}-is_verified-on").click()
    expect(panel.get_by_test_id("verified-badge")).to_be_visible()
    panel.scroll_into_view_if_needed()
    screenshot(page, f"case-references-vi-{width}")
    panel.screenshot(path=str(SCREENSHOTS / f"panel-references-vi-{width}.png"))
    assert page_problems(page) == []

    # retired: gone from the list, kept behind the toggle with its phone
    page.once("dialog", lambda dialog: dialog.accept())
    panel.get_by_test_id(f"ref-{ref.id}-retire").click()
    expect(panel.get_by_test_id("reference-message")).to_contain_text(
        "Đã ngừng theo dõi Lê Thị Bình")
    expect(panel.get_by_test_id("reference-count")).to_have_text("0")
    retired = panel.get_by_test_id("retired-references")
    expect(retired.get_by_test_id("reference-row")).to_be_hidden()
    retired.locator("summary").click()
    expect(retired.get_by_test_id("reference-retired")).to_contain_text("Ngừng theo dõi từ")
    expect(retired.get_by_test_id("ref-phone-number")).to_have_text("0933 111 222")
    panel.screenshot(path=str(SCREENSHOTS / f"panel-references-retired-vi-{width}.png"))
    assert page_problems(page) == []

    db.session.expire_all()
    ref = db.session.get(ReferenceCustomer, ref.id)
    assert ref.retired_at is not None and ref.source_system == "CRM"
    phone = db.session.get(Phone, phone.id)
    assert phone.is_verified and phone.verified_by_id == agent.id


@pytest.mark.parametrize("width", WIDTHS)
def test_a_supervisor_reassigns_a_case_from_the_case_view_in_vietnamese(
        page, live_server, db, make_user, make_team, ws_case, bank_hours, sign_in, screenshot,
        width):
    supervisor = make_user("supervisor", full_name="Phạm Văn Giám", language="vi")
    team = make_team(name="Tổ Thu hồi 1", supervisor_id=supervisor.id)
    first = make_user("agent", full_name="Nguyễn Văn An", team_id=team.id, language="vi")
    second = make_user("agent", full_name="Đỗ Thị Hoa", team_id=team.id, language="vi")
    case = ws_case(first, dpd=40)
    sign_in(page, supervisor.username, DEFAULT_PASSWORD)
    page.set_viewport_size(WIDTHS[width])
    page.goto(f"{live_server.url}/cases/{case.cif}")
    card = page.get_by_test_id("panel-assignments")
    expect(card.locator("h2")).to_have_text("Lịch sử phân công")
    expect(card).to_contain_text("Chưa có lần phân công nào")

    page.select_option("#reassign-agent", label="Đỗ Thị Hoa")
    card.get_by_test_id("reassign-save").click()
    expect(page.locator('[data-error-for="reason"]')).to_have_text(
        "Hãy nêu lý do phân công lại hồ sơ.")
    expect(page.locator("#reassign-agent option:checked")).to_have_text("Đỗ Thị Hoa")
    page.locator("#reassign-reason").fill("Chị Hoa phụ trách khu vực Thủ Đức")
    page.get_by_test_id("reassign-save").click()
    card = page.get_by_test_id("panel-assignments")
    expect(card.get_by_test_id("assignment-message")).to_have_text("Đã phân công lại hồ sơ.")
    row = card.get_by_test_id("assignment-row").first
    expect(row.get_by_test_id("assignment-agent")).to_have_text("Đỗ Thị Hoa")
    expect(row).to_contain_text("trước đó: Nguyễn Văn An")
    expect(row).to_contain_text("Do Phạm Văn Giám phân công")
    expect(row.get_by_test_id("assignment-reason")).to_have_text(
        "Chị Hoa phụ trách khu vực Thủ Đức")
    expect(page.get_by_test_id("case-header")).to_contain_text("Đỗ Thị Hoa")  # refreshed
    card.scroll_into_view_if_needed()
    screenshot(page, f"case-reassigned-vi-{width}")
    card.screenshot(path=str(SCREENSHOTS / f"panel-assignments-vi-{width}.png"))
    assert page_problems(page) == []

    # the previous agent's queue no longer has it; the new agent's has
    name = case.customer.name
    page.context.clear_cookies()
    sign_in(page, first.username, DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/cases/")
    expect(page.locator("main")).not_to_contain_text(name)
    # the agent sees the history on the case, without the form
    page.context.clear_cookies()
    sign_in(page, second.username, DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/cases/")
    expect(page.locator("main")).to_contain_text(name)
    page.goto(f"{live_server.url}/cases/{case.cif}")
    expect(page.get_by_test_id("assignment-row")).to_have_count(1)
    expect(page.get_by_test_id("reassign-form")).to_have_count(0)

    db.session.expire_all()
    assert db.session.get(Case, case.id).assigned_agent_id == second.id
    [history] = db.session.scalars(select(CaseAssignment)).all()
    assert (history.previous_agent_id, history.assigned_by_id) == (first.id, supervisor.id)
