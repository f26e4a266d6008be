"""Browser tests: sign in, home pages of every role, sign out, wrong password, lockout, and
the htmx plumbing (boosted navigation, CSRF header, partial swap)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.e2e


def test_sign_in_see_home_and_sign_out(page, live_server, home, sign_in, screenshot):
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(re.compile(r"/auth/login\?next=/$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    screenshot(page, "login")

    sign_in(page, "an.tran", DEFAULT_PASSWORD)
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", name=re.compile(r"Good \w+, An"))).to_be_visible()
    expect(page.get_by_text("Welcome, Tran Van An.")).to_be_visible()
    expect(page.get_by_test_id("stat-open-cases")).to_contain_text("7")
    expect(page.get_by_test_id("promises-today")).to_contain_text("Tran Thi Mai")

    page.locator("details.user-menu summary").click()
    page.get_by_test_id("logout").click()
    expect(page).to_have_url(f"{live_server.url}/auth/login")
    expect(page.get_by_text("You have signed out.")).to_be_visible()
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(re.compile(r"/auth/login"))


def test_wrong_password_shows_error(page, home, sign_in, screenshot):
    sign_in(page, "an.tran", "not-the-password")
    expect(page.get_by_test_id("login-error")).to_have_text("Invalid username or password.")
    expect(page.get_by_label("Username")).to_have_value("an.tran")


def test_missing_fields_are_shown_next_to_the_fields(page, live_server, db):
    page.goto(f"{live_server.url}/auth/login")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#username-error")).to_have_text("Enter your username.")
    expect(page.locator("#password-error")).to_have_text("Enter your password.")


def test_sixth_wrong_attempt_is_locked_out(page, home, sign_in, screenshot):
    for attempt in range(5):
        sign_in(page, "binh.le", f"wrong-{attempt}")
        expect(page.get_by_test_id("login-error")).to_have_text("Invalid username or password.")
    sign_in(page, "binh.le", DEFAULT_PASSWORD)  # the right password, too late
    expect(page.get_by_test_id("login-error")).to_have_text(
        re.compile(r"Account locked, try again in \d+ minutes?\."))
    screenshot(page, "login_locked")


@pytest.mark.parametrize(("username", "heading", "marker"), [
    ("an.tran", "Good", "Cases by DPD bucket"),
    ("duc.vo", "Good", "Today's visits"),
    ("lan.pham", "Good", "HCMC Team 1"),
    ("bao.nguyen", "Good", "Integrations"),
    ("tam.do", "Good", "Active API tokens"),
])
def test_each_role_home_page(page, home, sign_in, screenshot, username, heading, marker):
    sign_in(page, username, DEFAULT_PASSWORD)
    expect(page.get_by_role("heading", name=re.compile(heading)).first).to_be_visible()
    expect(page.get_by_role("heading", name=marker).first).to_be_visible()
    role = {"an.tran": "agent", "duc.vo": "field_agent", "lan.pham": "supervisor",
            "bao.nguyen": "ops", "tam.do": "admin"}[username]
    screenshot(page, f"home_{role}")


def test_navigation_shows_each_role_only_its_areas(page, home, sign_in):
    sign_in(page, "an.tran", DEFAULT_PASSWORD)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Home")).to_be_visible()
    expect(nav.get_by_role("link", name="API tokens")).to_have_count(0)
    expect(nav.get_by_role("link", name="Users")).to_have_count(0)


def test_admin_creates_and_revokes_token_through_htmx(page, live_server, home, sign_in,
                                                      screenshot):
    sign_in(page, "tam.do", DEFAULT_PASSWORD)
    page.evaluate("window.__sameDocument = true")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API tokens").click()
    expect(page.get_by_role("heading", name="API tokens", exact=True)).to_be_visible()
    expect(page).to_have_url(f"{live_server.url}/admin/tokens")
    assert page.evaluate("window.__sameDocument") is True  # hx-boost: no full page load

    page.get_by_label("Name").fill("Phone – Le Thi Binh")
    page.get_by_label(re.compile(r"^api\.profile")).check()
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-token-value")
    expect(secret).to_have_text(re.compile(r"^crm_"))
    screenshot(page, "admin_tokens_created")
    raw = secret.inner_text()

    me = page.request.get(f"{live_server.url}/api/v1/me",
                          headers={"Authorization": f"Bearer {raw}"})
    assert me.status == 200 and me.json()["token"]["name"] == "Phone – Le Thi Binh"

    page.on("dialog", lambda dialog: dialog.accept())
    row = page.get_by_test_id("token-row").filter(has_text="Phone – Le Thi Binh")
    row.get_by_role("button", name="Revoke").click()  # hx-post with the CSRF header
    expect(row).to_contain_text("Revoked")
    assert page.evaluate("window.__sameDocument") is True
    me = page.request.get(f"{live_server.url}/api/v1/me",
                          headers={"Authorization": f"Bearer {raw}"})
    assert me.status == 401 and me.json()["error"]["code"] == "token_revoked"


def test_admin_users_page(page, home, sign_in, screenshot):
    sign_in(page, "tam.do", DEFAULT_PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Users").click()
    expect(page.get_by_role("heading", name="Users", exact=True)).to_be_visible()
    expect(page.get_by_test_id("users")).to_contain_text("Vo Minh Duc")
    expect(page.get_by_test_id("users")).to_contain_text("Deactivated")
    screenshot(page, "admin_users")


def test_forbidden_page_uses_the_layout(page, live_server, home, sign_in, screenshot):
    sign_in(page, "an.tran", DEFAULT_PASSWORD)
    response = page.goto(f"{live_server.url}/admin/tokens")
    assert response.status == 403
    expect(page.get_by_role("heading", name="Access denied")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    screenshot(page, "error_403")
