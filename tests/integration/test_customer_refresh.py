"""Refresh one customer now (issue 24 §1): the case view's button fetches the customer from the W4
and LOS twins over real HTTP and applies it through the daily sync's transform, loader, change
capture and events; the change panel; refusals (source down, paused, unknown customer) that write
nothing of that source; the rate limits on the product clock; the audit row; the CLI."""

from __future__ import annotations

import copy
import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from integrations import control
from integrations.sandbox._api import ServerThread
from integrations.sandbox.t24_files import SeedSource, generate_day
from integrations.sync import run_sync
from integrations.t24.load import load_set
from integrations.t24.manifest import verify
from integrations.t24.mapping import load_profile
from portal import clock
from portal.models import AuditLog
from portal.ops import invariants
from portal.refresh import operations as refresh
from tests.integration.sync_helpers import conn_fixture, events  # noqa: F401 - fixture

CUSTOMERS, PRODUCTS = 60, 90
BANK_DAY = date(2026, 11, 24)


@pytest.fixture(scope="module")
def cards():
    from integrations.sandbox.w4_server import seed_cards

    return seed_cards(CUSTOMERS, PRODUCTS, business_date=BANK_DAY)


@pytest.fixture(scope="module")
def applications():
    from integrations.sandbox.los_server import seed_applications

    return seed_applications(CUSTOMERS, PRODUCTS, business_date=BANK_DAY)


@pytest.fixture(scope="module")
def positions():
    from integrations.sandbox.t24_enquiry import read_positions

    return read_positions(CUSTOMERS, PRODUCTS, BANK_DAY, "t24-dfe")


@pytest.fixture
def twins(app, conn, cards, applications, positions, tmp_path, monkeypatch):
    """T24 day 0 loaded, the W4 and LOS twins serving, both synced once (the baseline); the
    T24 enquiry twin serving the same day's records (in T24's field names)."""
    from integrations.sandbox import los_server, t24_enquiry, w4_server

    # the daily files in the enquiry's profile (T24's field names): one mapping, one set of keys
    source = SeedSource(CUSTOMERS, PRODUCTS, business_date=BANK_DAY)
    load_set(conn, verify(generate_day(tmp_path / "t24", source, profile="t24-dfe"),
                          profile=load_profile("t24-dfe")))
    enquiry_app = t24_enquiry.create_app(customers=CUSTOMERS, products=PRODUCTS,
                                         profile="t24-dfe")
    enquiry_app.extensions["sandbox"].positions = copy.deepcopy(positions)
    with ServerThread(w4_server.create_app([dict(c) for c in cards])) as w4, \
            ServerThread(los_server.create_app([dict(a) for a in applications])) as los, \
            ServerThread(enquiry_app) as t24:
        for key, value in (("T24_ENQUIRY_URL", t24.url), ("T24_ENQUIRY_PROFILE", "t24-dfe"),
                           ("T24_ENQUIRY_API_KEY", t24_enquiry.DEFAULT_API_KEY),
                           ("W4_API_URL", w4.url), ("W4_API_KEY", w4_server.DEFAULT_API_KEY),
                           ("LOS_API_URL", los.url),
                           ("LOS_API_TOKEN", los_server.DEFAULT_TOKEN),
                           ("SYNC_HTTP_RETRIES", 0), ("REFRESH_HTTP_RETRIES", 0),
                           ("REFRESH_HTTP_TIMEOUT", 2)):
            monkeypatch.setitem(app.config, key, value)
        run_sync("W4", app=app, retries=0)
        run_sync("LOS", app=app, retries=0)
        conn.execute("TRUNCATE events CASCADE")
        yield w4, los, t24


def _customer_with_both(cards, applications) -> tuple[str, dict, dict]:
    with_app = {a["customer_cif"]: a for a in applications if a["referees"]}
    for card in cards:
        if card["client_cif"] in with_app:
            return card["client_cif"], card, with_app[card["client_cif"]]
    raise AssertionError("the seed has no customer with a card and an application")


def _violations(db) -> dict[str, int]:
    results = invariants.check_all(db.session)
    assert not [r.error for r in results if r.error]
    return {r.name: r.violations for r in results if r.violations}


def _twin_record(server, key):
    return server.state.collection._records[key]


def _post(client, cif, htmx=True):
    headers = {"HX-Request": "true", "HX-Target": "refresh-result"} if htmx else {}
    return client.post(f"/cases/{cif}/refresh", headers=headers)


