"""T24 bank sync end to end (``integrations.sync.run_sync``) over real files in a real inbox:
full day then delta day → the expected database state and exactly the expected events; the same
day again → nothing; quarantine, tampered and XXE sets, ops alerts; a worker SIGKILLed mid-load."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from decimal import Decimal

import pytest

from integrations.sandbox.t24_files import SeedSource, T24Faults, generate_day
from integrations.sync import SyncError, run_sync
from integrations.t24.inbox import Inbox
from integrations.t24.load import load_set
from integrations.t24.manifest import verify
from tests.integration.sync_helpers import (
    changed_keys,
    conn_fixture,  # noqa: F401 - fixture
    count,
    events,
    pg_url,
    snapshot,
    truncate_bank_data,
)

BASE = date(2026, 11, 24)
UPDATED = ("CUSTOMER_UPDATED", "LOAN_UPDATED", "COLLATERAL_UPDATED")
LOAN_COLUMNS = ("account_number", "cif", "product_type", "currency", "original_amount",
                "outstanding", "due_amount", "min_pay", "next_payment_date", "dpd", "bucket",
                "status", "disbursement_date", "maturity_date", "close_date", "interest_rate",
                "term")


@pytest.fixture(scope="module")
def source():
    return SeedSource(60, 90, business_date=BASE)


@pytest.fixture
def inbox(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "T24_INBOX_DIR", str(tmp_path / "t24"))
    return Inbox(tmp_path / "t24").ensure()


def sync(app, **kwargs):
    kwargs.setdefault("retries", 0)
    return run_sync("T24", app=app, **kwargs)


def new_events(conn, after_seq: int, *types):
    return [e for e in events(conn, *types)
            if conn.execute("SELECT seq FROM events WHERE aggregate_id = %s AND type = %s "
                            "ORDER BY seq DESC LIMIT 1", (e[1], e[0])).fetchone()[0] > after_seq]


def max_seq(conn) -> int:
    return conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]


def events_since(conn, seq: int, event_type: str) -> list[tuple[str, dict]]:
    rows = conn.execute("SELECT aggregate_id, payload FROM events WHERE seq > %s AND type = %s "
                        "ORDER BY seq", (seq, event_type)).fetchall()
    events(conn, event_type)  # every payload valid by the catalog
    return rows


def test_full_day_then_delta_day_state_and_exactly_the_expected_events(app, conn, inbox,
                                                                        source):
    generate_day(inbox.inbox, source)
    outcome = sync(app)
    assert outcome.status == "succeeded", outcome.errors
    manifest = {e.entity: e.records for e in
                verify(next(inbox.processed.glob("*/*/t24_manifest_*.json"))).manifest.files}
    for table in ("customers", "reference_customers", "loans", "collaterals", "loan_collaterals"):
        assert count(conn, table) == manifest[table] > 0
    customers = events_since(conn, 0, "CUSTOMER_UPDATED")
    assert len(customers) == manifest["customers"] + manifest["reference_customers"]
    assert all(p["created"] and p["source_system"] == "T24" for _, p in customers)
    loans = events_since(conn, 0, "LOAN_UPDATED")
    assert sorted(a for a, _ in loans) == sorted(
        r[0] for r in conn.execute("SELECT account_number FROM loans"))
    assert len(events_since(conn, 0, "COLLATERAL_UPDATED")) == manifest["collaterals"]
    (completed,) = events_since(conn, 0, "SYNC_COMPLETED")
    assert completed[1]["status"] == "succeeded" and completed[1]["full_refresh"] is True
    run = conn.execute("SELECT status, trigger, extracted, transformed, loaded, unchanged, "
                       "quarantined, progress_done, progress_total, duration_ms, control_totals "
                       "FROM integration_runs WHERE id = %s", (outcome.run_ids[0],)).fetchone()
    assert run[:2] == ("succeeded", "manual")
    assert run[2] == run[3] == run[4] == sum(manifest.values()) and run[5] == run[6] == 0
    assert run[7] == run[8] == sum(manifest.values()) and run[9] >= 0
    assert run[10]["entities"]["loans"]["differences"] == {}

    # every customer has a case; the delta day must bring the touched ones up to date
    conn.execute("INSERT INTO cases (cif) SELECT cif FROM customers")
    before, seq = snapshot(conn), max_seq(conn)
    generate_day(inbox.inbox, source, day=1, mode="delta", change_rate=0.2, new_customers=2)
    outcome = sync(app)
    assert outcome.status == "succeeded", outcome.errors
    after = snapshot(conn)

    loan_events = events_since(conn, seq, "LOAN_UPDATED")
    assert sorted(a for a, _ in loan_events) == sorted(changed_keys(before, after, "loans"))
    assert loan_events, "a 20% change rate changes loans"
    loan_rows = {r[0]: r for r in conn.execute(
        "SELECT " + ", ".join(LOAN_COLUMNS) + " FROM loans")}  # noqa: S608
    old_rows = {k: next(iter(v)) for k, v in before["loans"].items()}
    for account, payload in loan_events:
        assert payload["cif"] == loan_rows[account][1]
        if payload["created"]:
            assert account not in old_rows
            continue
        differing = {c for i, c in enumerate(LOAN_COLUMNS)
                     if old_rows[account][i] != loan_rows[account][i]}
        assert set(payload["changes"]) == differing
        for column, change in payload["changes"].items():
            new = loan_rows[account][LOAN_COLUMNS.index(column)]
            assert change["new"] == (str(new) if isinstance(new, (Decimal, date)) else new)

    collateral_events = events_since(conn, seq, "COLLATERAL_UPDATED")
    assert sorted(a for a, _ in collateral_events) == sorted(
        changed_keys(before, after, "collaterals"))
    customer_events = events_since(conn, seq, "CUSTOMER_UPDATED")
    ref_cifs = {r for (r,) in conn.execute("SELECT ref_cif FROM reference_customers")}
    contact_owners = (changed_keys(before, after, "phones")
                      | changed_keys(before, after, "addresses"))
    assert sorted(p["cif"] for _, p in customer_events if "ref_cif" not in p) == sorted(
        changed_keys(before, after, "customers") | (contact_owners - ref_cifs))
    assert sorted(p["ref_cif"] for _, p in customer_events if "ref_cif" in p) == sorted(
        changed_keys(before, after, "references") | (contact_owners & ref_cifs))
    assert all(k.startswith("reference.") or k in ("phones", "addresses", "emails")
               for _, p in customer_events if "ref_cif" in p for k in p["changes"])
    contact_changes = [p["changes"][kind] for _, p in customer_events if not p["created"]
                       for kind in ("phones", "addresses") if kind in p["changes"]]
    assert contact_changes  # counts of T24 rows before / after: the notifier reads "old"
    assert all(isinstance(c["old"], int) and isinstance(c["new"], int) for c in contact_changes)
    assert len(events_since(conn, seq, "SYNC_COMPLETED")) == 1

    # case totals of the customers whose loans changed: by the one definition
    touched = {p["cif"] for _, p in loan_events}
    expected = dict(conn.execute("""
        SELECT cif, sum(outstanding) FROM loans WHERE status <> 'CLOSED' GROUP BY cif"""))
    cases = dict(conn.execute("SELECT cif, total_outstanding FROM cases"))
    for cif in touched & set(cases):
        assert cases[cif] == expected.get(cif, 0)
    untouched = set(cases) - touched
    assert all(cases[cif] == 0 for cif in untouched)  # not recomputed: nothing changed there


def test_the_same_day_again_changes_nothing_and_publishes_nothing(app, conn, inbox, source):
    generate_day(inbox.inbox, source, day=1, new_customers=2)
    sync(app)
    before, seq = snapshot(conn), max_seq(conn)
    # the very same files again: recognised by name + sha256, not loaded
    processed = next(inbox.processed.glob("*/*"))
    for path in processed.iterdir():
        shutil.copy(path, inbox.inbox / path.name)
    outcome = sync(app)
    assert outcome.status == "nothing" and outcome.summary["duplicates"]
    # ...and the run that found nothing to load says so (issue 19, finding 16)
    assert conn.execute("SELECT status, note FROM integration_runs WHERE id = %s",
                        (outcome.run_ids[-1],)).fetchone() == (
        "skipped", "Nothing to load: 1 file set(s) had been loaded before (moved to rejected/ "
        "as duplicates).")
    # the same day resent in another format (another checksum): loaded, nothing changes
    generate_day(inbox.inbox, source, day=1, new_customers=2, fmt="xml")
    outcome = sync(app)
    assert outcome.status == "succeeded" and outcome.summary["changed"] == 0
    # and a full refresh on demand: the newest full set loaded again
    outcome = sync(app, full=True)
    assert outcome.status == "succeeded" and outcome.summary["changed"] == 0
    assert snapshot(conn) == before
    for event_type in UPDATED:
        assert events_since(conn, seq, event_type) == []
    completed = events_since(conn, seq, "SYNC_COMPLETED")
    assert [p["loaded"] for _, p in completed] == [0, 0]
    runs = conn.execute("SELECT loaded, unchanged, extracted FROM integration_runs "
                        "WHERE status <> 'skipped' ORDER BY id").fetchall()
    assert [r[0] for r in runs[1:]] == [0, 0] and all(r[1] == r[2] for r in runs[1:])


def test_a_malformed_record_is_quarantined_while_its_neighbours_load(app, conn, inbox, source):
    faults = T24Faults(malformed_every=5)
    generate_day(inbox.inbox, source, faults=faults)
    outcome = sync(app)
    assert outcome.status == "partial"
    run_id = outcome.run_ids[0]
    status, extracted, transformed, quarantined = conn.execute(
        "SELECT status, extracted, transformed, quarantined FROM integration_runs "
        "WHERE id = %s", (run_id,)).fetchone()
    stored = conn.execute("SELECT entity, record_key, reason, payload, raw FROM "
                          "quarantined_records WHERE run_id = %s", (run_id,)).fetchall()
    assert status == "partial" and quarantined == len(stored) >= len(faults.malformed_keys) > 0
    assert transformed == extracted - quarantined
    assert all(reason and (payload is not None or raw) for _, _, reason, payload, raw in stored)
    bad_loans = {key for entity, key, *_ in stored if entity == "loans"}
    loaded = {a for (a,) in conn.execute("SELECT account_number FROM loans")}
    assert loaded and not loaded & bad_loans
    assert sorted(a for a, _ in events_since(conn, 0, "LOAN_UPDATED")) == sorted(loaded)
    (completed,) = events_since(conn, 0, "SYNC_COMPLETED")
    # one definition of the counts (portal/run_counts.py): quarantined records are not failed
    assert completed[1]["status"] == "partial" and completed[1]["failed"] == 0


def test_a_tampered_file_is_rejected_with_nothing_written_and_ops_alerted(app, conn, inbox,
                                                                          source, make_user):
    ops = make_user("ops")
    from portal.extensions import db

    db.session.commit()
    generate_day(inbox.inbox, source)
    sync(app)
    before, seq = snapshot(conn), max_seq(conn)
    generate_day(inbox.inbox, source, day=1, mode="delta", change_rate=0.5,
                 faults=T24Faults(bad_checksum=("loans",)))
    with pytest.raises(SyncError, match="sha256"):
        sync(app)
    assert snapshot(conn) == before
    for event_type in UPDATED:
        assert events_since(conn, seq, event_type) == []
    (completed,) = events_since(conn, seq, "SYNC_COMPLETED")
    assert completed[1]["status"] == "failed"
    assert count(conn, "quarantined_records") == 0
    (rejected,) = inbox.rejected.glob("20261125/*/reason.json")
    assert "sha256" in rejected.read_text()
    notes = conn.execute("SELECT user_id, kind, title FROM notifications").fetchall()
    assert [(n[0], n[1]) for n in notes] == [(ops.id, "sync_failed")]
    assert "T24" in notes[0][2]


def test_an_xml_file_with_an_external_entity_is_refused(app, conn, inbox, source):
    generate_day(inbox.inbox, source, fmt="xml",
                 faults=T24Faults(xml_external_entity=("customers",)))
    with pytest.raises(SyncError, match="DOCTYPE|DTD|entit"):
        sync(app)
    for table in ("customers", "loans", "quarantined_records"):
        assert count(conn, table) == 0
    for event_type in UPDATED:
        assert events_since(conn, 0, event_type) == []
    stored = conn.execute("SELECT errors::text FROM integration_runs").fetchone()[0]
    assert "root:" not in stored  # /etc/passwd was never read into anything
    assert list(inbox.rejected.glob("*/*/reason.json"))


CHILD = """
import sys, time
from pathlib import Path

