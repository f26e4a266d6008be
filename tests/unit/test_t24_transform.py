"""Validation and mapping of T24 records: typed column values, or a quarantine item."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from integrations.fields import Quarantine, Row, phone_e164
from integrations.sandbox.t24_files import SeedSource, T24Faults, generate_day
from integrations.t24.manifest import verify
from integrations.t24.parser import RawRecord, read_records
from integrations.t24.transform import ControlTotals, transform, transform_records
from portal.models.enums import bucket_for_dpd

LOAN = {
    "account_number": "LD2600000001", "cif": "10000001", "product_type": "PERSONAL_LOAN",
    "currency": "VND", "original_amount": "100000000", "outstanding": "80000000.5",
    "due_amount": "5000000", "min_pay": "4000000", "next_payment_date": "20261201",
    "dpd": "45", "status": "open", "disbursement_date": "2025-01-10",
    "maturity_date": "2028-01-10", "close_date": None, "interest_rate": "12.50", "term": 36,
}
CUSTOMER = {
    "cif": "10000001", "type": "INDIVIDUAL", "name": "Nguyễn Văn An", "date_of_birth": "1985-02-03",
    "national_id": "079085000001", "gender": "male", "status": "ACTIVE",
    "phones": [{"type": "MOBILE", "number": "0901 234 567", "is_primary": "true"}],
    "addresses": [{"type": "HOME", "line1": "1 Lê Lợi", "lat": "10.776900", "lon": "106.700900",
                   "is_primary": True}],
    "emails": [{"type": "PERSONAL", "address": "an@example.vn"}],
}


def raw(entity, data, number=1):
    return RawRecord(entity, f"t24_{entity}_20261124.jsonl", number, number, data)


def test_a_loan_becomes_typed_columns_with_its_bucket():
    row = transform(raw("loans", LOAN))
    assert isinstance(row, Row)
    v = row.values
    assert row.key == "LD2600000001"
    assert v["outstanding"] == Decimal("80000000.50") and isinstance(v["outstanding"], Decimal)
    assert v["next_payment_date"] == date(2026, 12, 1)  # T24's YYYYMMDD
    assert v["disbursement_date"] == date(2025, 1, 10)
    assert v["dpd"] == 45 and v["bucket"] == bucket_for_dpd(45) == "31-60"
    assert v["status"] == "OPEN" and v["interest_rate"] == Decimal("12.5000")
    assert v["source_system"] == "T24" and "last_synced_at" not in v


def test_bucket_is_computed_not_read():
    row = transform(raw("loans", {**LOAN, "dpd": 0, "bucket": "90+"}))
    assert row.values["bucket"] == "current"


@pytest.mark.parametrize("change, reason", [
    ({"outstanding": 80000000.5}, "must not be floating point"),
    ({"outstanding": "-1"}, "must not be negative"),
    ({"outstanding": "1.005"}, "more than 2 decimal places"),
    ({"outstanding": "12,5x"}, "not a decimal amount"),
    ({"outstanding": "1" * 17}, "out of range"),
    ({"outstanding": None}, "outstanding: required"),
    ({"cif": ""}, "cif: required"),
    ({"currency": "dong"}, "currency"),
    ({"dpd": "-3"}, "at least 0"),
    ({"dpd": "4.5"}, "whole number"),
    ({"status": "ALIVE"}, "not one of"),
    ({"next_payment_date": "2026-13-45"}, "not a valid date"),
    ({"next_payment_date": "01/12/2026"}, "not a date"),
    ({"maturity_date": "2024-01-01"}, "before disbursement_date"),
    ({"account_number": "X" * 40}, "longer than 32"),
])
def test_a_bad_loan_is_quarantined_with_its_reason_and_payload(change, reason):
    data = {**LOAN, **change}
    result = transform(raw("loans", data, number=7))
    assert isinstance(result, Quarantine)
    assert reason in result.reason
    assert result.record_number == 7 and result.source_file == "t24_loans_20261124.jsonl"
    assert result.payload["product_type"] == "PERSONAL_LOAN"
    if data.get("account_number"):
        assert result.record_key == data["account_number"][:64]


def test_a_customer_with_contacts():
    row = transform(raw("customers", CUSTOMER))
    assert row.values["gender"] == "MALE" and row.values["date_of_birth"] == date(1985, 2, 3)
    (phone,) = row.contacts["phones"]
    assert phone["number_e164"] == "+84901234567" and phone["is_primary"] is True
    assert phone["cif"] == "10000001" and phone["ref_cif"] is None
    (address,) = row.contacts["addresses"]
    assert address["lat"] == Decimal("10.776900") and address["country"] == "VN"
    assert row.contacts["emails"][0]["address"] == "an@example.vn"


@pytest.mark.parametrize("change, reason", [
    ({"phones": [{"number": "abc"}]}, "phones[0].number"),
    ({"phones": [{"number": "0901234567", "type": "PAGER"}]}, "phones[0].type"),
    ({"addresses": [{"line1": "x", "lat": "123.0"}]}, "addresses[0].lat"),
    ({"emails": [{"address": "not-an-email"}]}, "emails[0].address"),
    ({"phones": {"number": "0901234567"}}, "phones: expected a list"),
    ({"name": None}, "name: required"),
    ({"type": "ROBOT"}, "type"),
])
def test_a_bad_contact_quarantines_the_customer(change, reason):
    result = transform(raw("customers", {**CUSTOMER, **change}))
    assert isinstance(result, Quarantine) and reason in result.reason


def test_an_organization_gets_its_company_name():
    row = transform(raw("customers", {"cif": "1", "type": "ORGANIZATION", "name": "Công ty A"}))
    assert row.values["company_name"] == "Công ty A"


def test_an_undecodable_record_is_quarantined_with_the_raw_text():
    record = RawRecord("loans", "f.jsonl", 3, 9, None, '{"a": }', "invalid JSON: x")
    result = transform(record)
    assert isinstance(result, Quarantine)
    assert (result.reason, result.raw, result.line_number) == ("invalid JSON: x", '{"a": }', 9)


def test_references_to_unknown_keys_are_quarantined_when_known_keys_are_given():
    known = {"customers": {"10000001"}}
    assert isinstance(transform(raw("loans", LOAN), known), Row)
    result = transform(raw("loans", {**LOAN, "cif": "99"}), known)
    assert isinstance(result, Quarantine) and "not a known customer" in result.reason
    link = {"account_number": "LD1", "collateral_number": "C1"}
    assert isinstance(transform(raw("loan_collaterals", link)), Row)  # no check without `known`


def test_a_duplicate_key_in_one_stream_is_quarantined():
    results = list(transform_records([raw("loans", LOAN, 1), raw("loans", LOAN, 2)]))
    assert isinstance(results[0], Row)
    assert isinstance(results[1], Quarantine) and "duplicate" in results[1].reason


def test_control_totals():
    totals = ControlTotals("loans")
    for result in transform_records([raw("loans", LOAN, 1),
                                     raw("loans", {**LOAN, "account_number": "LD2"}, 2),
                                     raw("loans", {**LOAN, "account_number": "LD3",
                                                   "outstanding": "x"}, 3)]):
        totals.add(result)
    assert (totals.rows, totals.quarantined) == (2, 1)
    assert totals.sums["outstanding"] == Decimal("160000001.00")
    assert totals.compare({"outstanding": Decimal("160000001")}) == {}
    diff = totals.compare({"outstanding": Decimal("240000001.50")})
    assert diff["outstanding"]["difference"] == "-80000000.50"


@pytest.mark.parametrize("number, e164", [
    ("0901234567", "+84901234567"), ("+84901234567", "+84901234567"),
    ("84901234567", "+84901234567"), ("028.3812.3456", "+842838123456"), ("12", None),
])
def test_phone_e164(number, e164):
    assert phone_e164(number) == e164


@pytest.mark.parametrize("fmt", ["jsonl", "json", "xml"])
def test_malformed_records_of_the_sandbox_are_quarantined_and_their_neighbours_pass(tmp_path,
                                                                                     fmt):
    faults = T24Faults(malformed_every=5)
    manifest_path = generate_day(tmp_path, SeedSource(60, 90, business_date=date(2026, 11, 24)),
                                 fmt=fmt, faults=faults)
    check = verify(manifest_path)
    assert check.ok, check.errors  # malformed records do not make a file unreadable
    quarantined, rows = [], 0
    for entry, path in check.files():
        totals = ControlTotals(entry.entity)
        for result in transform_records(read_records(path, entry.entity)):
            totals.add(result)
            if isinstance(result, Quarantine):
                quarantined.append(result)
            else:
                rows += 1
        assert totals.rows + totals.quarantined == entry.records
        if entry.entity == "loans":  # the manifest totals include what T24 meant to send
            assert set(totals.compare(entry.control_totals)) <= {
                "original_amount", "outstanding", "due_amount"}
    assert len(quarantined) == len(faults.malformed_keys) > 5
    assert rows >= 3 * len(quarantined)  # every 5th record is broken, the other 4 pass
    if fmt == "jsonl":
        assert any(q.raw and q.payload is None for q in quarantined)  # a syntax error
    assert all(q.reason for q in quarantined)


@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "NaN", "sNaN"])
def test_non_finite_decimal_is_not_a_whole_number(value):
    # found by the fuzz test: Decimal("Infinity") passed the integral check and crashed int()
    from integrations.fields import Invalid, to_int

    with pytest.raises(Invalid, match="expected a whole number"):
        to_int()("dpd", Decimal(value))