@pytest.fixture
def agent(app, login_as, monkeypatch):
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", False)
    return login_as("agent")


def test_changed_balances_applied_with_events_panel_run_and_audit(
        app, db, client, conn, twins, cards, applications, agent, login, make_user):
    w4, los, _ = twins
    violations_before = _violations(db)
    cif, card, application = _customer_with_both(cards, applications)
    _twin_record(w4, card["contract_number"])["total_balance"] = "12345678"
    _twin_record(los, application["application_id"])["employer"] = "Công ty Mới"
    referee = _twin_record(los, application["application_id"])["referees"][0]
    referee["full_name"] = "Trần Thị Đổi Tên"

    response = _post(client, cif)
    assert response.status_code == 200, response.get_data(as_text=True)
    html = response.get_data(as_text=True)
    assert response.headers["HX-Trigger"] == "case-updated"

    # the database
    assert conn.execute("SELECT outstanding FROM cards WHERE contract_number = %s",
                        (card["contract_number"],)).fetchone()[0] == 12345678
    assert conn.execute("SELECT employer FROM loan_applications WHERE application_id = %s",
                        (application["application_id"],)).fetchone()[0] == "Công ty Mới"
    # the runs: one of kind refresh per source, the customer in its note
    runs = conn.execute("SELECT integration, status, trigger, loaded, triggered_by_id, note "
                        "FROM integration_runs WHERE kind = 'refresh' ORDER BY id").fetchall()
    assert [(r[0], r[1], r[2], r[4], r[5]) for r in runs] == [
        ("T24", "succeeded", "manual", agent.id, f"customer {cif}"),
        ("W4", "succeeded", "manual", agent.id, f"customer {cif}"),
        ("LOS", "succeeded", "manual", agent.id, f"customer {cif}")]
    assert [r[3] >= 1 for r in runs] == [False, True, True]  # T24 had nothing new
    w4_run = conn.execute("SELECT id FROM integration_runs WHERE kind = 'refresh' AND "
                          "integration = 'W4'").fetchone()[0]
    # the events: the daily sync's types, with the changed fields
    loan_events = [p for _, _, p in events(conn, "LOAN_UPDATED")]
    assert [(p["account_number"], p["changes"]["outstanding"]["new"], p["integration_run_id"])
            for p in loan_events] == [(card["contract_number"], "12345678.00", w4_run)]
    customer_events = [p for _, _, p in events(conn, "CUSTOMER_UPDATED")]
    assert any(p["changes"].get("reference.name", {}).get("new") == "Trần Thị Đổi Tên"
               for p in customer_events)
    completed = [p for _, _, p in events(conn, "SYNC_COMPLETED")]
    assert {(p["integration"], p["kind"]) for p in completed} == {
        ("T24", "refresh"), ("W4", "refresh"), ("LOS", "refresh")}
    # the panel: field, old -> new, formatted
    assert 'data-testid="refresh-change"' in html
    assert "12,345,678" in html and "Công ty Mới" in html and "Trần Thị Đổi Tên" in html
    # the audit row
    row = db.session.scalars(select(AuditLog).where(AuditLog.action == "customer.refresh")).one()
    assert (row.actor_id, row.entity_id, row.after["outcome"]) == (agent.id, cif, "applied")
    assert {s["integration"]: s["status"] for s in row.after["sources"]} == {
        "T24": "applied", "W4": "applied", "LOS": "applied"}
    # the invariants hold (flask check invariants: the refresh adds no violation; the seed's
    # bank date leaves a few account ones of its own)
    assert not invariants.run_counts_consistent(db.session, clock.now())
    assert _violations(db) == violations_before
    # the trace on the ops pages
    login(make_user("ops"))
    page = client.get(f"/ops/integrations/runs/{w4_run}")
    assert page.status_code == 200
    assert "Customer refresh" in page.get_data(as_text=True)
    assert f"customer {cif}" in page.get_data(as_text=True)
    assert "Customer refresh" in client.get("/ops/integrations/runs?integration=W4").get_data(
        as_text=True)


def test_nothing_changed_says_so(app, client, conn, twins, cards, applications, agent):
    cif, _, _ = _customer_with_both(cards, applications)
    html = _post(client, cif).get_data(as_text=True)
    assert html.count('data-testid="refresh-no-changes"') == 3  # T24's own mapping agrees
    assert not events(conn, "LOAN_UPDATED", "CUSTOMER_UPDATED")


