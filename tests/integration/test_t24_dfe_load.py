"""The t24-dfe mapping profile against real PostgreSQL: T24 Data Framework CSV extracts (written by
the sandbox, and by hand in the shape a bank's extract has) loaded through the same manifest,
reader process, quarantine, change capture and run records as the crm-json files."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from integrations.sandbox.t24_dfe import is_ld, loan_id
from integrations.sandbox.t24_files import SeedSource, generate_day
from integrations.sync import SyncError, run_sync
from integrations.t24.load import load_set
from integrations.t24.manifest import FileEntry, Manifest, sha256_file, verify
from integrations.t24.mapping import load_profile
from tests.integration.sync_helpers import SNAPSHOTS, conn_fixture  # noqa: F401 - fixture

BASE = date(2026, 11, 24)
DFE = load_profile("t24-dfe")
VM, SM = DFE.value_mark, DFE.subvalue_mark  # jBASE's marks in UTF-8 (U+F8FD, U+F8FC)
LOAN_STATE = SNAPSHOTS["loans"][1] + " ORDER BY 1"


@pytest.fixture(scope="module")
def source():
    return SeedSource(60, 90, business_date=BASE)


def load(conn, manifest: Path, **kwargs):
    return load_set(conn, verify(manifest, profile=DFE), batch_size=25, **kwargs)


def test_a_full_day_then_a_delta_day_of_t24_extracts(conn, source, tmp_path):
    manifest = generate_day(tmp_path / "d0", source, profile="t24-dfe")
    result = load(conn, manifest)
    assert result.status == "succeeded", result.errors
    entries = {e.entity: e for e in Manifest.load(manifest).files}
    assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] == \
        entries["customers"].records
    assert conn.execute("SELECT count(*) FROM loans").fetchone()[0] == \
        entries["aa_arrangements"].records + entries["ld_loans"].records > 0
    assert conn.execute("SELECT count(*) FROM loan_collaterals").fetchone()[0] == \
        entries["loan_collaterals"].records > 0
    # bills are read, not written: counted unchanged, nothing quarantined
    bills = result.entities["aa_bill_details"]
    assert bills.extracted == entries["aa_bill_details"].records == bills.unchanged > 0
    run = conn.execute("SELECT extracted, loaded, unchanged, quarantined, control_totals "
                       "FROM integration_runs WHERE id = %s", (result.run_id,)).fetchone()
    assert run[0] == sum(e.records for e in entries.values()) and run[3] == 0
    assert run[4]["mapping"] == {"profile": "t24-dfe", "version": "2026.12.1",
                                 "file": "t24-dfe.toml"}
    assert all(not e["differences"] for e in run[4]["entities"].values())

    # DPD and the amount due are derived from the bills, relative to the business date: the
    # sandbox wrote the overdue bills of each loan from the seed's DPD and amount due
    expected = {}
    for entity, record in source.records():
        if entity == "loans":
            overdue = record["dpd"] > 0 and Decimal(record["due_amount"]) > 0
            expected[loan_id(record["account_number"])] = (
                record["dpd"] if overdue else 0,
                Decimal(record["due_amount"]) if overdue else Decimal(0))
    loaded = dict(((a, (d, due)) for a, d, due in conn.execute(
        "SELECT account_number, dpd, due_amount FROM loans")))
    assert loaded == expected
    assert any(d > 0 for d, _ in loaded.values()) and any(is_ld(a) for a in loaded)
    # multi-values: several phones of one customer, addresses with ward / district sub-values
    assert conn.execute("SELECT count(*) FROM (SELECT cif FROM phones GROUP BY cif "
                        "HAVING count(*) > 1) x").fetchone()[0] > 0
    assert conn.execute("SELECT count(*) FROM addresses WHERE ward IS NOT NULL "
                        "AND district IS NOT NULL").fetchone()[0] > 0

    delta = generate_day(tmp_path / "d1", source, day=1, mode="delta", change_rate=0.3,
                         new_customers=2, profile="t24-dfe")
    changed = load(conn, delta)
    assert changed.status == "succeeded", changed.errors
    assert changed.changed > 0
    after_delta = conn.execute(LOAN_STATE).fetchall()
    # the full extract of the same day finds nothing left to change
    full = generate_day(tmp_path / "f1", source, day=1, mode="full", change_rate=0.3,
                        new_customers=2, profile="t24-dfe")
    changes = []
    again = load(conn, full, on_change=lambda *change: changes.append(change))
    assert again.status == "succeeded", again.errors
    # Only what the calendar changes is left: a next instalment date the day has passed (the
    # seed's loan kept it, so the delta did not list the arrangement, and the full extract no
    # longer has that bill ahead). Everything the delta carried is as the full extract says.
    day1 = BASE + timedelta(days=1)
    passed = {a for a, d in conn.execute("SELECT account_number, next_payment_date FROM loans")
              if d is None}
    assert all(entity == "loans" and set(diff) <= {"next_payment_date", "min_pay"}
               and date.fromisoformat(diff["next_payment_date"][0]) < day1
               for entity, _key, _inserted, diff in changes), changes
    assert again.changed == len(changes) <= len(passed)
    before = {r[0]: r for r in after_delta}
    for row in conn.execute(LOAN_STATE).fetchall():
        if not any(key == row[0] for _e, key, _i, _d in changes):
            assert row == before[row[0]]


# -- hand-written extracts, in the shape a bank's DFE job writes ---------------------------------
def write_set(directory: Path, business_date: date, files: dict[str, str],
              mode: str = "full") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for source_name, text in files.items():
        name = f"t24_{source_name}_{business_date:%Y%m%d}.csv"
        (directory / name).write_text(text, encoding="utf-8")
        sha, size = sha256_file(directory / name)
        records = len([line for line in text.splitlines()[1:] if line.strip()])
        entries.append(FileEntry(source_name, name, records, sha, "csv", size))
    manifest = Manifest(business_date, mode, entries)
    return manifest.write(directory / f"t24_manifest_{business_date:%Y%m%d}.json")


def test_the_issues_own_records_load(conn, tmp_path):
    """The customer keyed SHORT.NAME, NAME.1, SECTOR, SMS.1, STREET and the LD loan keyed
    CUSTOMER.ID, CURRENCY, AMOUNT, VALUE.DATE, FIN.MAT.DATE, INTEREST.RATE (both quarantined
    before the mapping), with the LD loan's past-due record; bad ones quarantined with the
    field and line."""
    customers = (
        "@ID,SHORT.NAME,NAME.1,SECTOR,SMS.1,STREET\n"
        f"100234,NGUYEN VAN AN,Nguyễn Văn An,1001,0912345678{VM}+84987654321,"
        f"12 Lý Thường Kiệt{VM}45 Hàng Bài\n"
        "100235,TRAN THI BINH,Trần Thị Bình,9999,0911111111,1 Tràng Tiền\n")
    loans = (
        "@ID,CUSTOMER.ID,CURRENCY,AMOUNT,VALUE.DATE,FIN.MAT.DATE,INTEREST.RATE\n"
        "LD2401500001,100234,VND,150000000,20240115,20290115,10.5\n"
        "LD2401500002,100234,VND,90000000,20241341,20290115,10.5\n")
    pd = (
        "@ID,PAYMENT.DTE.DUE,PAY.TYPE,PAY.AMT.OUTS,TOTAL.OVERDUE.AMT\n"
        f"PDLD2401500001,20261015{VM}20261115,PR{SM}IN{VM}PR{SM}IN,"
        f"-2500000{SM}-1300000{VM}-2500000{SM}-1250000,-7550000\n")
    manifest = write_set(tmp_path / "set", BASE, {"customers": customers,
                                                  "pd_payment_due": pd, "ld_loans": loans})
    result = load(conn, manifest)
    assert result.status == "partial", result.errors

    name, segment, kind, status = conn.execute(
        "SELECT name, segment, type, status FROM customers WHERE cif = '100234'").fetchone()
    assert (name, segment, kind, status) == ("Nguyễn Văn An", "MASS", "INDIVIDUAL", "ACTIVE")
    phones = conn.execute("SELECT number_e164, type, is_primary FROM phones WHERE cif = "
                          "'100234' ORDER BY number_e164").fetchall()
    assert phones == [("+84912345678", "MOBILE", True), ("+84987654321", "MOBILE", False)]
    assert [r[0] for r in conn.execute("SELECT line1 FROM addresses WHERE cif = '100234' "
                                       "ORDER BY line1")] == ["12 Lý Thường Kiệt",
                                                              "45 Hàng Bài"]
    loan = conn.execute("SELECT cif, currency, original_amount, outstanding, disbursement_date, "
                        "maturity_date, interest_rate, dpd, due_amount, status FROM loans "
                        "WHERE account_number = 'LD2401500001'").fetchone()
    assert loan == ("100234", "VND", Decimal("150000000.00"), Decimal("150000000.00"),
                    date(2024, 1, 15), date(2029, 1, 15), Decimal("10.5000"),
                    (BASE - date(2026, 10, 15)).days, Decimal("7550000.00"), "OPEN")

    bad = conn.execute("SELECT entity, record_key, reason, source_file, line_number FROM "
                       "quarantined_records WHERE run_id = %s ORDER BY source_file",
                       (result.run_id,)).fetchall()
    assert bad == [
        ("customers", "100235", "SECTOR → type: code '9999' is not in code table sector_type",
         "t24_customers_20261124.csv", 3),
        ("loans", "LD2401500002", "VALUE.DATE → disbursement_date: not a T24 date (YYYYMMDD): "
         "'20241341'", "t24_ld_loans_20261124.csv", 3),
    ]


def test_aa_bills_settled_in_their_history_do_not_count(conn, tmp_path):
    day = BASE
    customers = "@ID,NAME.1,SECTOR\n200001,Lê Văn Cường,1002\n"
    arrangements = (
        "@ID,CUSTOMER,PRODUCT,CURRENCY,ARR.STATUS,START.DATE,AMOUNT,OPEN.BALANCE,TERM,"
        "EFFECTIVE.RATE\n"
        f"AA2403100001,200001,PERSONAL.LOAN,VND,CURRENT,20240301,120000000,-80000000,36M,"
        f"12.5{VM}14.5\n")
    due = (day - timedelta(days=40)).strftime("%Y%m%d")
    paid = (day - timedelta(days=70)).strftime("%Y%m%d")
    upcoming = (day + timedelta(days=5)).strftime("%Y%m%d")
    bills = (
        "@ID,ARRANGEMENT.ID,PAYMENT.DATE,BILL.STATUS,SETTLE.STATUS,OR.TOTAL.AMOUNT,"
        "OS.TOTAL.AMOUNT\n"
        f"BL1,AA2403100001,{paid},SETTLED{VM}DUE,REPAID{VM}UNPAID,4200000,0\n"
        f"BL2,AA2403100001,{due},AGING{VM}DUE,UNPAID,4200000,3100000.50\n"
        f"BL3,AA2403100001,{upcoming},ISSUED,UNPAID,4200000,4200000\n"
        f"BL4,AA2403100001,{due},AGING,PAID.OFF,4200000,1\n")
    manifest = write_set(tmp_path / "set", day, {"customers": customers,
                                                 "aa_bill_details": bills,
                                                 "aa_arrangements": arrangements})
    result = load(conn, manifest)
    assert result.entities["aa_bill_details"].quarantined == 1  # PAID.OFF: not in the table
    row = conn.execute("SELECT dpd, due_amount, next_payment_date, min_pay, term, "
                       "interest_rate, outstanding, product_type, bucket FROM loans").fetchone()
    assert row == (40, Decimal("3100000.50"), day + timedelta(days=5), Decimal("4200000.00"),
                   36, Decimal("12.5000"), Decimal("80000000.00"), "PERSONAL_LOAN", row[8])
    reason, line = conn.execute("SELECT reason, line_number FROM quarantined_records WHERE "
                                "run_id = %s", (result.run_id,)).fetchone()
    assert (reason, line) == ("SETTLE.STATUS → unpaid: code 'PAID.OFF' is not in code table "
                              "settle_status", 5)


def test_a_bad_mapping_file_refuses_the_run(app, db, tmp_path, monkeypatch):
    text = (Path(DFE_PATH).read_text(encoding="utf-8")
            .replace('due_date = { from = "PAYMENT.DATE", convert = "date" }',
                     'due_date = { from = "PAYMENT.DATE", convert = "datum" }'))
    bad = tmp_path / "bank.toml"
    bad.write_text(text, encoding="utf-8")
    line = text.splitlines().index('due_date = { from = "PAYMENT.DATE", convert = "datum" }') + 1
    for key, value in (("T24_MAPPING_PROFILE", str(bad)),
                       ("T24_INBOX_DIR", str(tmp_path / "inbox")), ("T24_SFTP_HOST", None)):
        monkeypatch.setitem(app.config, key, value)
    with pytest.raises(SyncError) as refused:
        run_sync("T24", app=app, retries=0, trigger="manual")
    message = str(refused.value)
    assert f"mapping file bank.toml, line {line}, field due_date: unknown converter 'datum'" \
        in message
    assert "Traceback" not in message


DFE_PATH = Path(__file__).resolve().parents[2] / "integrations" / "t24" / "mappings" / \
    "t24-dfe.toml"
