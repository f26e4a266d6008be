"""Issue 19, finding 19: every table fits its card.

A walk of every role's pages at 1440 px on the demo data (``flask seed-demo``, small) plus the
operations rows the demo does not make (reconciliation gaps, runs with errors, API tokens): each
demo role signs in, visits every page of its navigation, the pages those link to (one of each
kind: a case view, a run detail, …) and the case view, run detail, discrepancies and tokens
pages, and every rendered <table> must fit its card: no content wider than the box it sits in,
no card past the window, no page that scrolls sideways. A failure names the page and the table.

Below 1440 px a table may scroll inside its card; that scroll region is focusable and labelled
(keyboard and screen-reader users can reach what is off to the side): checked at 390 px on the
field agent's pages (a phone) and on the discrepancies page.

Also the two findings themselves: the discrepancies' Save and the tokens' Revoke are on screen
at 1440 px, and revoking the token just created takes its secret off the page."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from portal import clock
from portal.models import Discrepancy, IntegrationRun, QuarantinedRecord, ReconciliationRun, User
from portal.permissions import tokens as api_tokens
from portal.permissions.roles import API_SCOPES
from portal.seed.demo import DEFAULT_DEMO_PASSWORD

pytestmark = pytest.mark.e2e

DEMO_ROLES = {"agent": "agent01", "field_agent": "field01", "supervisor": "sup1", "ops": "ops",
              "admin": "admin"}
PASSWORD = os.environ.get("DEMO_PASSWORD") or DEFAULT_DEMO_PASSWORD
MAX_LINKED_PAGES = 40  # pages reached from the navigation's pages, per role
SKIP = re.compile(r"^/(auth|static|api|metrics|login|logout)\b|\.csv\b|/export|/download|/map/data")

# Every rendered table of the page, measured: [message] for each one that does not fit.
# ``scroll_ok``: a table wider than its box passes when the box is a focusable, labelled scroll
# region (narrow windows); at 1440 px nothing may be wider than its box.
MEASURE = """(scrollOk) => {
  const problems = [];
  const vw = document.documentElement.clientWidth;
  const heading = (el) => {
    const card = el.closest('.card');
    const h = card && card.querySelector('.card-header h2, .card-header h3, h2, h3');
    return h ? h.textContent.trim().replace(/\\s+/g, ' ') : '';
  };
  const nameOf = (t) => [t.dataset.testid, t.getAttribute('aria-label'), heading(t)]
      .filter(Boolean).join(' / ') || ('table.' + (t.className || '?'));
  const isRegion = (el) => el.tabIndex === 0 && el.getAttribute('role') === 'region'
      && !!(el.getAttribute('aria-label') || el.getAttribute('aria-labelledby'))
      && ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
  const scrollsSideways = (el) => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
  for (const t of document.querySelectorAll('#content table')) {
    if (!t.getClientRects().length || t.closest('[hidden], details:not([open])')) continue;
    const name = nameOf(t);
    const card = t.closest('.card') || document.querySelector('#content');
    let inRegion = false;
    for (let el = t; el && el !== card.parentElement; el = el.parentElement) {
      if (el.scrollWidth <= el.clientWidth + 1) continue;
      if (scrollOk && isRegion(el)) { inRegion = true; break; }
      const what = el === t ? 'the table itself'
        : (el.className ? 'its .' + String(el.className).split(' ')[0] : el.tagName.toLowerCase());
      const unlabelled = scrollsSideways(el) && !isRegion(el)
        ? ' (a scroll region without tabindex/role/label)' : '';
      problems.push(`table "${name}" is ${el.scrollWidth}px wide in ${what} of `
        + `${el.clientWidth}px${unlabelled}`);
      break;
    }
    if (!inRegion) {
      for (const cell of t.querySelectorAll('th, td')) {
        if (cell.scrollWidth > cell.clientWidth + 1) {
          problems.push(`table "${name}": a cell's content is cut off (`
            + cell.textContent.trim().replace(/\\s+/g, ' ').slice(0, 40) + ')');
          break;
        }
      }
    }
    const right = card.getBoundingClientRect().right;
    if (right > vw + 1) {
      problems.push(`table "${name}": its card ends at ${Math.round(right)}px, past the `
        + `${vw}px window`);
    }
  }
  if (document.documentElement.scrollWidth > vw + 1) {
    const wide = document.documentElement.scrollWidth;
    problems.push(`the page scrolls sideways (${wide}px in ${vw}px)`);
  }
  return problems;
}"""


def shape(path: str) -> str:
    """/cases/CIF0001 and /cases/CIF0002 are one kind of page: ids become '*'."""
    return "/".join("*" if re.search(r"\d", part) else part for part in path.split("/"))


@pytest.fixture
def demo(app, db):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["seed-demo", "--customers", "200", "--loans", "300"])
    assert result.exit_code == 0, result.output
    db.session.rollback()
    now = clock.now()
    ops_user = db.session.query(User).filter_by(username="ops").one()
    admin = db.session.query(User).filter_by(username="admin").one()
    field = db.session.query(User).filter_by(username="field01").one()

    # a payment reconciliation with a gap of each kind, some open, one resolved at length
    day = clock.add_days(clock.bank_today(), -1)
    run = ReconciliationRun(integration="PAYMENTS", business_date=day, status="partial",
                            source_count=1284, crm_count=1281, matched_count=1277,
                            discrepancy_count=7, source_total=Decimal("18734560000"),
                            crm_total=Decimal("18731060000"), started_at=now - timedelta(hours=9),
                            finished_at=now - timedelta(hours=9) + timedelta(seconds=14))
    db.session.add(run)
    db.session.flush()
    gaps = [
        ("missing_in_crm", {"amount": "12500000", "currency": "VND", "status": "settled"}, None),
        ("missing_in_source", None, {"amount": "3500000", "currency": "VND",
                                     "status": "received", "payment_id": 48213}),
        ("amount_mismatch", {"amount": "125000000", "currency": "VND", "status": "settled"},
         {"amount": "12500000", "currency": "VND", "status": "received", "payment_id": 48214}),
        ("status_mismatch", {"amount": "7250000", "currency": "VND", "status": "reversed"},
         {"amount": "7250000", "currency": "VND", "status": "received", "payment_id": 48215}),
        ("missing_in_crm", {"error": "ingest_failed",
                            "message": "account LN0000987654 is closed in the CRM"}, None),
    ]
    for n, (kind, source, crm) in enumerate(gaps):
        db.session.add(Discrepancy(run_id=run.id, kind=kind, entity="payment",
                                   key=f"FT{day:%y%m%d}{n:04d}VCBHCMC0012345",
                                   source_value=source, crm_value=crm))
    db.session.add(Discrepancy(
        run_id=run.id, kind="amount_mismatch", entity="payment", key="FT24110900019876543",
        source_value={"amount": "9900000", "currency": "VND", "status": "settled"},
        crm_value={"amount": "990000", "currency": "VND", "status": "received",
                   "payment_id": 48216},
        status="resolved", resolved_by_id=ops_user.id, resolved_at=now - timedelta(hours=2),
        resolution="Teller keyed 990,000 instead of 9,900,000; corrected in T24 and the CRM "
                   "payment adjusted after the customer's receipt was checked by the branch."))

    # integration runs with long errors and quarantined records (run detail, runs, quarantine)
    w4 = IntegrationRun(integration="W4", kind="sync", trigger="manual", status="partial",
                        started_at=now - timedelta(hours=3), triggered_by_id=ops_user.id,
                        finished_at=now - timedelta(hours=3) + timedelta(seconds=41),
                        duration_ms=41_000, extracted=3120, transformed=3106, loaded=2980,
                        unchanged=126, quarantined=14, failed=0,
                        errors=[{"message": "card W4C000000580: contract holder changed from "
                                            "10001406 to 10001336; held for an ops decision",
                                 "record": "W4C000000580"},
                                {"message": "HTTPSConnectionPool(host='w4.internal.bank.vn', "
                                            "port=443): Read timed out. (read timeout=10)"}])
    gps = IntegrationRun(integration="GPS", kind="forward", trigger="schedule",
                         status="failed", started_at=now - timedelta(minutes=40),
                         finished_at=now - timedelta(minutes=39), duration_ms=2_300,
                         extracted=17, loaded=0, failed=17,
                         errors=[{"message": "503 Service Unavailable from the GPS system"}])
    db.session.add_all([w4, gps])
    db.session.flush()
    for n in range(3):
        db.session.add(QuarantinedRecord(
            integration="W4", run_id=w4.id, entity="card", record_key=f"W4C00000{n:04d}",
            reason="due_date: '31/02/2026' is not a date (expected YYYY-MM-DD)",
            payload={"contract_number": f"W4C00000{n:04d}", "due_date": "31/02/2026",
                     "min_due": "1,250,000", "credit_limit": "50000000"}))

    # API tokens: long names, many scopes, one revoked
    api_tokens.create_token(db.session, name="Phone – Vo Minh Duc (Samsung Galaxy A54, HCMC "
                                             "field team 1, MDM asset HCM-FLD-000457, issued 2026)",
                            scopes=["api.profile", "api.locations", "api.visits"], user=field,
                            created_by=admin)
    api_tokens.create_token(db.session, name="Call centre CTI connector (Genesys production)",
                            scopes=["api.calls"], user=None, created_by=admin,
                            expires_at=now + timedelta(days=90))
    api_tokens.create_token(db.session, name="Integration monitor (Prometheus, all scopes)",
                            scopes=list(API_SCOPES), user=None, created_by=admin)
    for agent in db.session.query(User).filter_by(role="field_agent").order_by(User.id).limit(3):
        api_tokens.create_token(db.session, name=f"phone-sim {agent.username}",
                                scopes=["api.locations", "api.visits"], user=agent,
                                created_by="phone-sim")
    old, _ = api_tokens.create_token(db.session, name="Old CTI token", scopes=["api.calls"],
                                     user=None, created_by=admin)
    api_tokens.revoke_token(db.session, old, revoked_by=admin)
    db.session.commit()

    # the case view with the most products and contacts of agent01's cases
    cif = db.session.execute(text("""
        SELECT c.cif FROM cases c JOIN users u ON u.id = c.assigned_agent_id
        WHERE u.username = 'agent01'
        ORDER BY (SELECT count(*) FROM loans l WHERE l.cif = c.cif)
               + (SELECT count(*) FROM cards k WHERE k.cif = c.cif)
               + (SELECT count(*) FROM phones p WHERE p.cif = c.cif) DESC, c.cif
        LIMIT 1""")).scalar_one()
    return {"case": f"/cases/{cif}", "run": f"/ops/integrations/runs/{w4.id}",
            "gps_run": f"/ops/integrations/runs/{gps.id}",
            "discrepancies": "/payments/reconciliation?status=all",
            "tokens": "/admin/tokens"}


def visit(page, url: str) -> int:
    response = page.goto(url)
    page.wait_for_load_state("networkidle")
    return response.status if response else 0


def measure(page, scroll_ok: bool = False) -> list[str]:
    return page.evaluate(MEASURE, scroll_ok)


def nav_paths(page) -> list[str]:
    links = page.get_by_role("navigation", name="Main").locator("a")
    return [urlsplit(links.nth(i).get_attribute("href")).path for i in range(links.count())]


def content_paths(page) -> list[str]:
    hrefs = page.eval_on_selector_all(
        "#content a[href^='/']", "els => els.map(e => e.getAttribute('href'))")
    return [h for h in hrefs if not SKIP.search(urlsplit(h).path)]


def measure_with_tabs(page) -> list[str]:
    """The page as shown, then each tab of a tab strip (the case view's history) opened."""
    problems = measure(page)
    labels = page.locator("#content .tab-strip label")
    for i in range(labels.count()):
        labels.nth(i).click()
        tab = labels.nth(i).inner_text().split("\n")[0].strip()
        problems += [f"[{tab} tab] {p}" for p in measure(page)]
    return problems


@pytest.mark.parametrize("role", list(DEMO_ROLES))
def test_every_table_of_every_page_of_each_role_fits_its_card_at_1440px(
        page, live_server, sign_in, demo, role):
    sign_in(page, DEMO_ROLES[role], PASSWORD)
    base = live_server.url
    # the navigation's pages and the named ones, each visited; then one page of each kind
    # they link to (one case view, one run detail, …)
    queue = [(url, True) for url in dict.fromkeys([*nav_paths(page), *demo.values()])]
    seen_shapes: set[str] = set()
    problems, visited, linked = [], [], 0
    while queue:
        url, named = queue.pop(0)
        path = urlsplit(url).path
        if SKIP.search(path) or (not named and shape(path) in seen_shapes):
            continue
        seen_shapes.add(shape(path))
        status = visit(page, base + url)
        if status in (403, 404):  # a named page that is not this role's
            continue
        assert status == 200, f"{role}: {url} answered {status}"
        visited.append(url)
        problems += [f"{url}: {p}" for p in measure_with_tabs(page)]
        for href in content_paths(page):
            if linked < MAX_LINKED_PAGES and shape(urlsplit(href).path) not in seen_shapes \
                    and all(href != queued for queued, _ in queue):
                queue.append((href, False))
                linked += 1
    assert len(visited) >= 4, visited
    assert problems == [], (f"{role}, {len(visited)} pages walked ({', '.join(visited)}):\n"
                            + "\n".join(problems))


def test_on_a_phone_tables_scroll_inside_their_cards_in_labelled_regions(
        browser, live_server, demo):
    """390 px: the field agent's pages (a phone is their tool) and the discrepancies."""
    problems = []
    for username, named in (("field01", []), ("ops", [demo["discrepancies"]])):
        context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-GB",
                                      timezone_id="Asia/Ho_Chi_Minh")
        page = context.new_page()
        page.goto(f"{live_server.url}/auth/login")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        with page.expect_navigation():
            page.get_by_role("button", name="Sign in").click()
        for url in named or nav_paths(page):
            visit(page, live_server.url + url)
            problems += [f"{username} {url}: {p}" for p in measure(page, scroll_ok=True)]
        context.close()
    assert problems == [], "\n".join(problems)