def test_vietnamese_panel(app, client, conn, twins, cards, applications, login_as,
                          monkeypatch):
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", False)
    login_as("agent", language="vi")
    w4, los, _ = twins
    cif, card, _ = _customer_with_both(cards, applications)
    _twin_record(w4, card["contract_number"])["total_balance"] = "7654321"
    los.state.faults.outage = True
    html = _post(client, cif).get_data(as_text=True)
    assert "7.654.321" in html
    assert "Dư nợ" in html
    assert "LOS hiện không kết nối được (ngừng hoạt động" in html


def _refused_source(conn, integration):
    return conn.execute("SELECT status, note, errors FROM integration_runs WHERE kind = 'refresh' "
                        "AND integration = %s", (integration,)).fetchone()


def test_source_down_is_refused_and_the_other_applied(app, db, client, conn, twins, cards,
                                                       applications, agent):
    w4, los, _ = twins
    cif, card, application = _customer_with_both(cards, applications)
    _twin_record(w4, card["contract_number"])["total_balance"] = "999"
    _twin_record(los, application["application_id"])["employer"] = "Không áp dụng"
    los.state.faults.outage = True
    html = _post(client, cif).get_data(as_text=True)
    assert 'data-testid="refresh-source-los" data-status="down"' in html
    assert "LOS cannot be reached" in html
    # LOS: nothing written; W4 applied
    assert conn.execute("SELECT employer FROM loan_applications WHERE application_id = %s",
                        (application["application_id"],)).fetchone()[0] != "Không áp dụng"
    assert conn.execute("SELECT outstanding FROM cards WHERE contract_number = %s",
                        (card["contract_number"],)).fetchone()[0] == 999
    status, note, errors = _refused_source(conn, "LOS")
    assert (status, note) == ("failed", f"customer {cif}: down") and "503" in errors[0]
    assert not [p for _, _, p in events(conn) if p.get("source_system") == "LOS"
                and p.get("integration_run_id")]
    row = db.session.scalars(select(AuditLog).where(AuditLog.action == "customer.refresh")).one()
    assert row.after["outcome"] == "partial"
    assert not invariants.run_counts_consistent(db.session, clock.now())


def test_source_paused_by_ops_is_not_asked(app, db, client, conn, twins, cards, applications,
                                           agent):
    w4, _, _ = twins
    cif, card, _ = _customer_with_both(cards, applications)
    _twin_record(w4, card["contract_number"])["total_balance"] = "555"
    control.pause("W4", None, "maintenance", session=db.session)
    db.session.commit()
    control.clear_pause_cache()
    served = w4.state.served
    html = _post(client, cif).get_data(as_text=True)
    assert 'data-testid="refresh-source-w4" data-status="paused"' in html
    assert "W4 is paused by operations" in html
    assert w4.state.served == served  # not asked
    assert conn.execute("SELECT outstanding FROM cards WHERE contract_number = %s",
                        (card["contract_number"],)).fetchone()[0] != 555
    assert _refused_source(conn, "W4")[0] == "skipped"


def test_customer_the_sources_do_not_know(app, client, conn, twins, agent, make_customer):
    customer = make_customer()
    html = _post(client, customer.cif).get_data(as_text=True)
    assert 'data-testid="refresh-source-w4" data-status="unknown"' in html
    assert 'data-testid="refresh-source-los" data-status="unknown"' in html
    assert 'data-testid="refresh-source-t24" data-status="unknown"' in html
    assert "W4 does not know this customer" in html
    assert conn.execute("SELECT count(*) FROM integration_runs WHERE kind = 'refresh' AND "
                        "status = 'skipped'").fetchone()[0] == 3
    assert not events(conn, "LOAN_UPDATED", "CUSTOMER_UPDATED")


