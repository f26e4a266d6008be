"""Browser: the admin pages for action codes and contact rules, and the notifications inbox
with its bell (screenshots in test-results/screenshots/workflow-*.png)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from portal import clock
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.e2e


@pytest.fixture
def catalogue(db):
    from portal.models import ActionCode
    from portal.seed.action_codes import DEFAULT_ACTION_CODES

    for order, spec in enumerate(DEFAULT_ACTION_CODES):
        db.session.add(ActionCode(**spec._asdict(), sort_order=order * 10,
                                  active=spec.result != "ADDRESS_NOT_FOUND"))
    db.session.commit()


def test_admin_manages_action_codes_and_contact_rules(page, live_server, db, make_user,
                                                      catalogue, sign_in, screenshot):
    make_user(role="admin", username="lan.admin", full_name="Pham Thi Lan")
    sign_in(page, "lan.admin", DEFAULT_PASSWORD)
    page.get_by_role("link", name="Action codes").click()
    expect(page.get_by_role("heading", name="Action codes")).to_be_visible()
    expect(page.get_by_test_id("action-code-tree")).to_contain_text("Promise to pay")
    screenshot(page, "workflow-action-codes")

    # a new result under an existing subtype, with a validation error first
    form = page.get_by_test_id("action-code-form")
    form.get_by_label("Subtype").fill("OUTBOUND")
    form.get_by_label("Result").fill("hung up")
    form.get_by_label("Label").fill("Customer hung up")
    form.get_by_role("button", name="Add action code").click()
    expect(page.get_by_test_id("error-result")).to_contain_text("capital letters")
    screenshot(page, "workflow-action-codes-error")
    form = page.get_by_test_id("action-code-form")
    form.get_by_label("Result").fill("HUNG_UP")
    form.get_by_label("Follow-up after (days)").fill("2")
    form.get_by_role("button", name="Add action code").click()
    expect(page.get_by_text("Action code CALL / OUTBOUND / HUNG_UP added.")).to_be_visible()
    row = page.locator("tr", has_text="Customer hung up")
    expect(row).to_contain_text("+2 d")

    # deactivate it in place (HTMX)
    row.get_by_test_id("toggle-active").click()
    toggle = page.locator("tr", has_text="Customer hung up").get_by_test_id("toggle-active")
    expect(toggle).to_have_attribute("aria-checked", "false")

    # edit page
    page.locator("tr", has_text="Customer hung up").get_by_test_id("edit-code").click()
    expect(page.get_by_role("heading", name="Customer hung up")).to_be_visible()
    screenshot(page, "workflow-action-code-edit")

    page.get_by_role("link", name="Contact rules").click()
    expect(page.get_by_role("heading", name="Contact rules")).to_be_visible()
    page.get_by_label("Contact window opens").fill("08:00")
    page.get_by_label("Call attempts allowed").fill("5")
    page.get_by_role("button", name="Save rules").click()
    expect(page.get_by_text("Contact rules saved.")).to_be_visible()
    expect(page.get_by_test_id("rules-summary")).to_contain_text("08:00 – 21:00")
    expect(page.get_by_test_id("rules-summary")).to_contain_text("5 calls per 7 days")
    screenshot(page, "workflow-contact-rules")


def test_agent_reads_notifications_and_the_bell_counts_down(page, live_server, db, make_user,
                                                            sign_in, screenshot):
    from portal.notifications.operations import notify

    agent = make_user(role="agent", username="an.tran", full_name="Tran Van An")
    now = clock.now()
    rows = [
        ("promise_broken", "Promise broken: Le Van Hung",
         "2,000,000 ₫ promised for 23/11/2026 on loan LN0000012345; 0 ₫ paid. The case is "
         "back at the top of your queue.", "CIF00012345", timedelta(minutes=4)),
        ("payment_received", "Payment received: Nguyen Thi Hoa",
         "5,500,000 ₫ received on loan LN0000067890 by bank transfer.", "CIF00067890",
         timedelta(hours=2)),
        ("customer_changed", "Customer data changed: Pham Van Duc",
         "New mobile number from T24; the old one is no longer primary.", "CIF00024680",
         timedelta(hours=7)),
        ("promise_broken", "Promise broken: Vo Thi Thu",
         "1,200,000 ₫ promised for 21/11/2026; 400,000 ₫ paid.", "CIF00013579",
         timedelta(days=3)),
    ]
    for kind, title, body, cif, age in rows:
        note = notify(db.session, agent.id, kind, title, body, link=f"/cases/{cif}", cif=cif)
        note.created_at = now - age
    db.session.commit()
    from portal.notifications.operations import list_notifications, mark_read

    oldest = list_notifications(db.session, agent.id)[-1]
    mark_read(db.session, agent.id, [oldest.id])
    db.session.commit()

    sign_in(page, "an.tran", DEFAULT_PASSWORD)
    expect(page.get_by_test_id("bell-count")).to_have_text("3")
    page.get_by_test_id("bell").click()
    expect(page.get_by_role("heading", name="Notifications")).to_be_visible()
    expect(page.get_by_test_id("notification")).to_have_count(4)
    screenshot(page, "workflow-inbox")

    first = page.get_by_test_id("notification").first
    first.get_by_test_id("mark-read").click()
    expect(first.get_by_test_id("mark-read")).to_have_count(0)
    expect(page.get_by_test_id("bell-count")).to_have_text("2")
    page.get_by_test_id("mark-all-read").click()
    expect(page.get_by_test_id("bell-count")).to_have_text(re.compile(r"^0$"))
    expect(page.get_by_test_id("mark-read")).to_have_count(0)
