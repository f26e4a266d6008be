"""Browser: the Content-Security-Policy breaks nothing and is never violated.

Each role signs in and opens every page of its navigation, then the pages with the most
script: a case view (HTMX panels, contact form), the field map (Leaflet from static/vendor)
and the ops health page. Any ``securitypolicyviolation`` event or CSP console message fails the
test, and so does any uncaught script error. The behaviours moved out of inline handlers into
static/js/app.js still work (select-all, auto-submitting filters, cancelling an inline form),
and a boosted navigation is an HTMX swap (the window survives it)."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.e2e

# Reports every violation of the page to Python (exposed below), from before any page script.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolation(e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
                        " at " + e.sourceFile + ":" + e.lineNumber);
});
"""

ROLES = {"agent": "an.tran", "field_agent": "duc.vo", "supervisor": "lan.pham",
         "ops": "bao.nguyen", "admin": "tam.do"}
# pages reached from other pages rather than from the navigation
MORE_PAGES = {
    "agent": ["/cases/CIF100200"],
    "supervisor": ["/supervisor/assignment/upload", "/cases/CIF100203"],
    "ops": ["/payments/reconciliation", "/payments/rejected", "/ops/integrations/runs",
            "/ops/integrations/quarantine"],
}


class Watch:
    """The CSP problems and script errors seen by one browser context."""

    def __init__(self, context):
        self.problems: list[str] = []
        context.expose_function("__cspViolation", lambda text: self.problems.append(text))
        context.add_init_script(REPORT_VIOLATIONS)

    def page(self, context):
        page = context.new_page()
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        return page

    def _console(self, message):
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text or \
                "Permissions-Policy" in text or "evalDisallowed" in text:
            self.problems.append(f"console {message.type}: {text}")


