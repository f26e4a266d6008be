"""The T24 loader against real PostgreSQL with sandbox files: full then delta days, re-runs that
change nothing, quarantine, rejected sets, closure of absent loans, interrupted loads."""

from __future__ import annotations

import uuid
from datetime import date

import psycopg
import pytest

from integrations.sandbox.t24_files import SeedSource, T24Faults, generate_day
from integrations.t24.load import load_set
from integrations.t24.manifest import verify
from portal import clock
from tests.integration.sync_helpers import SNAPSHOTS, conn_fixture  # noqa: F401 - fixture

BASE = date(2026, 11, 24)
LOAN_STATE = SNAPSHOTS["loans"][1] + " ORDER BY 1"
CUSTOMER_STATE = "SELECT cif, name, segment, status FROM customers ORDER BY 1"
PHONE_STATE = "SELECT cif, ref_cif, number, type, is_primary FROM phones ORDER BY 1, 2, 3"


@pytest.fixture(scope="module")
def source():
    return SeedSource(60, 90, business_date=BASE)


def state(conn):
    return {name: conn.execute(query).fetchall() for name, query in
            (("loans", LOAN_STATE), ("customers", CUSTOMER_STATE), ("phones", PHONE_STATE))}


def count(conn, table):
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608


def run(conn, directory, source, count=True, **kwargs):
    changes = []
    result = load_set(conn, verify(generate_day(directory, source, **kwargs), count=count),
                      on_change=lambda *change: changes.append(change), batch_size=25)
    return result, changes


def test_full_day_then_rerun_changes_nothing(conn, source, tmp_path):
    result, changes = run(conn, tmp_path / "d0", source)
    assert result.status == "succeeded", result.errors
    manifest = verify(next((tmp_path / "d0").glob("t24_manifest_*"))).manifest
    for entry in manifest.files:
        assert count(conn, entry.entity) == entry.records
        assert result.entities[entry.entity].inserted == entry.records
    assert len(changes) == sum(entry.records for entry in manifest.files)
    assert count(conn, "loan_bucket_history") == count(conn, "loans")
    assert conn.execute("SELECT count(*) FROM loans WHERE bucket IS NULL").fetchone()[0] == 0
    assert count(conn, "phones") > count(conn, "customers")
    run_row = conn.execute("SELECT status, extracted, loaded, failed, mode, business_date, "
                           "control_totals FROM integration_runs WHERE id = %s",
                           (result.run_id,)).fetchone()
    assert run_row[:6] == ("succeeded", run_row[1], run_row[1], 0, "full", BASE)
    assert run_row[6]["entities"]["loans"]["differences"] == {}
    before = state(conn)
    updated_at = conn.execute("SELECT max(updated_at) FROM loans").fetchone()[0]

    again, changes = run(conn, tmp_path / "again", source)
    assert again.status == "succeeded" and again.changed == 0 and changes == []
    assert all(e.unchanged == e.extracted for e in again.entities.values())
    assert state(conn) == before
    assert conn.execute("SELECT max(updated_at) FROM loans").fetchone()[0] == updated_at


def test_a_delta_day_gives_the_same_state_as_the_full_day(conn, source, tmp_path):
    options = {"change_rate": 0.2, "new_customers": 3}
    run(conn, tmp_path / "d0", source)
    result, changes = run(conn, tmp_path / "d1", source, day=1, mode="delta", **options)
    assert result.status == "succeeded", result.errors
    changed_loans = {key for entity, key, _, _ in changes if entity == "loans"}
    assert changed_loans and result.entities["loans"].updated > 0
    for entity, _key, inserted, diff in changes:
        if entity == "loans" and not inserted:
            assert diff and all(before != after for before, after in diff.values())
    after_delta = state(conn)
    # Same day as a full set, into the same database: nothing left to change.
    full, changes = run(conn, tmp_path / "f1", source, day=1, **options)
    assert full.changed == 0 and changes == []
    assert state(conn) == after_delta


