"""Refresh one customer now, in the browser, in Vietnamese (issue 24 §1): an agent presses
"Cập nhật từ hệ thống ngân hàng" on the case view; the W4, LOS and T24 twins answer over real
HTTP; the panel lists the card's new balance (old → new, Vietnamese number format), says
"no changes" for the sources that had none, and the accounts panel shows the new balance — at
1440 px and on a phone (390 px), axe clean."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from portal.models import Case
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.test_vietnamese_walk import page_problems
from tests.factories import DEFAULT_PASSWORD
from tests.integration.sync_helpers import conn_fixture  # noqa: F401 - fixture
from tests.integration.test_customer_refresh import (  # noqa: F401 - fixtures
    _customer_with_both,
    _twin_record,
    applications,
    cards,
    positions,
    twins,
)

WIDTHS = {1440: {"width": 1440, "height": 900}, 390: {"width": 390, "height": 844}}


@pytest.mark.parametrize("width", WIDTHS)
def test_an_agent_refreshes_a_customer_and_sees_what_changed(
        page, live_server, db, request, make_user, sign_in, screenshot, width):
    w4, _, _ = request.getfixturevalue("twins")  # the integration tests' twins (imported)
    seed_cards = request.getfixturevalue("cards")
    seed_applications = request.getfixturevalue("applications")
    cif, card, _ = _customer_with_both(seed_cards, seed_applications)
    _twin_record(w4, card["contract_number"])["total_balance"] = "48250000"
    agent = make_user("agent", full_name="Trần Thị Thu", language="vi")
    db.session.add(Case(cif=cif, assigned_agent_id=agent.id))  # the agent's case
    db.session.commit()
    sign_in(page, agent.username, DEFAULT_PASSWORD)
    page.set_viewport_size(WIDTHS[width])
    page.goto(f"{live_server.url}/cases/{cif}")

    button = page.get_by_test_id("refresh-customer")
    expect(button).to_contain_text("Cập nhật từ hệ thống ngân hàng")
    button.click()
    panel = page.get_by_test_id("refresh-panel")
    expect(panel.locator("h2")).to_have_text("Dữ liệu mới từ ngân hàng")
    w4_part = panel.get_by_test_id("refresh-source-w4")
    change = w4_part.get_by_test_id("refresh-change")
    expect(change).to_have_count(1)
    expect(change).to_contain_text("Dư nợ")
    expect(change).to_contain_text("48.250.000")
    expect(panel.get_by_test_id("refresh-source-los")).to_contain_text("Không có thay đổi")
    expect(panel.get_by_test_id("refresh-source-t24")).to_contain_text("Không có thay đổi")
    # the accounts panel follows (case-updated)
    expect(page.get_by_test_id("card-row").filter(has_text=card["contract_number"])
           ).to_contain_text("48.250.000")
    panel.scroll_into_view_if_needed()
    screenshot(page, f"case-refresh-vi-{width}")
    panel.screenshot(path=str(SCREENSHOTS / f"panel-refresh-vi-{width}.png"))
    assert page_problems(page) == []

    # again at once: refused, and the page says why
    button.click()
    refused = page.get_by_test_id("refresh-refused")
    expect(refused).to_contain_text("vừa được cập nhật cách đây chưa đến 5 phút")
    refused.scroll_into_view_if_needed()
    screenshot(page, f"case-refresh-refused-vi-{width}")
    assert page_problems(page) == []
