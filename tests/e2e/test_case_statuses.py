"""Statuses and the master note in the browser, in Vietnamese (issue 22, case management 1-2):
an agent sets a processing state with a substate and a reason and sees it in the history and
the case header, edits the master note and sees the text it replaced — at 1440 px and on a
phone (390 px); an admin retires a value in use, and deleting it is refused."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal.cases import statuses
from portal.models import Case, StatusValue
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.test_agent_workspace import HTMX_READY, choose
from tests.e2e.test_vietnamese_walk import page_problems
from tests.factories import DEFAULT_PASSWORD

WIDTHS = {1440: {"width": 1440, "height": 900}, 390: {"width": 390, "height": 844}}


def value(db, kind: str, code: str) -> StatusValue:
    return db.session.scalar(select(StatusValue).where(StatusValue.kind == kind,
                                                       StatusValue.code == code))


@pytest.mark.parametrize("width", WIDTHS)
def test_an_agent_sets_a_processing_state_and_edits_the_master_note_in_vietnamese(
        page, live_server, db, make_user, ws_case, bank_hours, sign_in, screenshot, width):
    agent = make_user("agent", full_name="Trần Thị Thu", language="vi")
    case = ws_case(agent, dpd=75, overdue="18500000")
    sign_in(page, agent.username, DEFAULT_PASSWORD)
    page.set_viewport_size(WIDTHS[width])
    page.goto(f"{live_server.url}/cases/{case.cif}")
    expect(page.get_by_test_id("header-status-processing_state")).to_have_text("Mới tiếp nhận")

    # a processing state with a substate: the reason is asked for first
    page.get_by_test_id("change-processing_state").click()
    form = page.get_by_test_id("status-form")
    expect(form).to_be_visible()
    choose(page, "status-value", "Chuyển cấp xử lý")
    expect(page.locator("#status-substate")).to_be_visible()  # the state's substates
    page.wait_for_function(HTMX_READY, arg="status-value")
    page.select_option("#status-substate", label="Chuyển pháp chế xem xét khởi kiện")
    page.get_by_test_id("status-save").click()
    error = page.locator('[data-error-for="reason"]')
    expect(error).to_have_text("Hãy nêu lý do thay đổi trạng thái.")
    expect(page.locator("#status-substate option:checked")).to_have_text(
        "Chuyển pháp chế xem xét khởi kiện")  # what was chosen stays chosen
    page.get_by_test_id("status-reason-input").fill("KH không hợp tác sau 3 lần hẹn trả nợ")
    page.get_by_test_id("status-save").click()
    expect(page.get_by_test_id("status-message")).to_have_text("Đã lưu: Trạng thái xử lý.")
    change = page.get_by_test_id("status-change").first
    expect(change).to_contain_text("Mới tiếp nhận → Chuyển cấp xử lý · "
                                   "Chuyển pháp chế xem xét khởi kiện")
    expect(change).to_contain_text("Trần Thị Thu")
    expect(change.get_by_test_id("status-reason")).to_have_text(
        "KH không hợp tác sau 3 lần hẹn trả nợ")
    expect(page.get_by_test_id("header-status-processing_state")).to_have_text(
        "Chuyển cấp xử lý · Chuyển pháp chế xem xét khởi kiện")
    page.get_by_test_id("panel-statuses").scroll_into_view_if_needed()
    screenshot(page, f"case-statuses-vi-{width}")

    # the master note: edited twice, the text each edit replaced in its history
    panel = page.get_by_test_id("panel-master-note")
    for text in ("KH làm tự do, thu nhập không ổn định.",
                 "KH làm tự do, thu nhập không ổn định.\nVợ KH hỗ trợ trả nợ từ tháng 12."):
        panel.get_by_test_id("edit-master-note").click()
        page.get_by_test_id("master-note-input").fill(text)
        page.get_by_test_id("master-note-save").click()
        expect(page.get_by_test_id("master-note-message")).to_have_text("Đã lưu ghi chú chính.")
    expect(page.get_by_test_id("master-note-text")).to_contain_text("Vợ KH hỗ trợ trả nợ")
    page.get_by_test_id("master-note-history").locator("summary").click()
    expect(page.get_by_test_id("note-version")).to_have_count(2)
    expect(page.get_by_test_id("note-previous").first).to_have_text(
        "KH làm tự do, thu nhập không ổn định.")
    # an over-long note is refused next to the field, the note as it was
    panel.get_by_test_id("edit-master-note").click()
    page.get_by_test_id("master-note-input").fill("x" * 4001)
    page.get_by_test_id("master-note-save").click()
    expect(page.locator('[data-error-for="note"]')).to_have_text(
        "Ghi chú tối đa 4000 ký tự (ghi chú này có 4001).")
    panel.scroll_into_view_if_needed()
    screenshot(page, f"case-master-note-vi-{width}")
    for testid in ("panel-statuses", "panel-master-note", "case-header"):  # close-ups
        page.get_by_test_id(testid).screenshot(path=str(SCREENSHOTS / f"{testid}-vi-{width}.png"))
    assert page_problems(page) == []

    db.session.expire_all()
    case = db.session.get(Case, case.id)
    assert (case.processing_state, case.processing_substate_id) == (
        "escalated", value(db, "processing_state", "legal_review").id)
    assert case.notes.endswith("từ tháng 12.")
    assert statuses.violations(db.session) == []


def test_an_admin_retires_a_value_in_use_and_deleting_it_is_refused(
        page, live_server, db, make_user, ws_case, bank_hours, sign_in, screenshot):
    agent = make_user("agent", language="vi")
    case = ws_case(agent)
    refuses = value(db, "customer_status", "refuses")
    statuses.set_status(db.session, agent, case, "customer_status", refuses.id, None,
                        "KH tuyên bố không trả", bank_hours)
    db.session.commit()
    admin = make_user("admin", language="vi")
    sign_in(page, admin.username, DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/admin/statuses")
    row = page.locator(f"#status-{refuses.id}")
    expect(row).to_contain_text("Không hợp tác, từ chối trả nợ")
    row.get_by_test_id("toggle-status-value").click()
    expect(page.locator(f"#status-{refuses.id}")).to_have_class("retired")
    screenshot(page, "admin-statuses-vi-1440")
    assert page_problems(page) == []

    page.locator(f"#status-{refuses.id}").get_by_test_id("edit-status-value").click()
    page.get_by_test_id("delete-status-value").click()
    expect(page.get_by_test_id("delete-refused")).to_contain_text(
        "Giá trị này đang được sử dụng (2 hồ sơ hoặc mục lịch sử) nên không thể xóa.")
    screenshot(page, "admin-status-delete-refused-vi-1440")
    page.set_viewport_size(WIDTHS[390])
    screenshot(page, "admin-status-delete-refused-vi-390")
    assert page_problems(page) == []
    db.session.expire_all()
    assert value(db, "customer_status", "refuses").active is False

    # the agent is not offered it any more, and still sees it on the case
    page.context.clear_cookies()
    sign_in(page, agent.username, DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/cases/{case.cif}")
    expect(page.get_by_test_id("status-value-customer_status")).to_have_text(
        "Không hợp tác, từ chối trả nợ")
    expect(page.get_by_test_id("status-customer_status")).to_contain_text("đã ngừng sử dụng")
    page.get_by_test_id("change-customer_status").click()
    options = page.locator("#status-value option")
    expect(options.first).to_be_attached()
    assert "Không hợp tác, từ chối trả nợ" not in options.all_text_contents()
    assert "Hợp tác" in options.all_text_contents()