def test_bucket_history_follows_the_bucket(conn, source, tmp_path):
    run(conn, tmp_path / "d0", source)
    run(conn, tmp_path / "d1", source, day=1, mode="delta", change_rate=1.0)
    rows = conn.execute("""
        SELECT l.account_number, l.bucket, h.bucket, h.from_date
        FROM loans l JOIN loan_bucket_history h
          ON h.account_number = l.account_number AND h.to_date IS NULL""").fetchall()
    assert len(rows) == count(conn, "loans")
    assert all(loan_bucket == open_bucket for _, loan_bucket, open_bucket, _ in rows)
    moved = [r for r in rows if r[3] == date(2026, 11, 25)]
    assert moved
    closed = conn.execute("SELECT count(*) FROM loan_bucket_history "
                          "WHERE to_date = '2026-11-24'").fetchone()[0]
    assert closed == len(moved)


def test_loans_absent_from_a_full_file_are_closed_not_deleted(conn, source, tmp_path):
    run(conn, tmp_path / "d0", source)
    loans_before = count(conn, "loans")
    result, changes = run(conn, tmp_path / "d1", source, day=1, change_rate=0,
                          full_omit_rate=0.2)
    closed = result.entities["loans"].closed
    assert closed > 0 and count(conn, "loans") == loans_before
    assert conn.execute("SELECT count(*) FROM loans WHERE status = 'CLOSED' "
                        "AND close_date = '2026-11-25'").fetchone()[0] >= closed
    assert sum(1 for c in changes if c[3].get("status", [None, None])[1] == "CLOSED") == closed


def test_malformed_records_are_quarantined_while_their_neighbours_load(conn, source, tmp_path):
    faults = T24Faults(malformed_every=6)
    result, _ = run(conn, tmp_path, source, faults=faults)
    assert result.status == "partial"
    quarantined = sum(e.quarantined for e in result.entities.values())
    assert quarantined >= len(faults.malformed_keys)
    stored = conn.execute("SELECT entity, reason, payload, raw, source_file FROM "
                          "quarantined_records WHERE run_id = %s", (result.run_id,)).fetchall()
    assert len(stored) == quarantined
    assert all(reason and source_file for _, reason, _, _, source_file in stored)
    assert any(raw for *_, raw, _ in stored)  # the JSON syntax error kept as text
    loans = result.entities["loans"]
    assert count(conn, "loans") == loans.inserted == loans.extracted - loans.quarantined > 0
    # one definition of the counts (portal/run_counts.py): quarantined, not failed
    assert conn.execute("SELECT quarantined, failed FROM integration_runs WHERE id = %s",
                        (result.run_id,)).fetchone() == (quarantined, 0)


@pytest.mark.parametrize("faults, fmt", [
    (T24Faults(bad_checksum=("loans",)), "jsonl"),
    (T24Faults(wrong_count=("customers",)), "json"),
    (T24Faults(half_written=("collaterals",)), "jsonl"),
    (T24Faults(xml_external_entity=("customers",)), "xml"),
])
@pytest.mark.parametrize("counted_before", [True, False], ids=["counted-before", "counted-by-load"])
def test_a_set_that_contradicts_its_manifest_writes_nothing(conn, source, tmp_path, faults,
                                                           fmt, counted_before):
    """Whether the records are counted by ``verify`` or by ``load_set`` while its reader starts
    (``count=False``, as the inbox does), a contradiction is found before anything is written."""
    result, changes = run(conn, tmp_path, source, count=counted_before, faults=faults, fmt=fmt)
    assert result.status == "failed" and result.errors and changes == []
    for table in ("customers", "loans", "collaterals", "phones", "quarantined_records"):
        assert count(conn, table) == 0
    status, errors = conn.execute("SELECT status, errors FROM integration_runs WHERE id = %s",
                                  (result.run_id,)).fetchone()
    assert status == "failed" and errors


