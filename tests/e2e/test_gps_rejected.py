"""In a real browser, a supervisor and ops read the positions phones sent that could never be
accepted (a phone offline for two weeks, a point at latitude 91): counts per reason and the
latest, reasons in words, at 1440 px and on a phone without sideways scrolling."""
# ruff: noqa: F811 - the field fixtures are imported from tests.field_support

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.factories import DEFAULT_PASSWORD, working_hour
from tests.field_support import (  # noqa: F401 - fixtures
    field_team,
    make_device_token,
    make_field_agent,
)

pytestmark = pytest.mark.e2e

PAGE_WIDTH = "document.documentElement.scrollWidth"


def test_supervisor_and_ops_read_the_rejected_positions(
        page, live_server, sign_in, screenshot, db, client, frozen_now, field_team, make_user,
        make_field_agent, make_device_token):
    now = frozen_now(working_hour())
    make_user(role="supervisor", username="sup_rejected", team_id=field_team.id)
    make_user(role="ops", username="ops_rejected")
    agent = make_field_agent(full_name="Tran Van Binh")
    token = make_device_token(agent)
    for days in (9, 12, 15):  # the phone was off for two weeks: its buffered points
        stamp = int((now - timedelta(days=days)).timestamp())
        r = client.post(f"/api/v1/field/osmand?id=356938035643809&timestamp={stamp}"
                        f"&lat=10.7769&lon=106.7009&speed=0.0&bearing=0.0&altitude=0.0"
                        f"&accuracy=0.0&batt=64.0&token={token}")
        assert r.status_code == 200 and r.get_json()["rejected"] == 1
    client.post(f"/api/v1/field/osmand?id=356938035643809&timestamp={int(now.timestamp())}"
                f"&lat=91.5&lon=106.7&token={token}")

    sign_in(page, "sup_rejected", DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/field/map")
    page.get_by_test_id("rejected-link").click()
    expect(page.get_by_test_id("rejected-row")).to_have_count(4)
    expect(page.get_by_test_id("rejected-reason").filter(
        has_text="Older than the oldest position accepted")).to_contain_text("3")
    expect(page.get_by_test_id("rejected-reason-words").first).to_contain_text(
        "Latitude outside -90 to 90")
    screenshot(page, "gps-rejected-1440")
    page.set_viewport_size({"width": 390, "height": 844})
    expect(page.get_by_test_id("rejected-list")).to_be_visible()
    assert page.evaluate(PAGE_WIDTH) <= 390
    screenshot(page, "gps-rejected-390")

    page.set_viewport_size({"width": 1440, "height": 900})
    page.context.clear_cookies()
    sign_in(page, "ops_rejected", DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/ops/integrations")
    backlog = page.get_by_test_id("backlog-GPS").filter(has_text="Rejected positions")
    expect(backlog).to_contain_text("4")  # all four received in the last 24 hours
    backlog.get_by_role("link").click()
    expect(page.get_by_test_id("rejected-row")).to_have_count(4)
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate(PAGE_WIDTH) <= 390
    screenshot(page, "gps-rejected-ops-390")
