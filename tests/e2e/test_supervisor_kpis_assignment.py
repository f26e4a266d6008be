"""Supervisor in the browser: the KPI dashboard renders its charts for a filtered team; five
cases reassigned in bulk leave one agent's queue and appear in the other's; a CSV upload shows
its per-line errors, is fixed, and applied."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.factories import DEFAULT_PASSWORD
from tests.integration.test_assignment import bulk_cases
from tests.integration.test_kpis import scenario  # noqa: F401  (the hand-built KPI dataset)

pytestmark = pytest.mark.e2e


@pytest.fixture
def supervised(db, scenario, make_user):  # noqa: F811
    supervisor = make_user("supervisor", username="sup.north", full_name="Tran Thi Giam Sat")
    scenario["north"].supervisor_id = supervisor.id
    db.session.commit()
    cifs = bulk_cases(db, 8, prefix="E", assigned_agent_id=scenario["a"].id)
    return {**scenario, "supervisor": supervisor, "cifs": cifs}


def test_kpi_dashboard_and_bulk_reassign(page, live_server, sign_in, screenshot, supervised):
    sign_in(page, "sup.north", DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/supervisor/kpi/?period=month")
    page.get_by_test_id("kpi-team").select_option(label="North")
    expect(page.get_by_test_id("kpi-team")).to_have_value(str(supervised["north"].id))
    expect(page.get_by_test_id("chart-rpc").locator("svg rect.bar")).to_have_count(2)
    expect(page.get_by_test_id("kpi-rpc")).to_contain_text("%")
    expect(page.get_by_test_id("roll-matrix")).to_contain_text("Rolled forward")
    expect(page.get_by_test_id("kpi-definitions")).to_contain_text("Right-party contact rate")
    screenshot(page, "kpi-dashboard")

    a, b = supervised["a"], supervised["b"]
    page.goto(f"{live_server.url}/supervisor/assignment/?agent={a.id}")
    rows = page.locator("[data-testid=case-table] tbody tr")
    expect(rows).to_have_count(11)  # 3 scenario cases + 8
    moved = [rows.nth(i).get_attribute("data-cif") for i in range(5)]
    for i in range(5):
        rows.nth(i).locator("input[type=checkbox]").check()
    page.get_by_test_id("bulk-target").select_option(str(b.id))
    page.get_by_test_id("bulk-submit").click()
    expect(page.locator(".flashes")).to_contain_text("5 cases assigned")
    expect(rows).to_have_count(6)
    for cif in moved:
        expect(page.locator(f"tr[data-cif='{cif}']")).to_have_count(0)
    screenshot(page, "assignment-after-bulk")
    page.goto(f"{live_server.url}/supervisor/assignment/?agent={b.id}")
    for cif in moved:
        expect(page.locator(f"tr[data-cif='{cif}']")).to_have_count(1)

    # the agents' own work queues: gone from A's, there in B's
    def queue_of(username):
        context = page.context.browser.new_context(viewport={"width": 1440, "height": 900})
        agent_page = sign_in(context.new_page(), username, DEFAULT_PASSWORD)
        agent_page.goto(f"{live_server.url}/cases/")
        rows = agent_page.get_by_test_id("queue-row")
        expect(rows.first).to_be_visible()
        hrefs = {rows.nth(i).get_attribute("data-href") for i in range(rows.count())}
        context.close()
        return {h.rstrip("/").rsplit("/", 1)[1] for h in hrefs}

    assert set(moved) <= queue_of(b.username)
    assert not set(moved) & queue_of(a.username)


def test_csv_upload_preview_fix_apply(page, live_server, sign_in, screenshot, supervised,
                                      tmp_path):
    sign_in(page, "sup.north", DEFAULT_PASSWORD)
    a, b, c = supervised["a"], supervised["b"], supervised["c"]
    cifs = supervised["cifs"]
    bad = tmp_path / "bad.csv"
    bad.write_text("cif,agent\n"
                   f"{cifs[0]},{b.username}\n"
                   f"NOPE123,{b.username}\n"
                   f"{cifs[1]},ghost\n"
                   f"{cifs[2]},{c.username}\n"
                   f"{cifs[0]},{b.username}\n")
    page.goto(f"{live_server.url}/supervisor/assignment/upload")
    page.get_by_test_id("upload-file").set_input_files(str(bad))
    page.get_by_test_id("upload-submit").click()
    table = page.get_by_test_id("preview-error-table")
    expect(table.locator("tbody tr")).to_have_count(4)
    expect(table.locator("tr[data-line='3']")).to_contain_text("Unknown cif NOPE123")
    expect(table.locator("tr[data-line='4']")).to_contain_text("Unknown agent ghost")
    expect(table.locator("tr[data-line='5']")).to_contain_text("another team")
    expect(table.locator("tr[data-line='6']")).to_contain_text("already on line 2")
    expect(page.get_by_test_id("apply-submit")).to_have_count(0)
    screenshot(page, "assignment-csv-preview")

    good = tmp_path / "good.csv"
    good.write_text("cif,agent\n" + "".join(f"{cif},{b.username}\n" for cif in cifs[:3]))
    page.get_by_test_id("upload-file").set_input_files(str(good))
    page.get_by_test_id("upload-submit").click()
    expect(page.get_by_test_id("preview-valid")).to_contain_text("3")
    page.get_by_test_id("apply-submit").click()
    expect(page.locator(".flashes")).to_contain_text("CSV applied: 3 cases assigned")
    del a
