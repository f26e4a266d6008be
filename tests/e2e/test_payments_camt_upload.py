"""Browser: ops uploads a camt.054 file on the payments pages and reads the outcome of every
transaction (counts per outcome, control sums, the table); nothing overflows sideways at
390 px. Screenshots: test-results/screenshots/camt-*.png."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.factories import DEFAULT_PASSWORD
from tests.integration.test_payments_camt import AFTER_THE_FILES, FIXTURES

pytestmark = pytest.mark.e2e


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_ops_uploads_a_camt_file_and_reads_every_outcome(app, page, live_server, db,
                                                         frozen_now, make_user, make_customer,
                                                         make_loan, sign_in, screenshot):
    frozen_now(AFTER_THE_FILES)
    make_loan(make_customer(), dpd=12, account_number="LD2432800017")
    make_loan(make_customer(), dpd=40, account_number="LD2432800018")
    ops = make_user(role="ops", username="lan.ops", full_name="Pham Thi Lan")
    sign_in(page, ops.username, DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/payments/reconciliation")
    page.get_by_role("link", name="Bank files (camt)").click()
    expect(page.get_by_test_id("camt-upload-form")).to_be_visible()
    page.get_by_test_id("camt-file").set_input_files(str(FIXTURES / "camt054.001.08-batch.xml"))
    with page.expect_navigation():
        page.get_by_test_id("camt-submit").click()

    rows = page.get_by_test_id("camt-transaction")
    expect(rows).to_have_count(5)
    expect(page.get_by_test_id("camt-total-accepted")).to_contain_text("3")
    expect(page.get_by_test_id("camt-total-refused")).to_contain_text("1")
    expect(page.get_by_test_id("camt-total-skipped")).to_contain_text("1")
    refused = page.locator('[data-testid="camt-transaction"][data-outcome="refused"]')
    expect(refused).to_contain_text("RV26328XK81Q")
    expect(refused).to_contain_text("The payment to reverse is not known")
    expect(page.locator('[data-testid="camt-transaction"][data-outcome="skipped"]')) \
        .to_contain_text("A debit")
    expect(page.get_by_test_id("camt-checks")).to_contain_text("Agrees")
    screenshot(page, "camt-result-1440")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(rows).to_have_count(5)
    assert no_sideways_scroll(page)
    screenshot(page, "camt-result-390")

    page.get_by_role("link", name="All imports").click()
    expect(page.get_by_test_id("camt-import-row")).to_have_count(1)
    assert no_sideways_scroll(page)
    screenshot(page, "camt-imports-390")
    page.set_viewport_size({"width": 1440, "height": 900})
    page.reload()
    screenshot(page, "camt-imports-1440")
