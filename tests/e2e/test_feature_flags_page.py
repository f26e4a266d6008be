"""Browser: an ops user who reads Vietnamese opens the Feature flags page, sees strategies on for
one team with its last change, and turns messages on for a chosen team with the form; then the
other team's supervisor no longer finds the message templates. At 1440 px and on a phone
(390 px), clean of serious axe violations and of English. Screenshots in
test-results/screenshots/flags-vi-*.png."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal.flags import operations
from portal.models import AuditLog
from tests.e2e.test_vietnamese_walk import page_problems
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.e2e

WIDTHS = {1440: {"width": 1440, "height": 900}, 390: {"width": 390, "height": 844}}


@pytest.mark.parametrize("width", WIDTHS)
def test_ops_switch_a_flag_for_one_team_in_vietnamese(page, live_server, db, make_user,
                                                      make_team, sign_in, screenshot, width):
    north, south = make_team(name="Đội Miền Bắc"), make_team(name="Đội Miền Nam")
    ops = make_user("ops", username=f"ops-flags-{width}", full_name="Trần Vận Hành",
                    language="vi")
    sup_south = make_user("supervisor", username=f"sup-south-{width}", team_id=south.id,
                          language="vi")
    operations.set_flag(db.session, "strategies", "teams", [north.id], ops)
    db.session.commit()

    page.set_viewport_size(WIDTHS[width])
    sign_in(page, ops.username, DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/ops/flags")
    expect(page.locator("h1")).to_have_text("Cờ tính năng")
    strategies = page.get_by_test_id("flag-strategies")
    expect(strategies.get_by_test_id("flag-state")).to_have_text("Chỉ bật cho các nhóm đã chọn")
    expect(strategies).to_contain_text("Đội Miền Bắc")
    expect(strategies.get_by_test_id("flag-last-change")).to_contain_text(ops.username)
    expect(page.get_by_test_id("flag-messages").get_by_test_id("flag-last-change")).to_have_text(
        "Chưa từng thay đổi: bật cho mọi người (mặc định).")
    screenshot(page, f"flags-vi-{width}")
    assert page_problems(page) == []

    # messages on for the north team only, through the form
    form = page.get_by_test_id("flag-form-messages")
    form.get_by_label("Chỉ bật cho các nhóm đã chọn").check()
    form.get_by_role("button", name="Lưu").click()
    expect(page.get_by_test_id("flag-form-messages").locator(".field-error")).to_have_text(
        "Hãy chọn ít nhất một nhóm, hoặc một trạng thái khác.")
    form = page.get_by_test_id("flag-form-messages")
    form.get_by_label("Chỉ bật cho các nhóm đã chọn").check()
    form.get_by_label("Đội Miền Bắc").check()
    form.get_by_role("button", name="Lưu").click()
    messages = page.get_by_test_id("flag-messages")
    expect(messages.get_by_test_id("flag-state")).to_have_text("Chỉ bật cho các nhóm đã chọn")
    expect(messages.get_by_test_id("flag-last-change")).to_contain_text(ops.username)
    screenshot(page, f"flags-vi-changed-{width}")
    assert page_problems(page) == []
    row = db.session.scalars(select(AuditLog).where(AuditLog.entity_id == "messages")).one()
    assert row.after == {"mode": "teams", "teams": ["Đội Miền Bắc"]}

    # the south team's supervisor: no templates in the menu, a clear refusal at the address
    page.context.clear_cookies()
    sign_in(page, sup_south.username, DEFAULT_PASSWORD)
    expect(page.locator('nav a[href="/messages/templates"]')).to_have_count(0)
    page.goto(f"{live_server.url}/messages/templates")
    expect(page.locator("main")).to_contain_text("chưa được bật cho nhóm của bạn")
    screenshot(page, f"flags-vi-refused-{width}")
