"""Every kind of run written to ``integration_runs`` counts each record it received exactly once,
with one definition (portal/run_counts.py), and its page shows counts that add up:

    Extracted = Valid + Quarantined        Valid = Loaded + Unchanged + Failed

and as many quarantined records as it says. Each kind runs for real, with the faults that fill
every counter: T24 files (malformed records, a full refresh that closes loans), W4 and LOS over
HTTP (malformed and repeated records, unknown customers, an outage), the payment and call
reconciliations (ingested, matched, refused, mismatched, missing on either side, run twice),
and GPS forwarding (implausible positions held back, the system down mid-way: "GPS run 165
showed VALID 0 and LOADED 17")."""
# ruff: noqa: F811 - the fixtures are imported from the modules that define them

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
import requests
from sqlalchemy import text

from integrations.gps import circuit, forward
from integrations.gps.client import GpsClient
from integrations.sandbox._api import ServerThread
from integrations.sandbox.t24_files import SeedSource, T24Faults, generate_day
from integrations.sync import SyncError, run_sync
from integrations.t24.inbox import Inbox
from integrations.t24.load import load_set
from integrations.t24.manifest import verify
from portal import clock
from tests.field_support import (  # noqa: F401 - fixtures
    GPS_KEY,
    HCMC,
    ago,
    field_team,
    gps_sandbox,
    iso,
    make_device_token,
    make_field_agent,
)
from tests.integration.sync_helpers import conn_fixture  # noqa: F401 - fixture
from tests.integration.test_call_centre import API_KEY as CC_API_KEY
from tests.integration.test_call_centre import callcentre, portal, simulate, team_of_agents  # noqa: F401
from tests.integration.test_call_centre import portfolio as phone_portfolio  # noqa: F401

BANK_DAY = date(2026, 11, 24)

# The definition, written here independently of the product: finished runs whose counts do not
# add up, or that say another number of quarantined records than they hold.
INCONSISTENT = """
SELECT r.id, r.integration, r.kind, r.status, r.extracted, r.transformed, r.loaded, r.unchanged,
       r.quarantined, r.failed,
       (SELECT count(*) FROM quarantined_records q WHERE q.run_id = r.id) AS records
FROM integration_runs r
WHERE r.status <> 'running'
  AND (r.transformed <> r.extracted - r.quarantined
       OR r.loaded + r.unchanged + r.failed <> r.transformed
       OR least(r.extracted, r.transformed, r.loaded, r.unchanged, r.quarantined, r.failed) < 0
       OR r.quarantined <> (SELECT count(*) FROM quarantined_records q WHERE q.run_id = r.id))
ORDER BY r.id"""

STAT = re.compile(r'data-testid="run-count-(\w+)">\s*<div class="stat-label">[^<]*</div>\s*'
                  r'<div class="stat-value">([\d,]+)</div>')
HELD = re.compile(r"([\d,]+) held back from this run")


def runs(db, integration: str) -> list:
    db.session.rollback()
    return db.session.execute(text(
        "SELECT id, kind, status, extracted, transformed, loaded, unchanged, quarantined, failed "
        "FROM integration_runs WHERE integration = :i ORDER BY id"), {"i": integration}).all()


def shown_counts(client, run_id: int) -> dict[str, int]:
    html = client.get(f"/ops/integrations/runs/{run_id}").get_data(as_text=True)
    found = {name: int(value.replace(",", "")) for name, value in STAT.findall(html)}
    assert set(found) == {"extracted", "valid", "loaded", "unchanged", "quarantined",
                          "failed"}, f"run {run_id}: the page shows no counts"
    held = HELD.search(html)
    found["listed"] = int(held.group(1).replace(",", "")) if held else -1
    return found


def assert_counts_add_up(db, client, login, make_user, integration: str,
                         min_runs: int = 1) -> list:
    """Every finished run of ``integration`` adds up in the table and on its page."""
    found = runs(db, integration)
    assert len(found) >= min_runs, found
    bad = [dict(r._mapping) for r in db.session.execute(text(INCONSISTENT))]
    db.session.rollback()
    assert bad == [], f"runs whose counts contradict each other: {bad}"
    from portal import run_counts  # the product's own statement of it agrees

    assert db.session.execute(text(run_counts.INCONSISTENT_SQL)).all() == []
    db.session.rollback()
    login(make_user(role="ops"))
    for run in found:
        shown = shown_counts(client, run.id)
        where = f"{integration} {run.kind} run {run.id} ({run.status}): {shown}"
        assert shown["extracted"] == shown["valid"] + shown["quarantined"], where
        assert shown["valid"] == shown["loaded"] + shown["unchanged"] + shown["failed"], where
        assert shown["listed"] == shown["quarantined"], where
    return found


# --- T24 files -------------------------------------------------------------------------------


@pytest.fixture
def inbox(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "T24_INBOX_DIR", str(tmp_path / "t24"))
    return Inbox(tmp_path / "t24").ensure()


