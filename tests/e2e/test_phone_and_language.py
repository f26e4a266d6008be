"""A phone (390 × 844) and the language menu (issue 21 §1, §3).

On a phone the navigation folds behind a menu button: the first screen is the page, not the
menu; the button opens the drawer (its links reachable), Escape or a tap outside closes it, and
the page never scrolls sideways. The language menu in the user menu switches the portal to
Vietnamese, which then stays the user's language."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
WIDER_THAN_WINDOW = "() => document.documentElement.scrollWidth - window.innerWidth"


def test_on_a_phone_the_menu_button_opens_the_navigation(page, live_server, home, sign_in,
                                                         screenshot):
    page.set_viewport_size(PHONE)
    sign_in(page, "an.tran", DEFAULT_PASSWORD)
    sidebar = page.locator("#sidebar")
    menu = page.get_by_role("button", name="Menu")
    expect(menu).to_be_visible()
    expect(sidebar).to_be_hidden()
    # the content starts on the first screen: the greeting is above the fold
    heading = page.get_by_role("heading", name=re.compile(r"Good \w+, An"))
    assert heading.bounding_box()["y"] < 200
    assert page.evaluate(WIDER_THAN_WINDOW) <= 0
    screenshot(page, "phone_home")

    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(sidebar.get_by_role("link", name="Work queue")).to_be_visible()
    screenshot(page, "phone_menu_open")
    page.keyboard.press("Escape")
    expect(sidebar).to_be_hidden()
    expect(menu).to_have_attribute("aria-expanded", "false")

    menu.click()
    with page.expect_navigation():
        sidebar.get_by_role("link", name="Work queue").click()
    expect(page.get_by_role("heading", name="Work queue", level=1)).to_be_visible()
    expect(sidebar).to_be_hidden()
    assert page.evaluate(WIDER_THAN_WINDOW) <= 0


def test_at_1440_the_navigation_stays_open_without_a_menu_button(page, home, sign_in):
    sign_in(page, "an.tran", DEFAULT_PASSWORD)
    expect(page.locator("#sidebar").get_by_role("link", name="Work queue")).to_be_visible()
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()


def test_the_language_menu_switches_to_vietnamese(page, live_server, home, sign_in, screenshot):
    sign_in(page, "an.tran", DEFAULT_PASSWORD)
    page.locator("details.user-menu summary").click()
    with page.expect_navigation():
        page.get_by_role("button", name="Tiếng Việt").click()
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    expect(page.get_by_role("heading", name=re.compile(r"Chào buổi \S+, An"))).to_be_visible()
    expect(page.locator("#sidebar").get_by_role("link", name="Danh sách công việc")) \
        .to_be_visible()
    screenshot(page, "home_vi_1440")
    page.set_viewport_size(PHONE)
    page.reload()
    expect(page.get_by_role("button", name="Danh mục")).to_be_visible()
    screenshot(page, "home_vi_390")
    # the choice is the user's: signing in afresh (the sign-in page in the deployment's
    # language) brings it back
    page.context.clear_cookies()
    page.set_viewport_size({"width": 1440, "height": 900})
    sign_in(page, "an.tran", DEFAULT_PASSWORD)
    expect(page.locator("html")).to_have_attribute("lang", "vi")