def test_discrepancies_save_is_on_screen_at_1440px(page, live_server, sign_in, demo):
    sign_in(page, "ops", PASSWORD)
    visit(page, live_server.url + "/payments/reconciliation")
    rows = page.get_by_test_id("discrepancy-row")
    expect(rows).to_have_count(5)
    width = page.viewport_size["width"]
    for i in range(5):
        save = rows.nth(i).get_by_role("button", name="Save")
        box = save.bounding_box()
        card = page.get_by_test_id("discrepancies").locator("xpath=ancestor::div[@class='card'][1]")
        card_box = card.bounding_box()
        assert box["x"] + box["width"] <= min(width, card_box["x"] + card_box["width"]), (
            f"row {i}: Save ends at {box['x'] + box['width']:.0f}px, the card at "
            f"{card_box['x'] + card_box['width']:.0f}px")


def test_tokens_revoke_is_on_screen_and_revoking_the_new_token_hides_its_secret(
        page, live_server, sign_in, demo):
    sign_in(page, "admin", PASSWORD)
    visit(page, live_server.url + "/admin/tokens")
    page.get_by_label("Name").fill(  # as long as a name may be (100)
        "Phone – Nguyen Thi Thu Ha (iPhone 13 Pro, Hanoi field team 2, MDM asset HN-FLD-000123, "
        "issued 2026)")
    page.get_by_label("api.locations").check()
    page.get_by_label("api.visits").check()
    page.get_by_role("button", name="Create token").click()
    banner = page.get_by_test_id("new-token")
    expect(banner).to_be_visible()
    secret = page.locator("#new-token-value").inner_text()
    assert len(secret) > 20

    width = page.viewport_size["width"]
    revokes = page.get_by_test_id("token-row").get_by_role("button", name="Revoke")
    expect(revokes).to_have_count(7)
    for i in range(7):
        box = revokes.nth(i).bounding_box()
        assert box["x"] + box["width"] <= width, f"Revoke {i} ends at {box['x'] + box['width']}px"

    # revoking another token (a rotation: new one made, old one revoked) keeps the new secret
    other = page.get_by_test_id("token-row").filter(has_text="Call centre CTI connector")
    page.once("dialog", lambda dialog: dialog.accept())
    other.get_by_role("button", name="Revoke").click()
    expect(other).to_contain_text("Revoked")
    expect(banner).to_be_visible()

    # revoking the token just created takes its secret off the page
    new_row = page.get_by_test_id("token-row").filter(has_text="Nguyen Thi Thu Ha")
    page.once("dialog", lambda dialog: dialog.accept())
    new_row.get_by_role("button", name="Revoke").click()
    expect(new_row).to_contain_text("Revoked")
    expect(page.get_by_test_id("new-token")).to_have_count(0)
    assert secret not in page.content()
