"""Batches of a T24 file encoded for COPY (integrations/t24/batches.py): the text format, what a
batch holds, and the reader process (same batches as in-process, its errors re-raised in the
loader, stopped with the loader)."""

from __future__ import annotations

import json
import os
import time
from datetime import date
from decimal import Decimal

import pytest

from integrations.t24.batches import BatchReader, copy_line, copy_value, file_batches
from integrations.t24.formats import T24FormatError

LOAN = {"account_number": "LD1", "cif": "C1", "product_type": "MORTGAGE", "currency": "VND",
        "original_amount": "1000", "outstanding": "500.5", "dpd": 31, "status": "OPEN",
        "disbursement_date": "20200101"}


def customer(cif: str, *numbers: str) -> dict:
    return {"cif": cif, "name": f"Name\t{cif}\\x", "phones": [{"number": n} for n in numbers]}


def write_jsonl(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n"
                            for r in records))
    return path


def test_copy_text_escapes_what_copy_would_misread_and_types_each_value():
    assert copy_value(None) == "\\N"
    assert copy_value("a\\b\tc\nd\re") == "a\\\\b\\tc\\nd\\re"
    assert copy_value("plain") == "plain"
    assert copy_value(True) == "t" and copy_value(False) == "f"
    assert copy_value(date(2026, 11, 24)) == "2026-11-24"
    assert copy_value(Decimal("12.50")) == "12.50" and copy_value(7) == "7"
    assert copy_line(["x", None, 1]) == "x\t\\N\t1\n"
    with pytest.raises(TypeError):
        copy_value(1.5)  # never float


def test_a_batch_holds_rows_contacts_quarantined_records_and_totals(tmp_path):
    path = write_jsonl(tmp_path / "t24_loans_20261124.jsonl", [
        LOAN, "{not json", {**LOAN, "outstanding": "1"}, {**LOAN, "account_number": "LD2",
                                                           "dpd": "x"},
        {**LOAN, "account_number": "LD3"}])
    batches = list(file_batches("loans", path, 3))
    assert [b.records for b in batches] == [3, 2]
    first, second = batches
    assert first.rows == 1 and second.rows == 1
    # the duplicate LD1 (first one wins), the undecodable line (no key), LD2 (bad dpd)
    assert [q.record_key for q in first.quarantined + second.quarantined] == [None, "LD1",
                                                                                "LD2"]
    assert first.unreadable_keys == 1 and second.bad_keys == ["LD2"]
    assert first.totals.sums["outstanding"] == Decimal("500.50")
    line = first.data.decode().splitlines()[0].split("\t")
    assert line[0] == "LD1" and line[-3:] == ["31-60", "T24", "1"]  # bucket, source, _rec


def test_contacts_are_encoded_once_per_identity(tmp_path):
    path = write_jsonl(tmp_path / "t24_customers_20261124.jsonl", [
        customer("C1", "0901234567", "0901234567"), customer("C2")])
    (batch,) = file_batches("customers", path, 10)
    assert batch.rows == 2 and batch.contact_owners == 1
    phones = batch.contacts["phones"].decode().splitlines()
    assert len(phones) == 1 and phones[0].startswith("C1\t0901234567\t")
    assert "Name\\tC1\\\\x" in batch.data.decode()


def test_the_reader_process_gives_the_same_batches_as_reading_in_process(tmp_path):
    loans = write_jsonl(tmp_path / "t24_loans_20261124.jsonl",
                        [{**LOAN, "account_number": f"LD{i}"} for i in range(7)])
    customers = write_jsonl(tmp_path / "t24_customers_20261124.jsonl", [customer("C1", "0901")])
    files = [("customers", customers), ("loans", loans)]
    results = []
    for read_ahead in (False, True):
        with BatchReader(files, 3, read_ahead) as reader:
            results.append([(b.entity, b.records, b.data, b.contacts, len(b.quarantined))
                            for entity, _ in files for b in reader.batches(entity)])
    assert results[0] == results[1] and len(results[0]) == 4


def test_an_error_in_the_reader_process_is_raised_in_the_loader(tmp_path):
    broken = tmp_path / "t24_loans_20261124.json"
    broken.write_text('[{"account_number": "LD1"}, {"account_number": ')
    with BatchReader([("loans", broken)], 10, True) as reader, \
            pytest.raises(T24FormatError) as error:
        list(reader.batches("loans"))
    assert error.value.source == broken.name and "invalid JSON" in error.value.reason


def test_the_reader_process_stops_with_the_loader(tmp_path):
    path = write_jsonl(tmp_path / "t24_loans_20261124.jsonl",
                       [{**LOAN, "account_number": f"LD{i}"} for i in range(3000)])
    with BatchReader([("loans", path)], 10, True) as reader:
        next(reader.batches("loans"))  # the reader is now blocked a batch ahead
        pid = reader.process.pid
    deadline = time.monotonic() + 5
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "the reader process outlived the loader"
        time.sleep(0.05)


def dfe_files(tmp_path):
    from integrations.sandbox.t24_files import SeedSource, generate_day
    from integrations.t24.manifest import verify
    from integrations.t24.mapping import load_profile

    profile = load_profile("t24-dfe")
    manifest = generate_day(tmp_path, SeedSource(40, 60, business_date=date(2026, 11, 24)),
                            profile="t24-dfe")
    verification = verify(manifest, profile=profile)
    return profile, verification, [(e.entity, p) for e, p in verification.files()]


def test_a_mapped_profiles_bills_read_ahead_give_the_same_batches(tmp_path):
    """The reader process reads the related files (bills) in a thread while it waits for the
    loader: the batches, and the DPD derived from the bills, are those of reading in order."""
    from integrations.t24.mapping import ReadContext

    profile, verification, files = dfe_files(tmp_path)
    assert any(profile.entity_of(e) is None for e, _ in files)  # bills among the files
    results = []
    for read_ahead in (False, True):
        context = ReadContext(verification.manifest.business_date)
        with BatchReader(files, 7, read_ahead, profile, context) as reader:
            results.append([(b.entity, b.records, b.rows, b.data, b.contacts,
                             [q.reason for q in b.quarantined], b.totals.sums)
                            for entity, _ in files for b in reader.batches(entity)])
    assert results[0] == results[1]
    loans = b"".join(batch[3] for batch in results[1] if batch[0] == "loans")
    assert loans.count(b"\n") == sum(r[2] for r in results[1] if r[0] == "loans") > 0


def test_an_error_in_a_bills_file_read_ahead_is_raised_when_the_loader_reaches_it(tmp_path):
    from integrations.t24.mapping import ReadContext

    profile, verification, files = dfe_files(tmp_path)
    bills = next(p for e, p in files if e == "aa_bill_details")
    bills.write_text(bills.read_text(encoding="utf-8").splitlines()[0] + '\n"unclosed,1\n',
                     encoding="utf-8")
    context = ReadContext(verification.manifest.business_date)
    with BatchReader(files, 7, True, profile, context) as reader:
        before = [entity for entity, _ in files[:[e for e, _ in files].index("aa_bill_details")]]
        assert all(list(reader.batches(entity)) for entity in before)  # delivered, in order
        with pytest.raises(T24FormatError) as error:
            list(reader.batches("aa_bill_details"))
    assert error.value.source == bills.name and "invalid CSV" in error.value.reason