from integrations.t24 import load
from portal import create_app
from portal.config import TestConfig

url, redis_url, inbox, marker = sys.argv[1:5]
original = load.Loader._load_batch
calls = [0]


def paused(self, *args, **kwargs):
    original(self, *args, **kwargs)
    calls[0] += 1
    if calls[0] == 3:  # customers, references and collaterals written, not committed
        Path(marker).write_text("mid-load")
        time.sleep(120)  # SIGKILLed here


load.Loader._load_batch = paused
app = create_app(TestConfig, {"SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": redis_url,
                              "T24_INBOX_DIR": inbox, "SYNC_RETRIES": 0})
from workers.jobs.sync import run_sync_job

with app.app_context():
    run_sync_job("T24")
"""


def test_a_worker_sigkilled_mid_load_then_rerun_ends_as_an_uninterrupted_run(app, conn, inbox,
                                                                              source, tmp_path):
    generate_day(inbox.inbox, source, new_customers=3)
    marker = tmp_path / "marker"
    child = subprocess.Popen([sys.executable, "-c", CHILD, pg_url(app), app.config["REDIS_URL"],
                              str(inbox.root), str(marker)])
    try:
        deadline = time.monotonic() + 90
        while not marker.exists():
            assert child.poll() is None, "the sync exited before it was killed"
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert count(conn, "customers") == 0  # nothing committed yet
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    for _ in range(100):  # the server notices the dead client, rolls back, drops its locks
        if not conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                            "current_database() AND pid <> pg_backend_pid() AND state <> 'idle'"
                            ).fetchone()[0]:
            break
        time.sleep(0.1)
    assert count(conn, "customers") == 0 and count(conn, "events") == 0
    assert list(inbox.work.iterdir())  # the claimed set is still in work/

    outcome = sync(app)  # the next run: takes the lock, finishes the abandoned set
    assert outcome.status == "succeeded", outcome.errors
    assert not list(inbox.work.iterdir())
    runs = conn.execute("SELECT status, errors::text FROM integration_runs ORDER BY id").fetchall()
    assert runs[0][0] == "failed" and "abandoned" in runs[0][1] and runs[1][0] == "succeeded"
    after_kill = snapshot(conn)
    loan_events = len(events_since(conn, 0, "LOAN_UPDATED"))
    assert loan_events == count(conn, "loans")  # the killed run's events died with it

    manifest = next(inbox.processed.glob("*/*/t24_manifest_*.json"))
    truncate_bank_data(conn)
    load_set(conn, verify(manifest))  # uninterrupted, into an empty database
    assert snapshot(conn) == after_kill
    assert len(events_since(conn, 0, "LOAN_UPDATED")) == loan_events


def test_reading_in_a_process_of_its_own_loads_the_same(conn, source, tmp_path, monkeypatch):
    from integrations.t24 import load

    manifest = generate_day(tmp_path / "set", source, new_customers=2,
                            faults=T24Faults(malformed_every=7))
    monkeypatch.setattr(load, "READ_AHEAD", False)  # read in the loader's own process
    first = load_set(conn, verify(manifest), batch_size=20)
    plain, quarantined = snapshot(conn), count(conn, "quarantined_records")
    truncate_bank_data(conn)
    monkeypatch.setattr(load, "READ_AHEAD", True)
    again = load_set(conn, verify(manifest), batch_size=20)
    assert snapshot(conn) == plain and count(conn, "quarantined_records") == quarantined > 0
    assert again.events == first.events > 0
