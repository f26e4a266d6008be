"""Playwright with the system Chromium (Debian package `chromium`, or CHROMIUM_PATH).

A missing browser fails the run: browser tests are never silently skipped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.home_data import seed_home_data

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-results" / "screenshots"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


def pytest_configure(config):
    # pytest-playwright empties its --output folder (default test-results/) during the session;
    # keep its artifacts in a subfolder so the screenshots below survive the run.
    if config.getoption("--output", default=None) == "test-results":
        config.option.output = str(ROOT / "test-results" / "playwright")


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        pytest.fail(f"Chromium not found at {path}: install the Debian package `chromium` "
                    "or set CHROMIUM_PATH to a Chromium binary", pytrace=False)
    return path


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": chromium_path(),
            "args": CHROMIUM_ARGS, "headless": True}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1440, "height": 900},
            "locale": "en-GB", "timezone_id": "Asia/Ho_Chi_Minh"}


@pytest.fixture
def screenshot():
    """``screenshot(page, "login")`` saves test-results/screenshots/login.png (whole page)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def home(db, make_user, make_team, make_customer, make_loan):
    return seed_home_data(db, make_user, make_team, make_customer, make_loan)


@pytest.fixture
def sign_in(live_server):
    """Sign ``username`` in through the login form; returns the page."""

    def do(page, username: str, password: str):
        page.goto(f"{live_server.url}/auth/login")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        with page.expect_navigation():  # the form posts with a full page load
            page.get_by_role("button", name="Sign in").click()
        return page

    return do


@pytest.fixture(scope="session")
def base_url(live_server):
    """The live server (replaces pytest-base-url's fixture, which pytest deprecates)."""
    return live_server.url
