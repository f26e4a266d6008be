"""Browser: an ops user who reads Vietnamese sees the backups on Operations → Workers and queues:
none yet (a red badge), then the one the nightly job took, with its time in the bank's zone and
its size. At 1440 px and on a phone (390 px), clean of serious axe violations and of English.
Screenshots in test-results/screenshots/backups-vi-*.png."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from portal.vault import backup
from tests.e2e.test_vietnamese_walk import page_problems
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.e2e

WIDTHS = {1440: {"width": 1440, "height": 900}, 390: {"width": 390, "height": 844}}


@pytest.mark.parametrize("width", WIDTHS)
def test_ops_sees_the_backups_in_vietnamese(page, live_server, app, db, make_user, sign_in,
                                            screenshot, frozen_now, tmp_path, monkeypatch,
                                            width):
    monkeypatch.setitem(app.config, "BACKUP_DIR", str(tmp_path))
    frozen_now("2028-02-29T13:05:00+00:00")  # 20:05 on a leap day in Hà Nội
    ops = make_user("ops", username=f"ops-backups-{width}", language="vi")
    page.set_viewport_size(WIDTHS[width])
    sign_in(page, ops.username, DEFAULT_PASSWORD)

    page.goto(f"{live_server.url}/ops/workers")
    card = page.get_by_test_id("backups")
    expect(card).to_contain_text("Không có bản sao lưu nào trong 26 giờ qua")
    expect(card).to_contain_text("Chưa có bản sao lưu")

    taken = backup.scheduled(app)["backup"]
    page.reload()
    card = page.get_by_test_id("backups")
    expect(card.locator(".badge")).to_have_text("Đã cập nhật")
    expect(card).to_contain_text("29/02/2028 20:05")
    expect(card).to_contain_text(taken.rsplit("/", 1)[-1])
    card.scroll_into_view_if_needed()
    screenshot(page, f"backups-vi-{width}")
    assert page_problems(page) == []