def signed_in(browser, live_server, username):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-GB",
                                  timezone_id="Asia/Ho_Chi_Minh")
    watch = Watch(context)
    page = watch.page(context)
    page.goto(f"{live_server.url}/auth/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    expect(page.locator("nav.nav")).to_be_visible()
    return context, watch, page


def settle(page):
    """The page has loaded and htmx has nothing in flight (what came in on load is in)."""
    page.wait_for_load_state("load")
    page.wait_for_function("() => window.htmx && !document.querySelector('.htmx-request')")


def close(context):
    """Stop the pages' polling and let the live server finish what it was answering (a
    request still open at teardown would deadlock with the tables' TRUNCATE)."""
    for page in context.pages:
        page.goto("about:blank")
    context.close()
    time.sleep(0.3)


def test_every_role_every_page_without_a_csp_violation(browser, live_server, home):
    visited = {}
    for role, username in ROLES.items():
        context, watch, page = signed_in(browser, live_server, username)
        try:
            links = page.locator("nav.nav a").evaluate_all(
                "links => links.map(a => a.getAttribute('href'))")
            assert links, role
            for href in links + MORE_PAGES.get(role, []):
                response = page.goto(f"{live_server.url}{href}")
                assert response.status == 200, (role, href)
                csp = response.headers["content-security-policy"]
                assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
                settle(page)
                assert watch.problems == [], (role, href, watch.problems)
            visited[role] = links

            # a boosted navigation is an HTMX swap: the window (and this marker) survives it
            page.goto(f"{live_server.url}/")
            page.evaluate("window.__notReloaded = true")
            target = links[-1] if links[-1] != "/" else links[0]
            page.locator(f'nav.nav a[href="{target}"]').click()
            expect(page).to_have_url(f"{live_server.url}{target}")
            settle(page)
            assert page.evaluate("window.__notReloaded === true"), role
            assert watch.problems == [], (role, "boosted", watch.problems)
        finally:
            close(context)
    assert len(visited) == len(ROLES)
    assert sum(len(v) for v in visited.values()) >= 20


def test_case_view_contact_form_and_queue_filters(browser, live_server, home):
    context, watch, page = signed_in(browser, live_server, ROLES["agent"])
    try:
        page.goto(f"{live_server.url}/cases/CIF100200")
        add_phone = page.get_by_test_id("add-phone")
        expect(add_phone).to_be_visible()  # the contacts panel came in by HTMX
        add_phone.click()
        form = page.locator("#contact-form-slot form")
        expect(form).to_be_visible()
        form.get_by_role("button", name="Cancel").click()  # data-remove-closest
        expect(page.locator("#contact-form-slot form")).to_have_count(0)
        expect(page.get_by_test_id("action-type")).to_be_visible()
        settle(page)
        assert watch.problems == [], watch.problems
    finally:
        close(context)


def test_assignment_select_all_and_auto_submitting_filters(browser, live_server, home):
    context, watch, page = signed_in(browser, live_server, ROLES["supervisor"])
    try:
        page.goto(f"{live_server.url}/supervisor/assignment/")
        boxes = page.locator('[data-testid="case-table"] tbody input[type=checkbox]')
        expect(boxes.first).to_be_visible()
        page.get_by_label("Select all").check()  # data-check-all
        assert all(boxes.evaluate_all("bs => bs.map(b => b.checked)"))
        page.get_by_label("Select all").uncheck()
        assert not any(boxes.evaluate_all("bs => bs.map(b => b.checked)"))
        page.locator("#f-bucket").select_option("90+")  # data-autosubmit
        expect(page).to_have_url(re.compile(r"bucket=90%2B"))
        expect(page.locator("#f-bucket")).to_have_value("90+")

        settle(page)
        assert watch.problems == [], watch.problems
    finally:
        close(context)

    context, watch, page = signed_in(browser, live_server, ROLES["ops"])
    try:
        page.goto(f"{live_server.url}/payments/reconciliation")
        page.get_by_label("Status", exact=True).select_option("resolved")  # ="native"
        expect(page).to_have_url(re.compile(r"status=resolved"))
        settle(page)
        assert watch.problems == [], watch.problems
    finally:
        close(context)


def test_field_map_and_ops_page(app, browser, live_server, home, monkeypatch):
    monkeypatch.setitem(app.config, "OPS_POLL_SECONDS", 1)
    context, watch, page = signed_in(browser, live_server, ROLES["supervisor"])
    try:
        page.goto(f"{live_server.url}/field/map")
        expect(page.locator("#field-map .leaflet-container")).to_be_visible()
        expect(page.get_by_test_id("map-status")).not_to_have_text("Loading…")
        settle(page)
        assert watch.problems == [], watch.problems
    finally:
        close(context)

    context, watch, page = signed_in(browser, live_server, ROLES["ops"])
    try:
        page.goto(f"{live_server.url}/ops/integrations")
        expect(page.get_by_test_id("ops-cards")).to_be_visible()
        # the block is polled, and the poll pauses while an action menu is open (the rule
        # lives in app.js now, not in an hx-trigger filter that htmx would eval)
        polls = []
        page.on("request", lambda r: polls.append(r.url) if "/integrations/cards" in r.url
                else None)
        page.wait_for_timeout(2500)
        assert polls, "the health cards were not polled"
        page.locator("#ops-cards details.ops-menu summary").first.click()
        page.wait_for_timeout(300)  # a request already under way may still land
        polls.clear()
        page.wait_for_timeout(2500)
        assert polls == [], "polled while a menu was open"
        settle(page)
        assert watch.problems == [], watch.problems
    finally:
        close(context)


def test_hostile_names_on_the_field_agents_map_stay_text(browser, live_server, db, make_user,
                                                         make_team, make_customer, make_loan):
    """Leaflet writes a string tooltip with innerHTML: a customer name from the bank shown in a
    map tooltip must arrive as text (and the CSP would report the injected handler)."""
    from decimal import Decimal

    from portal import clock
    from portal.field import visits
    from portal.models import Address, Case

    hostile = '<img src=x onerror="document.title=1">Nguyen <b>An</b>'
    team = make_team()
    agent = make_user(role="field_agent", username="field_csp", team_id=team.id)
    customer = make_customer(name=hostile)
    make_loan(customer, dpd=45)
    db.session.add(Address(cif=customer.cif, type="HOME", line1="12 Le Loi", district="D1",
                           city="Ho Chi Minh", lat=10.7769, lon=106.7009, is_primary=True,
                           source_system="T24"))
    db.session.add(Case(cif=customer.cif, assigned_field_agent_id=agent.id, status="open",
                        priority=50, max_dpd=45, total_overdue=Decimal("5000000")))
    db.session.flush()
    visits.plan_visit(db.session, cif=customer.cif, agent_id=agent.id,
                      planned_for=clock.bank_today(), planned_by=agent)
    db.session.commit()

    context, watch, page = signed_in(browser, live_server, "field_csp")
    try:
        page.goto(f"{live_server.url}/field/visits")
        marker = page.locator('[data-testid="agent-map"] .visit-marker').first
        expect(marker).to_be_visible()
        marker.hover()
        tooltip = page.locator(".leaflet-tooltip")
        expect(tooltip).to_contain_text("<img src=x")
        assert tooltip.locator("img, b").count() == 0
        settle(page)
        assert watch.problems == [], watch.problems
    finally:
        close(context)