def test_t24_runs_count_each_record_once(app, db, conn, client, login, make_user, inbox):
    source = SeedSource(40, 60, business_date=BANK_DAY)
    generate_day(inbox.inbox, source, faults=T24Faults(malformed_every=7))
    assert run_sync("T24", app=app, retries=0).status == "partial"
    # the next day in full: some records changed, the rest unchanged, absent loans closed
    generate_day(inbox.inbox, source, day=1, change_rate=0.2, full_omit_rate=0.2)
    # (partial too: what points to a record quarantined the day before is quarantined)
    assert run_sync("T24", app=app, retries=0).status in ("succeeded", "partial")
    partial, full = assert_counts_add_up(db, client, login, make_user, "T24", 2)
    assert partial.quarantined > 0 and partial.loaded > 0
    assert full.unchanged > 0 and full.loaded > 0 and full.failed == 0
    closed = db.session.scalar(text(
        "SELECT (control_totals -> 'entities' -> 'loans' ->> 'closed')::int "
        "FROM integration_runs WHERE id = :r"), {"r": full.id})
    assert closed > 0  # in the control totals, not among the records received


# --- W4 and LOS over HTTP --------------------------------------------------------------------


@pytest.fixture
def w4(app, monkeypatch):
    from integrations.sandbox.w4_server import DEFAULT_API_KEY, create_app, seed_cards

    cards = seed_cards(40, 60, business_date=BANK_DAY)
    with ServerThread(create_app(cards)) as server:
        monkeypatch.setitem(app.config, "W4_API_URL", server.url)
        monkeypatch.setitem(app.config, "W4_API_KEY", DEFAULT_API_KEY)
        monkeypatch.setitem(app.config, "SYNC_PAGE_SIZE", 5)
        monkeypatch.setitem(app.config, "SYNC_HTTP_RETRIES", 1)
        yield server


@pytest.fixture
def los(app, monkeypatch):
    from integrations.sandbox.los_server import DEFAULT_TOKEN, create_app, seed_applications

    applications = seed_applications(40, 60, business_date=BANK_DAY)
    with ServerThread(create_app(applications)) as server:
        monkeypatch.setitem(app.config, "LOS_API_URL", server.url)
        monkeypatch.setitem(app.config, "LOS_API_TOKEN", DEFAULT_TOKEN)
        monkeypatch.setitem(app.config, "SYNC_PAGE_SIZE", 5)
        monkeypatch.setitem(app.config, "SYNC_HTTP_RETRIES", 1)
        yield server


def faults(server, **knobs) -> None:
    assert requests.put(f"{server.url}/_sandbox/faults", json=knobs, timeout=5).ok


def test_w4_and_los_runs_count_each_record_once(app, db, conn, client, login, make_user,
                                                tmp_path, w4, los):
    # LOS first, before any customer is known: every application quarantined by the loader
    assert run_sync("LOS", app=app, retries=0).status == "partial"
    load_set(conn, verify(generate_day(tmp_path / "t24", SeedSource(
        40, 60, business_date=BANK_DAY))))
    # W4 with malformed and repeated records, then down after two pages, then whole again
    faults(w4, malformed_rate=0.2, duplicates=True)
    assert run_sync("W4", app=app, retries=0, full=True).status == "partial"
    faults(w4, malformed_rate=0, duplicates=False, outage_after=2)
    with pytest.raises(SyncError):
        run_sync("W4", app=app, retries=0, full=True)
    faults(w4, outage=False, outage_after=None)
    assert run_sync("W4", app=app, retries=0, full=True).status == "succeeded"
    los_runs = assert_counts_add_up(db, client, login, make_user, "LOS")
    assert los_runs[0].quarantined == los_runs[0].extracted > 0
    partial, failed, whole = assert_counts_add_up(db, client, login, make_user, "W4", 3)
    assert partial.quarantined > 0 and partial.unchanged > 0  # malformed; repeated in a page
    assert failed.status == "failed"
    assert whole.loaded + whole.unchanged == whole.extracted


# --- the reconciliations ---------------------------------------------------------------------


@pytest.fixture
def payments(app, live_server, monkeypatch):
    from integrations.sandbox.payments_server import Knobs, create_app

    app_ = create_app(portal_url=live_server.url, secret="test-payments-current",
                      api_key="test-payments-key", knobs=Knobs(), seed=6, senders=2)
    with ServerThread(app_) as server:
        monkeypatch.setitem(app.config, "PAYMENTS_API_URL", server.url)
        monkeypatch.setitem(app.config, "PAYMENTS_API_KEY", "test-payments-key")
        yield server
        app_.extensions["payments_sandbox"].stop()


