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

import pytest
from playwright.sync_api import expect

from tests.e2e.walk import DEMO_ROLES, PASSWORD, nav_paths, seed_walk_data, visit, walk

pytestmark = pytest.mark.e2e

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


@pytest.fixture
def demo(app, db):
    return seed_walk_data(app, db)


def measure(page, scroll_ok: bool = False) -> list[str]:
    return page.evaluate(MEASURE, scroll_ok)


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
    problems, visited = [], []
    for url in walk(page, live_server.url, list(demo.values())):
        visited.append(url)
        problems += [f"{url}: {p}" for p in measure_with_tabs(page)]
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
