"""ISO 20022 camt.053 / camt.054 imports, with fixture files in the banks' shapes
(tests/fixtures/camt): every transaction of a file is accounted for (accepted, duplicate,
refused with its reason, skipped with its reason), batch entries give one payment per TxDtls,
the loan comes from a structured reference or the configured remittance rule and is never
guessed, the file's control sums are checked, refusals reach the refused log, and importing
the same file again changes nothing."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from integrations.payments.camt import CamtError, parse_camt
from portal.models import CamtImport, Event, Payment
from portal.models.payments import RejectedNotification
from portal.payments.camt_import import import_camt
from tests.integration.test_payments_webhook import notification, post

FIXTURES = Path(__file__).parent.parent / "fixtures" / "camt"
AFTER_THE_FILES = "2026-11-26T02:00:00+00:00"  # 09:00 bank time, the day after the last file


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def count(db, model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def outcomes(result) -> list[tuple]:
    return [(r.location, r.reference, r.amount, r.account_number, r.outcome, r.reason)
            for r in result.rows]


@pytest.fixture
def loans(db, frozen_now, make_customer, make_loan):
    frozen_now(AFTER_THE_FILES)
    first, second = make_customer(), make_customer()
    return {"LD2432800017": make_loan(first, dpd=12, account_number="LD2432800017"),
            "LD2432800018": make_loan(second, dpd=40, account_number="LD2432800018")}


@pytest.fixture
def chf_loans(app, db, frozen_now, make_customer, make_loan):
    frozen_now(AFTER_THE_FILES)
    previous = app.config.get("CAMT_CURRENCIES")
    app.config["CAMT_CURRENCIES"] = "VND,CHF"
    yield [make_loan(make_customer(), dpd=5, account_number=number, currency="CHF")
           for number in ("LD2432800042", "LD2432800142")]
    app.config["CAMT_CURRENCIES"] = previous


def run(db, name: str, data: bytes | None = None):
    result = import_camt(db.session, data if data is not None else fixture(name),
                         filename=name)
    db.session.commit()
    return result


def test_a_batch_entry_of_two_txdtls_gives_two_payments_camt054_02(db, chf_loans):
    result = run(db, "camt054.001.02-chf-batch.xml")
    assert (result.kind, result.version) == ("camt.054", "camt.054.001.02")
    assert outcomes(result) == [
        ("1.1.1", "ZKB-20261123-0001-001", Decimal("42.00"), "LD2432800042", "accepted", None),
        ("1.1.2", "ZKB-20261123-0001-002", Decimal("142.00"), "LD2432800142", "accepted",
         None),
        ("1.2.1", "ZKB-20261123-0002", Decimal("42.00"), None, "skipped", "debit"),
        # "Muster AG Rechnung 4711": no word of it is taken for a loan
        ("1.3.1", "ZKB-20261123-0003", Decimal("50.00"), None, "refused", "no_loan_reference"),
    ]
    assert [r.matched_by for r in result.rows[:2]] == ["creditor_reference", "unstructured"]
    payments = {p.reference_number: p for p in db.session.scalars(select(Payment))}
    assert {k: (p.amount, p.currency, p.account_number) for k, p in payments.items()} == {
        "ZKB-20261123-0001-001": (Decimal("42.00"), "CHF", "LD2432800042"),
        "ZKB-20261123-0001-002": (Decimal("142.00"), "CHF", "LD2432800142"),
    }
    # booked on a date only: 00:00 bank time
    assert payments["ZKB-20261123-0001-001"].paid_at == datetime.fromisoformat(
        "2026-11-22T17:00:00+00:00")
    # 7 of the file (TxsSummry) and 3 of the batch entry (Btch count and total, the sum)
    assert result.controls_ok and [c["file"] for c in result.checks] == [True] * 7 + [False] * 3
    assert all(c["ok"] for c in result.checks)
    assert (result.transactions, result.accepted, result.refused, result.skipped) == (4, 2, 1, 1)
    assert result.accepted_total == Decimal("184.00")
    # the refusal is in the refused log ops reads, with the file and the entry
    logged = db.session.scalars(select(RejectedNotification)).one()
    assert (logged.code, logged.reference_number, logged.event_id) == (
        "no_loan_reference", "ZKB-20261123-0003", "ZKB-054-20261123-0001")
    assert logged.headers["Location"] == "transaction 1.3.1"
    assert "Muster AG Rechnung 4711" in logged.body
    assert result.rows[3].rejection_id == logged.id


def test_camt054_04_and_08_every_transaction_accounted_for(db, loans):
    first = run(db, "camt054.001.04.xml")
    assert outcomes(first) == [
        ("1.1.1", "FT26328XK81Q", Decimal("1500000"), "LD2432800017", "accepted", None),
        ("1.2.1", "FT26328PEND1", Decimal("300000"), None, "skipped", "not_booked"),
        # the only TxDtls has no amount: the entry's; the loan from its end-to-end id
        ("1.3.1", "FT26328ZZ02B", Decimal("250000"), "LD2432800018", "accepted", None),
        ("1.4.1", "FT26328USD01", Decimal("100"), None, "skipped", "other_currency"),
    ]
    assert first.rows[2].matched_by == "end_to_end_id" and first.controls_ok

    second = run(db, "camt054.001.08-batch.xml")
    assert outcomes(second) == [
        ("1.1.1", "BT26328000451-01", Decimal("1200000"), "LD2432800017", "accepted", None),
        ("1.1.2", "BT26328000451-02", Decimal("800000"), "LD2432800018", "accepted", None),
        # the reversal finds the payment by its end-to-end id
        ("1.2.1", "RV26328XK81Q", Decimal("1500000"), "LD2432800017", "accepted", None),
        ("1.3.1", "FEE26328001", Decimal("50000"), None, "skipped", "debit"),
        # its creditor reference (RF…) is no loan; the remittance text names one
        ("1.4.1", "FT26328QR777", Decimal("700000"), "LD2432800017", "accepted", None),
    ]
    assert second.rows[4].matched_by == "unstructured" and second.controls_ok
    payments = {p.reference_number: p for p in db.session.scalars(select(Payment))}
    assert payments["FT26328XK81Q"].status == "reversed"
    assert payments["RV26328XK81Q"].original_reference == "FT26328XK81Q"
    assert payments["BT26328000451-01"].paid_at == datetime.fromisoformat(
        "2026-11-23T17:00:00+00:00")
    assert count(db, Payment) == 6 and count(db, Event) == 6
    assert count(db, RejectedNotification) == 0


def test_camt053_02_statement_checks_balances_and_finds_what_054_brought(db, loans):
    run(db, "camt054.001.04.xml")
    statement = run(db, "camt053.001.02.xml")
    assert statement.kind == "camt.053"
    assert outcomes(statement) == [
        ("1.1.1", "FT26328XK81Q", Decimal("1500000"), "LD2432800017", "duplicate", None),
        ("1.2.1", "BT26328000502-01", Decimal("400000"), "LD2432800017", "accepted", None),
        # "LD 2432 8000 18": the reference compared without its spaces
        ("1.2.2", "BT26328000502-02", Decimal("500000"), "LD2432800018", "accepted", None),
        ("1.3.1", "DD26328000009", Decimal("200000"), None, "skipped", "debit"),
    ]
    balance = [c for c in statement.checks if c["name"].startswith("OPBD")]
    assert balance == [{"scope": "VCB-053-20261124-0071001234567 (1)",
                        "name": "OPBD + credits − debits = CLBD", "expected": "12200000",
                        "actual": "12200000", "ok": True, "file": True}]
    assert statement.controls_ok and statement.duplicates == 1


def test_camt053_08_statement(db, loans):
    result = run(db, "camt053.001.08.xml")
    assert (result.kind, result.version) == ("camt.053", "camt.053.001.08")
    assert outcomes(result) == [
        ("1.1.1", "BT26329000610-01", Decimal("600000"), "LD2432800017", "accepted", None),
        ("1.1.2", "BT26329000610-02", Decimal("600000"), "LD2432800018", "accepted", None),
        ("1.1.3", "BT26329000610-03", Decimal("600000"), None, "refused",
         "ambiguous_loan_reference"),
        # an entry without details is a transaction of its own
        ("1.2.1", "FT26329NODET", Decimal("150000"), None, "refused", "no_loan_reference"),
        ("1.3.1", "FT26329DATE1", Decimal("500000"), "LD2432800018", "accepted", None),
    ]
    assert [c["name"] for c in result.checks if c["name"].startswith("PRCD")] == [
        "PRCD + credits − debits = CLBD"]
    assert result.controls_ok
    assert {r.reference_number for r in db.session.scalars(select(RejectedNotification))} == {
        "BT26329000610-03", "FT26329NODET"}


def test_a_file_whose_control_sums_do_not_match_applies_nothing(db, loans):
    data = fixture("camt053.001.08.xml").replace(
        b'<Amt Ccy="VND">14650000</Amt>', b'<Amt Ccy="VND">14600000</Amt>')
    result = run(db, "camt053-bad.xml", data)
    assert not result.controls_ok
    failed = [c for c in result.checks if not c["ok"]]
    assert [(c["name"], c["expected"], c["actual"]) for c in failed] == [
        ("PRCD + credits − debits = CLBD", "14600000", "14650000")]
    assert {r.outcome for r in result.rows} == {"refused"}
    assert {r.reason for r in result.rows} == {"control_sum_mismatch"}
    assert count(db, Payment) == 0 and count(db, Event) == 0
    logged = db.session.scalars(select(RejectedNotification)).one()  # one row for the file
    assert logged.code == "control_sum_mismatch" and "14600000" in logged.message


def test_an_entry_whose_details_do_not_add_up_refuses_that_entry_only(db, loans):
    data = fixture("camt054.001.08-batch.xml").replace(
        b'<Amt Ccy="VND">800000</Amt>', b'<Amt Ccy="VND">80000</Amt>')
    result = run(db, "camt054-batch-bad.xml", data)
    assert result.controls_ok  # the file's own totals are about its entries: they agree
    assert [(r.location, r.outcome, r.reason) for r in result.rows] == [
        ("1.1.1", "refused", "entry_details_mismatch"),
        ("1.1.2", "refused", "entry_details_mismatch"),
        ("1.2.1", "refused", "unknown_payment"),  # the payment it reverses never came
        ("1.3.1", "skipped", "debit"),
        ("1.4.1", "accepted", None),
    ]
    assert [c["name"] for c in result.checks if not c["ok"]] == [
        "batch total (Btch/TtlAmt)", "sum of the transactions = entry amount"]


def test_importing_the_same_file_again_changes_nothing(db, chf_loans):
    first = run(db, "camt054.001.02-chf-batch.xml")
    before = (count(db, Payment), count(db, Event), count(db, RejectedNotification))
    again = run(db, "camt054.001.02-chf-batch.xml")
    assert (count(db, Payment), count(db, Event), count(db, RejectedNotification)) == before
    assert again.repeat_of_id == first.id
    assert [r.outcome for r in again.rows] == ["duplicate", "duplicate", "skipped", "refused"]
    assert again.rows[3].rejection_id == first.rows[3].rejection_id
    assert [r.payment_id for r in again.rows[:2]] == [r.payment_id for r in first.rows[:2]]


def test_a_payment_notified_by_file_and_webhook_counts_once(client, db, loans):
    run(db, "camt054.001.04.xml")
    loan = loans["LD2432800017"]
    response = post(client, notification(loan, reference_number="FT26328XK81Q",
                                         amount="1500000"))
    assert response.status_code == 200 and response.get_json()["duplicate"] is True
    assert count(db, Payment) == 2


def test_cli_imports_a_statement_and_prints_the_outcomes(app, db, loans):
    result = CliRunner().invoke(app.cli, ["payments", "import-camt",
                                          str(FIXTURES / "camt053.001.08.xml")])
    assert result.exit_code == 0, result.output
    assert "camt.053 camt.053.001.08 message VCB-053-20261125: 5 transactions" in result.output
    assert "  accepted        3  1,700,000\u00a0₫\n" in result.output
    assert "  refused         2  750,000\u00a0₫\n" in result.output
    assert "control sums: 9 of 9 agree" in result.output
    assert "References name more than one loan" in result.output
    assert count(db, CamtImport) == 1


@pytest.mark.parametrize("content, message", [
    (b"<not xml", "not a readable XML document"),
    (b"<Document><Other/></Document>", "not a camt.052, camt.053 or camt.054 document"),
])
def test_cli_refuses_an_unreadable_file_without_a_traceback(app, db, tmp_path, content, message):
    path = tmp_path / "broken.xml"
    path.write_bytes(content)
    result = CliRunner().invoke(app.cli, ["payments", "import-camt", str(path)])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert count(db, CamtImport) == 0


def test_cli_names_a_missing_file(app, db, tmp_path):
    result = CliRunner().invoke(app.cli, ["payments", "import-camt", str(tmp_path / "no.xml")])
    assert result.exit_code == 1 and "Cannot import" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("data", [
    b"<not xml",
    b"<Document><Other/></Document>",
    b'<!DOCTYPE d [<!ENTITY x "boom">]><Document><BkToCstmrStmt/></Document>',
])
def test_unreadable_or_dangerous_files_are_refused(data):
    with pytest.raises(CamtError):
        parse_camt(data)


def test_any_version_namespace_is_read():
    data = fixture("camt054.001.08-batch.xml").replace(
        b"urn:iso:std:iso:20022:tech:xsd:camt.054.001.08", b"urn:example:camt.054.001.99")
    document = parse_camt(data)
    assert document.kind == "camt.054" and len(document.transactions) == 5


def test_flask_check_invariants_accounts_for_every_camt_transaction(db, loans):
    from sqlalchemy import text

    from portal.ops import invariants

    def violations() -> list[dict]:
        [result] = invariants.check_all(db.session, names=["camt_transactions"])
        assert result.error is None, result.error
        return result.sample

    good = run(db, "camt054.001.04.xml")
    refused = run(db, "camt054-batch-bad.xml", fixture("camt054.001.08-batch.xml").replace(
        b'<Amt Ccy="VND">800000</Amt>', b'<Amt Ccy="VND">80000</Amt>'))
    db.session.commit()
    assert violations() == []
    # a count that does not match its rows, and a refused row missing from the refusals log
    db.session.execute(text("UPDATE camt_imports SET skipped = skipped + 1 WHERE id = :i"),
                       {"i": good.id})
    db.session.execute(text("UPDATE camt_import_transactions SET rejection_id = NULL "
                            "WHERE import_id = :i AND position = 1"), {"i": refused.id})
    found = {(v["import_id"], v["skipped"], v["rows_skipped"], v["refused_unlogged"])
             for v in violations()}
    assert found == {(good.id, 3, 2, 0), (refused.id, 1, 1, 1)}
