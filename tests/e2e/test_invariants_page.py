"""Browser: ops open the truth check after a night whose check found a case whose totals differ
from its products; they see the violated truth, open its rows, and ask for a check now. At
1440 px and on a phone the table stays inside its card. Screenshots in
test-results/screenshots/invariants-*.png."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from portal.ops import invariants
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.e2e

FITS = """() => [...document.querySelectorAll('table')].every(
    t => t.getBoundingClientRect().right <= t.closest('.card').getBoundingClientRect().right + 1)"""


def test_ops_see_the_violated_truth_and_its_rows(db, page, sign_in, make_user, make_customer,
                                                 make_loan, live_server, screenshot):
    make_user("ops", username="ops-truth")
    customer = make_customer()
    make_loan(customer, dpd=35)
    db.session.execute(text("INSERT INTO cases (cif, status, total_overdue, max_dpd) "
                            "VALUES (:cif, 'open', 1, 1)"), {"cif": customer.cif})
    db.session.commit()
    invariants.run_and_record(db.session, trigger="schedule")

    sign_in(page, "ops-truth", DEFAULT_PASSWORD)
    for width, height in ((1440, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{live_server.url}/ops/invariants")
        latest = page.get_by_test_id("invariants-latest")
        expect(latest).to_contain_text("violation")
        row = latest.locator('tr[data-invariant="case_totals"]')
        expect(row).to_contain_text("Case totals and products equal a fresh recompute")
        row.locator("summary").click()
        expect(row).to_contain_text(f"cif={customer.cif}")
        assert page.evaluate(FITS), f"a table is wider than its card at {width} px"
        screenshot(page, f"invariants-{width}")

    page.get_by_role("button", name="Check now").click()
    expect(page.locator(".flash, .alert, [role=status]").first).to_contain_text("queued")