def test_rate_limits_on_the_product_clock(app, db, client, conn, twins, cards, applications,
                                          agent):
    cif, _, _ = _customer_with_both(cards, applications)
    assert _post(client, cif).status_code == 200
    again = _post(client, cif)
    assert again.status_code == 422 and int(again.headers["Retry-After"]) > 0
    assert "refreshed less than 5 minutes ago" in again.get_data(as_text=True)
    assert _post(client, cif, htmx=False).status_code == 429
    outcomes = [r.after["outcome"] for r in db.session.scalars(
        select(AuditLog).where(AuditLog.action == "customer.refresh").order_by(AuditLog.id))]
    assert outcomes == ["applied", "rate_limited", "rate_limited"]
    # the limits compare on the clock they are given: later, the customer may be refreshed
    now = clock.now()
    later = now + timedelta(minutes=6)
    refresh.check_limits(app, cif, None, later)
    with pytest.raises(refresh.RateLimited):
        refresh.check_limits(app, cif, None, now + timedelta(minutes=4))
    # per user and minute
    for n in range(app.config["REFRESH_USER_PER_MINUTE"]):
        refresh.check_limits(app, f"X{n}", 999, later)
    with pytest.raises(refresh.RateLimited):
        refresh.check_limits(app, "Y", 999, later)
    refresh.check_limits(app, "Y", 999, later + timedelta(minutes=1))


def test_who_may_refresh(app, client, login_as, make_customer, twins, monkeypatch):
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", False)
    customer = make_customer()
    for role, allowed in (("ops", False), ("auditor", False), ("supervisor", True)):
        login_as(role)
        status = _post(client, customer.cif).status_code
        assert (status == 200) is allowed, (role, status)


def test_cli(app, conn, twins, cards, applications):
    w4, _, _ = twins
    cif, card, _ = _customer_with_both(cards, applications)
    _twin_record(w4, card["contract_number"])["total_balance"] = "4242"
    result = app.test_cli_runner().invoke(args=["cases", "refresh-customer", cif])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["status"] == "applied"
    assert conn.execute("SELECT outstanding FROM cards WHERE contract_number = %s",
                        (card["contract_number"],)).fetchone()[0] == 4242


def _t24_loan(positions, cif):
    for source, record in positions.of(cif):
        if source == "aa_arrangements":
            return record
    return None


def test_t24_enquiry_applied_through_the_file_mapping(app, db, client, conn, twins, positions,
                                                      agent):
    _, _, t24 = twins
    served = t24.state.positions
    cif = next(c for c in served.by_customer if _t24_loan(served, c))
    arrangement = _t24_loan(served, cif)
    account = conn.execute("SELECT account_number, outstanding FROM loans WHERE "
                           "account_number = %s", (arrangement["@ID"],)).fetchone()
    assert account is not None
    arrangement["OPEN.BALANCE"] = "-31415926"  # T24 books the asset negative
    customer = served.record("customers", cif)
    customer["SMS.1"] = "0909000111"

    html = _post(client, cif).get_data(as_text=True)
    assert 'data-testid="refresh-source-t24" data-status="applied"' in html, html
    assert conn.execute("SELECT outstanding FROM loans WHERE account_number = %s",
                        (account[0],)).fetchone()[0] == 31415926
    assert conn.execute("SELECT count(*) FROM phones WHERE cif = %s AND number LIKE %s AND "
                        "source_system = 'T24'", (cif, "%909000111")).fetchone()[0] == 1
    run_id, status, mode = conn.execute(
        "SELECT id, status, mode FROM integration_runs WHERE kind = 'refresh' AND "
        "integration = 'T24'").fetchone()
    assert (status, mode) == ("succeeded", "delta")
    loan_events = [p for _, _, p in events(conn, "LOAN_UPDATED") if p["source_system"] == "T24"]
    assert [(p["account_number"], p["changes"]["outstanding"]["new"], p["integration_run_id"])
            for p in loan_events] == [(account[0], "31415926.00", run_id)]
    assert "31,415,926" in html
    assert "Phone numbers" in html  # T24's contacts of the customer: changed as a whole
    # nothing else of the portfolio moved: no loan closed by a one-customer set
    assert conn.execute("SELECT count(*) FROM loans WHERE status = 'CLOSED' AND close_date = "
                        "%s", (BANK_DAY,)).fetchone()[0] == 0
    assert not invariants.run_counts_consistent(db.session, clock.now())


def test_t24_down_refused_and_nothing_written(app, client, conn, twins, positions, agent):
    _, _, t24 = twins
    served = t24.state.positions
    cif = next(c for c in served.by_customer if _t24_loan(served, c))
    _t24_loan(served, cif)["OPEN.BALANCE"] = "-1"
    t24.state.faults.outage = True
    html = _post(client, cif).get_data(as_text=True)
    assert 'data-testid="refresh-source-t24" data-status="down"' in html
    assert "T24 cannot be reached" in html
    assert not conn.execute("SELECT count(*) FROM loans WHERE outstanding = 1").fetchone()[0]
    assert conn.execute("SELECT status FROM integration_runs WHERE kind = 'refresh' AND "
                        "integration = 'T24'").fetchone()[0] == "failed"