def test_an_interrupted_load_leaves_nothing_and_the_rerun_ends_the_same(conn, source, tmp_path):
    generate_day(tmp_path / "set", source)
    verification = verify(next((tmp_path / "set").glob("t24_manifest_*")))

    def crash(done, total):
        if done > total // 2:
            raise KeyboardInterrupt("worker killed")

    with pytest.raises(KeyboardInterrupt):
        load_set(conn, verification, progress=crash, batch_size=20)
    for table in ("customers", "loans", "loan_bucket_history", "phones"):
        assert count(conn, table) == 0
    load_set(conn, verification, batch_size=20)
    interrupted_then_rerun = state(conn)
    conn.execute("TRUNCATE customers, reference_customers, loans, collaterals, "
                 "loan_collaterals, phones, addresses, emails, loan_bucket_history CASCADE")
    load_set(conn, verification, batch_size=1000)
    assert state(conn) == interrupted_then_rerun


def test_a_loan_of_an_unknown_customer_is_quarantined(conn, source, tmp_path):
    generate_day(tmp_path / "set", source, entities=("loans",))
    result = load_set(conn, verify(next((tmp_path / "set").glob("t24_manifest_*"))))
    loans = result.entities["loans"]
    assert loans.inserted == 0 and loans.quarantined == loans.extracted > 0
    reasons = {r for (r,) in conn.execute("SELECT reason FROM quarantined_records")}
    assert all("is not a known customer" in r for r in reasons)


