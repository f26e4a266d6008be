"""Issue 22, in Vietnamese: an admin creates a user; the user signs in with the temporary
password and must change it (no other page first; a weak password is refused next to the
field); an auditor finds the change in the audit log, filtered by the user, and exports it as
CSV. The new pages are checked at 1440 and 390 px (no English left, no sideways scroll, axe)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.test_vietnamese_walk import WIDTHS, page_problems
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.e2e


@pytest.fixture
def staff(db, make_user, make_team):
    team = make_team(name="Đội Hà Nội 2", region="Miền Bắc")
    admin = make_user(role="admin", username="quan.tri", full_name="Nguyễn Quản Trị",
                      language="vi")
    auditor = make_user(role="auditor", username="kiem.toan", full_name="Phạm Kiểm Toán",
                        language="vi")
    return {"team": team, "admin": admin, "auditor": auditor}


def signed_in(browser, live_server, username: str, password: str, width: int = 1440):
    context = browser.new_context(viewport=WIDTHS[width], locale="vi-VN",
                                  timezone_id="Asia/Ho_Chi_Minh", accept_downloads=True)
    page = context.new_page()
    page.goto(f"{live_server.url}/auth/login")
    page.locator("#username").fill(username)
    page.locator("#password").fill(password)
    with page.expect_navigation():
        page.locator("#password").press("Enter")
    return context, page


def check(page, name: str, problems: list[str], width: int) -> None:
    folder = SCREENSHOTS / "vi"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"admin22-{width}-{name}.png"), full_page=True)
    problems += [f"{width}px {name}: {p}" for p in page_problems(page)]


def test_admin_creates_a_user_who_must_change_the_password_and_an_auditor_finds_it(
        browser, live_server, staff):
    problems: list[str] = []
    base = live_server.url

    # the admin creates the user (Vietnamese: the admin's language is vi)
    context, page = signed_in(browser, live_server, "quan.tri", DEFAULT_PASSWORD)
    assert page.locator("html").get_attribute("lang") == "vi"
    page.goto(f"{base}/admin/users")
    page.get_by_test_id("new-user").click()
    expect(page).to_have_url(re.compile(r"/admin/users/new$"))
    # a duplicate username is refused next to the field
    page.locator("#username").fill("quan.tri")
    page.locator("#full_name").fill("Trần Thị Lan")
    page.get_by_role("button", name="Tạo người dùng").click()
    expect(page.get_by_test_id("error-username")).to_have_text("Tên đăng nhập này đã có người "
                                                               "dùng.")
    check(page, "new-user-refused", problems, 1440)
    page.locator("#username").fill("lan.tran")
    page.locator("#role").select_option("agent")
    page.locator("#team_id").select_option(str(staff["team"].id))
    page.locator("#cti_agent_id").fill("CTI-0420")
    page.locator("#language").select_option("vi")
    page.get_by_role("button", name="Tạo người dùng").click()
    temporary = page.get_by_test_id("temporary-password").inner_text().strip()
    assert re.fullmatch(r"[A-Za-z0-9]{4}(-[A-Za-z0-9]{4}){3}", temporary)
    check(page, "user-created", problems, 1440)
    page.goto(f"{base}/admin/users")
    expect(page.get_by_test_id("users")).to_contain_text("lan.tran")
    expect(page.get_by_test_id("users")).to_contain_text("Phải đổi mật khẩu")
    check(page, "users", problems, 1440)
    context.close()

    # the user signs in with the temporary password and must change it first
    context, page = signed_in(browser, live_server, "lan.tran", temporary, width=390)
    expect(page).to_have_url(re.compile(r"/auth/password"))
    expect(page.get_by_test_id("must-change")).to_be_visible()
    for path in ("/", "/cases/", "/notifications/"):
        page.goto(base + path)
        expect(page).to_have_url(re.compile(r"/auth/password"))
    check(page, "must-change", problems, 390)
    page.locator("#current_password").fill(temporary)
    page.locator("#new_password").fill("matkhau123")
    page.locator("#confirm_password").fill("matkhau123")
    page.get_by_role("button", name="Đổi mật khẩu").click()
    expect(page.get_by_test_id("error-new_password")).to_contain_text(
        "danh sách mật khẩu phổ biến")
    check(page, "weak-password", problems, 390)
    page.locator("#current_password").fill(temporary)
    page.locator("#new_password").fill("Hoa-sen-no-sang-som")
    page.locator("#confirm_password").fill("Hoa-sen-no-sang-som")
    page.get_by_role("button", name="Đổi mật khẩu").click()
    expect(page).not_to_have_url(re.compile(r"/auth/password"))
    page.goto(f"{base}/notifications/")
    expect(page).to_have_url(re.compile(r"/notifications/$"))
    context.close()

    # the auditor finds the change, filtered by the user, and exports it
    for width in (1440, 390):
        context, page = signed_in(browser, live_server, "kiem.toan", DEFAULT_PASSWORD, width)
        expect(page).to_have_url(re.compile(r"/admin/audit$"))
        page.locator("#user").fill("lan.tran")
        page.get_by_role("button", name="Lọc").click()
        rows = page.get_by_test_id("audit-row")
        expect(rows.filter(has_text="Tạo người dùng")).to_have_count(1)
        expect(rows.filter(has_text="Người dùng tự đổi mật khẩu")).to_have_count(1)
        created = rows.filter(has_text="Tạo người dùng")
        created.locator("summary").click()
        expect(created.locator(".audit-diff")).to_contain_text("lan.tran")
        expect(created.locator(".audit-diff")).to_contain_text("Đội Hà Nội 2")
        check(page, "audit-log", problems, width)
        with page.expect_download(timeout=10_000) as caught:
            page.get_by_test_id("export-csv").click()
        text = Path(caught.value.path()).read_text(encoding="utf-8-sig")
        exported = list(csv.DictReader(io.StringIO(text)))
        mine = [r for r in exported if r["action"] == "user.create"]
        assert len(mine) == 1 and '"username": "lan.tran"' in mine[0]["after"], exported
        assert mine[0]["actor"] == "quan.tri"
        assert {r["action"] for r in exported} >= {"user.create", "user.temporary_password",
                                                   "user.password_change"}
        context.close()

    assert problems == [], "\n".join(problems)