def test_t24_enquiry_in_the_products_own_format(app, conn, tmp_path, monkeypatch):
    """``make run``'s daily files are crm-json: the enquiry twin then serves crm-json records,
    and the refresh reads them with that mapping (the same natural keys as the daily load)."""
    from integrations.refresh import refresh_customer
    from integrations.sandbox import t24_enquiry

    source = SeedSource(CUSTOMERS, PRODUCTS, business_date=BANK_DAY)
    load_set(conn, verify(generate_day(tmp_path / "t24", source)))
    enquiry_app = t24_enquiry.create_app(customers=CUSTOMERS, products=PRODUCTS,
                                         profile="crm-json")
    state = enquiry_app.extensions["sandbox"]
    state.positions = t24_enquiry.read_positions(CUSTOMERS, PRODUCTS, BANK_DAY, "crm-json")
    with ServerThread(enquiry_app) as t24:
        monkeypatch.setitem(app.config, "T24_ENQUIRY_URL", t24.url)
        monkeypatch.setitem(app.config, "T24_ENQUIRY_API_KEY", t24_enquiry.DEFAULT_API_KEY)
        monkeypatch.setitem(app.config, "T24_ENQUIRY_PROFILE", None)
        monkeypatch.setitem(app.config, "T24_MAPPING_PROFILE", "crm-json")
        account, cif = conn.execute("SELECT account_number, cif FROM loans ORDER BY "
                                    "account_number LIMIT 1").fetchone()
        unchanged = refresh_customer(app, cif, sources=("T24",)).sources[0]
        assert (unchanged.status, unchanged.changes) == ("applied", [])
        state.positions.record("loans", account)["outstanding"] = "2718281.00"
        changed = refresh_customer(app, cif, sources=("T24",)).sources[0]
    assert changed.status == "applied"
    assert [(c.table, c.key, c.field, c.new) for c in changed.changes
            if c.field == "outstanding"] == [("loans", account, "outstanding", "2718281.00")]
    assert conn.execute("SELECT outstanding FROM loans WHERE account_number = %s",
                        (account,)).fetchone()[0] == Decimal("2718281.00")
    assert conn.execute("SELECT count(*) FROM loans").fetchone()[0] == len(
        [r for rs in state.positions.by_customer.values() for s, r in rs if s == "loans"])


def test_a_refresh_does_not_hide_a_failed_daily_sync_on_the_ops_page(
        app, db, conn, twins, cards, applications):
    from integrations.refresh import refresh_customer
    from portal.models import IntegrationRun
    from portal.ops import health as ops_health

    now = clock.running_now()  # after the fixture's W4 sync: the newest sync failed
    db.session.add(IntegrationRun(integration="W4", kind="sync", trigger="schedule",
                                  status="failed", attempt=4, started_at=now, finished_at=now,
                                  errors=["W4 timed out"]))
    db.session.commit()
    before = ops_health.card(db.session, "W4")
    cif, _, _ = _customer_with_both(cards, applications)
    assert refresh_customer(app, cif, sources=("W4",)).status == "applied"
    after = ops_health.card(db.session, "W4")
    assert after.recent[0]["kind"] == "refresh"  # listed with the runs
    assert after.last_effective_run["kind"] == "sync"
    assert (after.state, after.last_success, after.last_error) == (
        before.state, before.last_success, before.last_error)
    assert after.state != "healthy"


def test_an_agent_may_not_refresh_another_teams_case(app, db, client, conn, twins, cards,
                                                      applications, make_user, make_team,
                                                      login, monkeypatch):
    from portal.models import Case

    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", False)
    north, south = make_team(), make_team()
    other = make_user("agent", team_id=south.id)
    cif, _, _ = _customer_with_both(cards, applications)
    db.session.add(Case(cif=cif, assigned_agent_id=other.id))
    db.session.commit()
    login(make_user("agent", team_id=north.id))
    assert _post(client, cif).status_code == 404  # as every view of another team's case
    assert not conn.execute("SELECT count(*) FROM integration_runs WHERE kind = 'refresh'"
                            ).fetchone()[0]
    supervisor = make_user("supervisor")
    south.supervisor_id = supervisor.id
    db.session.commit()
    login(supervisor)  # the case's team's supervisor
    assert _post(client, cif).status_code == 200
