"""Every page of every role, in Vietnamese, at 1440 px and on a phone (390 px) — issue 21.

Each demo role reads the portal in Vietnamese (its users' language set to ``vi``) and walks its
pages (tests/e2e/walk.py: its navigation, the named pages, one page of each kind they link to).
On each page, at each width:

- **no English left**: no text a person reads (text, ``title``, ``aria-label``, ``placeholder``,
  ``alt``, a button's value) holds an English word of the list below, outside elements marked
  ``translate="no"`` (the HTML attribute for content that is not the portal's words: names,
  codes, notes people typed, data from the bank's systems);
- **no sideways scroll**: the page is no wider than the window;
- **axe-core** (vendored in tests/e2e/vendor, run in the page): no critical or serious
  violation of WCAG 2.1 A/AA and axe's best practices.

Screenshots of every page: test-results/screenshots/vi/<role>-<width>-<page>.png.
``WALK_ROLES=agent,ops`` walks only those roles (while translating one area).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from sqlalchemy import update

from portal.models import User
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.walk import DEMO_ROLES, PASSWORD, seed_walk_data, walk

pytestmark = pytest.mark.e2e

AXE = (Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js").read_text()
WIDTHS = {1440: {"width": 1440, "height": 900}, 390: {"width": 390, "height": 844}}
ROLES = [r for r in DEMO_ROLES
         if not os.environ.get("WALK_ROLES") or r in os.environ["WALK_ROLES"].split(",")]

# English words that are not Vietnamese syllables (so "to", "an", "in", "do", "no", "may",
# "can", "loan" — words or names in Vietnamese too — are not here), and the words of this
# portal's screens. Matched whole, any case, with letters (diacritics included) on neither side.
ENGLISH = tuple("""the and of is are was were been has have had not with for from this that
these those
your you our they their there here what which when where who will would should must its by on
at or if into than then only every each none any some more less yes other unknown
save cancel search open close closed status amount date time customer customers account
accounts payment payments total next previous back filter export download upload view edit
delete add new create update submit apply reset clear show hide details history notes note call
calls visit visits promise promises agent agents team teams today yesterday tomorrow week month
year days hours minutes ago never error errors warning success failed pending active inactive
settings name phone address reason result type source page rows records run runs queue case
cases overdue outstanding due paid received assigned unassigned supervisor field map route
review reviews report reports select choose all enter required optional sign signed welcome
language help refresh retry last first latest good morning afternoon evening""".split())  # noqa: SIM905

ENGLISH_LEFT = """(words) => {
  const word = new RegExp('(?<!\\\\p{L})(' + words.join('|') + ')(?!\\\\p{L})', 'iu');
  const skip = (el) => !el || el.closest('[translate="no"], script, style, noscript, svg');
  const found = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const text = node.textContent.replace(/\\s+/g, ' ').trim();
    if (text && !skip(node.parentElement) && word.test(text)) found.add(text.slice(0, 90));
  }
  for (const el of document.querySelectorAll(
      '[title], [aria-label], [placeholder], [alt], input[type=submit][value]')) {
    if (skip(el)) continue;
    for (const name of ['title', 'aria-label', 'placeholder', 'alt', 'value']) {
      const value = el.getAttribute(name);
      if (value && (name !== 'value' || el.type === 'submit') && word.test(value)) {
        found.add(`[${name}] ${value.slice(0, 80)}`);
      }
    }
  }
  return [...found];
}"""

RUN_AXE = """async () => {
  const result = await axe.run(document, {
    runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']},
    resultTypes: ['violations'],
  });
  return result.violations
    .filter(v => v.impact === 'critical' || v.impact === 'serious')
    .map(v => `${v.impact} ${v.id}: ${v.nodes.length}× ` +
              v.nodes.slice(0, 2).map(n => n.target.join(' ')).join(', '));
}"""

WIDER = "() => document.documentElement.scrollWidth - window.innerWidth"


def page_problems(page) -> list[str]:
    problems = [f"English: {text}" for text in page.evaluate(ENGLISH_LEFT, ENGLISH)]
    overflow = page.evaluate(WIDER)
    if overflow > 0:
        problems.append(f"scrolls sideways by {overflow}px")
    page.evaluate(AXE + "\n;0")  # through the DevTools protocol: the page's CSP stays on
    problems += [f"axe {v}" for v in page.evaluate(RUN_AXE)]
    return problems


@pytest.fixture
def walk_data(app, db):
    named = seed_walk_data(app, db)
    db.session.execute(update(User).values(language="vi"))
    db.session.commit()
    return named


@pytest.mark.parametrize("role", ROLES)
def test_every_page_of_the_role_in_vietnamese_at_1440_and_390(browser, live_server, walk_data,
                                                              role):
    folder = SCREENSHOTS / "vi"
    folder.mkdir(parents=True, exist_ok=True)
    problems, walked = [], 0
    for width, viewport in WIDTHS.items():
        context = browser.new_context(viewport=viewport, locale="vi-VN",
                                      timezone_id="Asia/Ho_Chi_Minh")
        page = context.new_page()
        page.goto(f"{live_server.url}/auth/login")
        page.locator("#username").fill(DEMO_ROLES[role])
        page.locator("#password").fill(PASSWORD)
        with page.expect_navigation():
            page.locator("#password").press("Enter")
        assert page.locator("html").get_attribute("lang") == "vi"
        for url in walk(page, live_server.url, list(walk_data.values())):
            walked += 1
            name = re.sub(r"[^A-Za-z0-9]+", "_", url).strip("_") or "home"
            page.screenshot(path=str(folder / f"{role}-{width}-{name}.png"), full_page=True)
            problems += [f"{width}px {url}: {p}" for p in page_problems(page)]
        context.close()
    assert walked >= 8, walked
    assert problems == [], f"{role}: {len(problems)} problems on {walked} pages walked:\n" + \
        "\n".join(problems)