def test_payment_reconciliation_runs_count_each_transaction_of_the_report_once(
        app, db, client, login, make_user, make_customer, make_loan, make_payment, payments):
    from integrations.payments.client import PaymentsClient
    from portal.payments.reconcile import reconcile

    loan = make_loan(make_customer(), dpd=20)
    day = clock.add_days(clock.bank_today(), -1)
    when = clock.bank_datetime(day).astimezone(clock.bank_zone()).isoformat()

    def report(ref: str, amount: str, account: str = loan.account_number) -> dict:
        return {"loan_account_number": account, "cif": loan.cif, "amount": amount,
                "paid_at": when, "reference_number": ref}

    created = requests.post(payments.url + "/_sandbox/transactions", json={"transactions": [
        report("MATCHED", "100000"), report("DIFF", "700000"), report("MISSED", "300000"),
        report("UNKNOWN", "5000", account="LN-UNKNOWN")], "notify": False}, timeout=30)
    assert created.status_code == 201, created.text
    make_payment(loan, "100000", paid_at=clock.bank_datetime(day), reference_number="MATCHED")
    make_payment(loan, "600000", paid_at=clock.bank_datetime(day), reference_number="DIFF")
    make_payment(loan, "250000", paid_at=clock.bank_datetime(day), reference_number="ONLY-CRM")
    with PaymentsClient(payments.url, "test-payments-key") as system:
        reconcile(db.session, system, day, trigger="manual")
        reconcile(db.session, system, day, trigger="manual")  # again: the same counts
    first, again = assert_counts_add_up(db, client, login, make_user, "PAYMENTS", 2)
    # 4 in the report: MISSED ingested, MATCHED matched, DIFF and UNKNOWN open gaps (ONLY-CRM
    # is not in the report: a control total)
    assert (first.extracted, first.loaded, first.unchanged, first.failed) == (4, 1, 1, 2)
    assert (again.extracted, again.loaded, again.unchanged, again.failed) == (4, 0, 2, 2)


def test_call_reconciliation_runs_count_each_call_of_the_list_once(
        app, db, client, login, make_user, callcentre, team_of_agents, phone_portfolio):
    from datetime import datetime

    from integrations.callcentre.client import CallCentreClient
    from portal.calls import operations as calls
    from portal.models import CallRecord

    _, agents = team_of_agents(2)
    numbers = phone_portfolio(4)
    result = simulate(callcentre, agents=[a.cti_agent_id for a in agents],
                      phones=sorted(numbers), minutes=20, seed=9, unknown_rate=0)
    db.session.rollback()
    lost = result["calls"][0]["call_id"]
    db.session.execute(CallRecord.__table__.delete().where(CallRecord.call_id == lost))
    db.session.commit()
    days = {clock.bank_today(datetime.fromisoformat(c["started_at"])) for c in result["calls"]}
    with CallCentreClient(callcentre.url, CC_API_KEY) as system:
        for day in sorted(days):
            calls.reconcile_day(db.session, system, day)
    db.session.commit()
    found = assert_counts_add_up(db, client, login, make_user, "CTI", len(days))
    assert sum(r.extracted for r in found) == len(result["calls"])
    assert sum(r.loaded for r in found) == 1  # the call the portal missed
    assert sum(r.unchanged for r in found) == len(result["calls"]) - 1


# --- GPS forwarding --------------------------------------------------------------------------


def test_gps_forward_runs_count_valid_as_loaded_plus_failed(app, db, client, login, make_user,
                                                            gps_sandbox, make_field_agent,
                                                            make_device_token):
    agent = make_field_agent()
    token = make_device_token(agent)
    start = ago(1800)
    points = [{"lat": HCMC[0] + i * 1e-5, "lon": HCMC[1], "accuracy_m": 7,
               "recorded_at": iso(start + timedelta(seconds=10 * i))} for i in range(17)]
    # three positions that cannot be true: California, Russia, New York
    for n, (lat, lon) in enumerate([(37.42, -122.08), (60.0, 30.0), (40.72, -74.0)]):
        points.append({"lat": lat, "lon": lon, "accuracy_m": 5,
                       "recorded_at": iso(start + timedelta(seconds=5 + 20 * n))})
    body = client.post("/api/v1/field/locations", json={"points": points},
                       headers={"Authorization": f"Bearer {token}"}).get_json()
    assert body["accepted"] == 20
    system = GpsClient(gps_sandbox.url, GPS_KEY, retries=1, backoff=0.01, sleep=lambda s: None)
    result = forward.forward_pending(db.session, client=system, batch_size=8)
    assert result["sent"] == 17 and result["backlog"] == 0
    received = requests.get(f"{gps_sandbox.url}/_sandbox/stats", timeout=5).json()
    assert received["positions"] == 17  # what cannot be true never reaches the GPS system

    # more positions, and the GPS system goes down after one batch
    later = ago(600)
    client.post("/api/v1/field/locations", headers={"Authorization": f"Bearer {token}"},
                json={"points": [{"lat": HCMC[0], "lon": HCMC[1], "accuracy_m": 7,
                                  "recorded_at": iso(later + timedelta(seconds=i))}
                                 for i in range(12)]})
    faults(gps_sandbox, outage_after=1)  # one more request answered, then down
    result = forward.forward_pending(db.session, client=system, batch_size=5)
    assert result["sent"] == 5 and result["backlog"] == 7
    faults(gps_sandbox, outage=False, outage_after=None)
    circuit.reset()

    whole, cut = assert_counts_add_up(db, client, login, make_user, "GPS", 2)
    assert (whole.extracted, whole.quarantined, whole.transformed, whole.loaded) == (20, 3, 17, 17)
    assert (cut.status, cut.extracted, cut.loaded, cut.failed) == ("partial", 10, 5, 5)