def test_a_connection_inside_a_transaction_is_refused(app, db, source, tmp_path):
    url = app.config["SQLALCHEMY_DATABASE_URI"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as busy:
        busy.execute("SELECT 1")
        with pytest.raises(ValueError, match="no transaction"):
            load_set(busy, verify(generate_day(tmp_path, source)))


CHILD = """
import sys, time, psycopg
from pathlib import Path
from integrations.t24.load import load_set
from integrations.t24.manifest import verify

url, manifest, marker = sys.argv[1:4]

def progress(done, total):
    if done > total // 2:
        Path(marker).write_text(str(done))
        time.sleep(120)  # killed here, halfway through the transaction

with psycopg.connect(url, autocommit=True) as conn:
    load_set(conn, verify(manifest), progress=progress, batch_size=20)
"""


def test_sigkill_mid_load_then_rerun_equals_an_uninterrupted_load(app, conn, source, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    manifest = generate_day(tmp_path / "set", source)
    marker = tmp_path / "halfway"
    url = app.config["SQLALCHEMY_DATABASE_URI"].replace("postgresql+psycopg://", "postgresql://")
    child = subprocess.Popen([sys.executable, "-c", CHILD, url, str(manifest), str(marker)])
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, "the loader exited before it was killed"
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert count(conn, "customers") == 0  # uncommitted work is invisible
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    for _ in range(50):  # the server notices the dead client and rolls back
        if conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND state = 'idle in transaction'").fetchone()[0] == 0:
            break
        time.sleep(0.1)
    assert count(conn, "loans") == 0 and count(conn, "customers") == 0
    stale = conn.execute("SELECT status FROM integration_runs").fetchall()
    assert stale == [("running",)]  # the killed run is visible as never finished

    load_set(conn, verify(manifest), batch_size=20)
    after_kill = state(conn)
    conn.execute("TRUNCATE customers, reference_customers, loans, collaterals, "
                 "loan_collaterals, phones, addresses, emails, loan_bucket_history CASCADE")
    load_set(conn, verify(manifest))
    assert state(conn) == after_kill


def test_process_inbox_loads_rejects_and_never_loads_twice(conn, source, tmp_path):
    import shutil

    from integrations.t24.inbox import Inbox
    from integrations.t24.load import process_inbox

    inbox = Inbox(tmp_path / "t24").ensure()
    generate_day(inbox.inbox, source)  # day 0: good
    generate_day(inbox.inbox, source, day=1, mode="delta",
                 faults=T24Faults(bad_checksum=("loans",)))  # day 1: tampered
    loaded, rejected = process_inbox(conn, inbox)
    assert loaded.status == "succeeded" and rejected.status == "failed"
    assert list(inbox.inbox.iterdir()) == [] and list(inbox.work.iterdir()) == []
    assert (inbox.processed / "20261124").is_dir() and (inbox.rejected / "20261125").is_dir()
    loans = count(conn, "loans")
    assert loans > 0

    # The very same day-0 set arrives again: recognised, not loaded.
    processed = next((inbox.processed / "20261124").iterdir())
    for path in processed.iterdir():
        shutil.copy(path, inbox.inbox / path.name)
    (outcome,) = process_inbox(conn, inbox)
    assert outcome.startswith("duplicate: 20261124-")
    assert count(conn, "integration_runs") == 2 and count(conn, "loans") == loans


def test_no_loan_is_closed_when_a_loan_record_could_not_be_read(conn, source, tmp_path):
    run(conn, tmp_path / "d0", source)
    result, _ = run(conn, tmp_path / "d1", source, day=1, change_rate=0, full_omit_rate=0.2,
                    faults=T24Faults(malformed_every=7, malformed_entities=("loans",)))
    assert result.status == "partial"
    assert result.entities["loans"].unreadable_keys > 0  # the JSON syntax error lines
    assert result.entities["loans"].closed == 0
    assert "absent loans not closed" in result.errors[0]
    assert conn.execute("SELECT count(*) FROM loans WHERE status = 'CLOSED' "
                        "AND close_date = '2026-11-25'").fetchone()[0] == 0


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_the_same_day_in_another_format_changes_nothing(conn, source, tmp_path, fmt):
    first, _ = run(conn, tmp_path / "jsonl", source, day=1, new_customers=2)
    assert first.changed > 0
    before = state(conn)
    again, changes = run(conn, tmp_path / fmt, source, day=1, new_customers=2, fmt=fmt)
    assert again.status == "succeeded" and changes == [] and again.changed == 0
    assert state(conn) == before


def test_a_loads_events_have_time_ordered_version_7_ids(conn, source, tmp_path):

    started = int(clock.now().timestamp() * 1000)
    result, _ = run(conn, tmp_path / "d0", source)
    finished = int(clock.now().timestamp() * 1000)
    ids = [row[0] for row in conn.execute(
        "SELECT id FROM events WHERE type <> 'SYNC_COMPLETED' ORDER BY seq").fetchall()]
    assert len(ids) == result.events > 25  # several batches, several statements
    assert {i.version for i in ids} == {7} and len(set(ids)) == len(ids)
    millis = [int(i.hex[:12], 16) for i in ids]
    assert started <= min(millis) and max(millis) <= finished
    assert millis == sorted(millis)  # in the order they were written, time never goes back



def test_the_events_of_a_load_have_uuid7_ids_in_the_order_they_were_written(conn, source,
                                                                           tmp_path):
    """A load's events are written in bulk with ids from one random start per statement
    (changes.uuid7_prefix): each is a UUID version 7 of the RFC's variant, all differ, and they
    sort as they were written, so the primary key grows at its end."""
    result, _changes = run(conn, tmp_path, source)
    assert result.status == "succeeded", result.errors
    rows = conn.execute("SELECT id, seq, occurred_at FROM events WHERE type <> 'SYNC_COMPLETED' "
                        "ORDER BY seq").fetchall()
    assert len(rows) == result.events > 100
    ids = [row[0] for row in rows]
    assert len(set(ids)) == len(ids)
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    # the 48-bit time of each id is its event's time (ms)
    assert all(i.int >> 80 == int(at.timestamp() * 1000) for i, _seq, at in rows)
    assert ids == sorted(ids)
