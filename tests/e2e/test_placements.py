"""Placement in the browser, in Vietnamese (issue 22, case management 7): a supervisor places a
case with an agency from the case view and it leaves the agent's work queue; the agency's file
downloads with the case; a recall brings the case back — at 1440 px and on a phone (390 px)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal import clock
from portal.models import Agency, AuditLog, Placement
from portal.ops import invariants
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.test_vietnamese_walk import page_problems
from tests.factories import DEFAULT_PASSWORD

WIDTHS = {1440: {"width": 1440, "height": 900}, 390: {"width": 390, "height": 844}}


def queue_cifs(page, live_server) -> list[str]:
    page.goto(f"{live_server.url}/cases/")
    expect(page.get_by_test_id("queue-table").or_(page.locator(".empty")).first).to_be_visible()
    return page.locator('[data-testid="queue-row"] .customer-cell .mono').all_text_contents()


@pytest.mark.parametrize("width", WIDTHS)
def test_a_supervisor_places_a_case_it_leaves_the_queue_and_comes_back_on_recall(
        page, live_server, db, make_user, make_team, ws_case, bank_hours, sign_in, screenshot,
        width, tmp_path):
    team = make_team(name="Đội Thu hồi 1")
    agent = make_user("agent", full_name="Trần Thị Thu", team_id=team.id, language="vi")
    sup = make_user("supervisor", full_name="Lê Văn Giám", team_id=team.id, language="vi")
    team.supervisor_id = sup.id
    agency = Agency(code="ABC", name="Công ty Thu hồi nợ ABC", kind="agency")
    db.session.add_all([agency, Agency(code="LEGAL", name="Phòng Pháp chế", kind="legal")])
    db.session.commit()
    case = ws_case(agent, dpd=95, overdue="18500000")
    other = ws_case(agent, dpd=20, overdue="2000000")
    page.set_viewport_size(WIDTHS[width])

    sign_in(page, agent.username, DEFAULT_PASSWORD)
    assert set(queue_cifs(page, live_server)) == {case.cif, other.cif}
    page.context.clear_cookies()

    # the supervisor places it from the case view: the reason is asked for first
    sign_in(page, sup.username, DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/cases/{case.cif}")
    card = page.get_by_test_id("panel-placement")
    expect(card).to_contain_text("Hồ sơ này chưa từng được chuyển.")
    card.get_by_test_id("place-case").click()
    expect(page.get_by_test_id("place-form")).to_be_visible()
    page.select_option("#placement-agency", label="Công ty Thu hồi nợ ABC (Công ty thu hồi nợ)")
    # expected back in 12 weeks of the frozen business date (the clock the test sets)
    back = (clock.bank_today(bank_hours) + timedelta(weeks=12))
    page.get_by_test_id("placement-return").fill(back.isoformat())
    page.get_by_test_id("placement-save").click()
    expect(page.locator('[data-error-for="reason"]')).to_have_text("Hãy nêu lý do.")
    expect(page.locator("#placement-agency option:checked")).to_have_text(
        "Công ty Thu hồi nợ ABC (Công ty thu hồi nợ)")  # what was chosen stays chosen
    page.get_by_test_id("placement-reason").fill("KH không hợp tác sau 5 lần hẹn trả nợ")
    page.get_by_test_id("placement-save").click()
    expect(page.get_by_test_id("placement-message")).to_have_text(
        "Đã chuyển cho Công ty Thu hồi nợ ABC.")
    banner = page.get_by_test_id("placement-banner")
    expect(banner).to_contain_text("Đã chuyển cho Công ty Thu hồi nợ ABC")
    expect(banner).to_contain_text(f"dự kiến trả lại {back:%d/%m/%Y}")
    expect(page.get_by_test_id("placement-row")).to_have_count(1)
    screenshot(page, f"case-placed-vi-{width}")
    page.get_by_test_id("panel-placement").screenshot(
        path=str(SCREENSHOTS / f"panel-placement-vi-{width}.png"))
    assert page_problems(page) == []

    # the placements page: the case, the chart, and the agency's file with the case in it
    page.goto(f"{live_server.url}/placements/")
    expect(page.get_by_test_id(f"placed-{case.cif}")).to_contain_text("Công ty Thu hồi nợ ABC")
    expect(page.get_by_test_id("chart-collected-by-agency")).to_be_visible()
    screenshot(page, f"placements-vi-{width}")
    assert page_problems(page) == []
    with page.expect_download() as download_info:
        page.get_by_test_id("file-ABC").click()
    download = download_info.value
    assert download.suggested_filename.startswith("placements-ABC-")
    path = tmp_path / "file.csv"
    download.save_as(path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and case.cif.encode() in raw
    assert other.cif.encode() not in raw
    page.context.clear_cookies()

    # the agent's queue no longer holds it; the case view says where it went
    sign_in(page, agent.username, DEFAULT_PASSWORD)
    assert queue_cifs(page, live_server) == [other.cif]
    page.goto(f"{live_server.url}/cases/{case.cif}")
    expect(page.get_by_test_id("placement-banner")).to_contain_text(
        "Đã chuyển cho Công ty Thu hồi nợ ABC")
    expect(page.get_by_test_id("place-case")).to_have_count(0)
    screenshot(page, f"case-placed-agent-vi-{width}")
    assert page_problems(page) == []
    page.context.clear_cookies()

    # the supervisor recalls it: back in the queue
    sign_in(page, sup.username, DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/cases/{case.cif}")
    page.get_by_test_id("recall-placement").click()
    expect(page.get_by_test_id("recall-form")).to_be_visible()
    page.select_option("#placement-outcome", label="Ngân hàng thu hồi")
    page.get_by_test_id("placement-end-reason").fill("Ngân hàng tự xử lý, KH đã liên hệ lại")
    page.get_by_test_id("recall-save").click()
    expect(page.get_by_test_id("placement-message")).to_have_text(
        "Đã thu hồi từ Công ty Thu hồi nợ ABC: hồ sơ trở lại hàng đợi công việc.")
    expect(page.get_by_test_id("placement-banner")).to_have_count(0)
    expect(page.get_by_test_id("placement-status")).to_have_text("Đã thu hồi")
    screenshot(page, f"case-recalled-vi-{width}")
    assert page_problems(page) == []
    page.context.clear_cookies()
    sign_in(page, agent.username, DEFAULT_PASSWORD)
    assert set(queue_cifs(page, live_server)) == {case.cif, other.cif}

    db.session.expire_all()
    placement = db.session.scalar(select(Placement))
    assert placement.status == "recalled" and placement.placed_by_id == sup.id
    assert set(db.session.scalars(select(AuditLog.action).where(
        AuditLog.action.like("placement.%")))) == {
        "placement.placed", "placement.file_exported", "placement.recalled"}
    assert invariants.placements.violations(db.session) == []


def test_an_admin_adds_an_agency_in_vietnamese(page, live_server, db, make_user, sign_in,
                                               screenshot):
    admin = make_user("admin", language="vi")
    sign_in(page, admin.username, DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/placements/agencies")
    page.locator("#agency-name").fill("Công ty Luật Minh Anh")
    page.locator("#agency-code").fill("x")
    page.get_by_test_id("agency-save").click()
    expect(page.locator('[data-error-for="code"]')).to_have_text(
        "Từ 2 đến 20 ký tự: chữ in hoa, chữ số, - hoặc _.")
    page.locator("#agency-code").fill("MINHANH")
    page.select_option("#agency-kind", label="Phòng pháp chế")
    page.get_by_test_id("agency-save").click()
    expect(page.get_by_test_id("agency-MINHANH")).to_contain_text("Công ty Luật Minh Anh")
    for width, viewport in WIDTHS.items():
        page.set_viewport_size(viewport)
        screenshot(page, f"agencies-vi-{width}")
        assert page_problems(page) == []
