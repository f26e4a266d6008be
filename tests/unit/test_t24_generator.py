"""The T24 sandbox generator: deterministic days, deltas consistent with full files, faults."""

from __future__ import annotations

import json
from datetime import date

import pytest

from integrations.sandbox.t24_files import SeedSource, generate_day, record_key
from integrations.t24.manifest import Manifest, verify
from integrations.t24.parser import read_records

BASE = date(2026, 11, 24)


@pytest.fixture(scope="module")
def source():
    return SeedSource(80, 120, business_date=BASE)


def load(manifest_path):
    result = verify(manifest_path)
    assert result.ok, result.errors
    return {entry.entity: {record_key(entry.entity, r.data): r.data
                           for r in read_records(path, entry.entity)}
            for entry, path in result.files()}


def test_the_same_day_is_generated_identically(tmp_path, source):
    one = Manifest.load(generate_day(tmp_path / "a", source, day=2, new_customers=3))
    two = Manifest.load(generate_day(tmp_path / "b", source, day=2, new_customers=3))
    assert [f.sha256 for f in one.files] == [f.sha256 for f in two.files]


def test_the_files_hold_the_demo_generators_portfolio(tmp_path, source):
    day0 = load(generate_day(tmp_path, source))
    assert len(day0["customers"]) == 80
    customer = day0["customers"]["10000000"]
    assert customer["name"] and customer["phones"][0]["number"].startswith("0")
    links = day0["loan_collaterals"].values()
    assert all(link["account_number"] in day0["loans"] for link in links)
    assert all(link["collateral_number"] in day0["collaterals"] for link in links)
    assert all(loan["cif"] in day0["customers"] for loan in day0["loans"].values())


def test_a_delta_holds_exactly_what_changed_between_two_full_days(tmp_path, source):
    kwargs = {"change_rate": 0.2, "new_customers": 4}
    full1 = load(generate_day(tmp_path / "f1", source, day=1, **kwargs))
    full2 = load(generate_day(tmp_path / "f2", source, day=2, **kwargs))
    delta2_path = generate_day(tmp_path / "d2", source, day=2, mode="delta", **kwargs)
    assert Manifest.load(delta2_path).mode == "delta"
    delta2 = load(delta2_path)
    for entity, records in full2.items():
        changed = {k for k, r in records.items() if full1[entity].get(k) != r}
        # T24 sends what it touched that day: every change, and now and then a record whose
        # new values happen to equal the old ones (the loader must see that nothing changed).
        assert changed <= set(delta2[entity]), entity
        for key, record in delta2[entity].items():
            assert record == records[key]
        touched_unchanged = set(delta2[entity]) - changed
        assert len(touched_unchanged) <= max(3, len(changed) // 3), entity
    assert delta2["loans"] and len(delta2["loans"]) < len(full2["loans"])
    new = set(full2["customers"]) - set(full1["customers"])
    assert len(new) == 4 and new <= set(delta2["customers"])


def test_a_loan_can_be_paid_off_in_a_delta(tmp_path, source):
    delta = load(generate_day(tmp_path, source, day=1, mode="delta", change_rate=1.0))
    statuses = {loan["status"] for loan in delta["loans"].values()}
    assert "CLOSED" in statuses
    closed = [loan for loan in delta["loans"].values() if loan["close_date"] == "2026-11-25"]
    assert closed and all(loan["outstanding"] == "0" for loan in closed)


def test_full_omit_rate_drops_loans_from_later_full_files_only(tmp_path, source):
    day0 = load(generate_day(tmp_path / "0", source, full_omit_rate=0.3))
    day1 = load(generate_day(tmp_path / "1", source, day=1, full_omit_rate=0.3))
    missing = set(day0["loans"]) - set(day1["loans"])
    assert 0 < len(missing) < len(day0["loans"])


def test_the_xml_and_json_sets_hold_the_same_records(tmp_path, source):
    jsonl = load(generate_day(tmp_path / "l", source, day=1))
    array = load(generate_day(tmp_path / "a", source, day=1, fmt="json"))
    assert jsonl == array
    xml = load(generate_day(tmp_path / "x", source, day=1, fmt="xml"))
    assert set(xml["loans"]) == set(jsonl["loans"])
    key = next(iter(jsonl["loans"]))
    assert xml["loans"][key]["outstanding"] == jsonl["loans"][key]["outstanding"]
    assert str(xml["loans"][key]["dpd"]) == str(jsonl["loans"][key]["dpd"])


def test_a_delta_of_day_zero_is_refused(tmp_path, source):
    with pytest.raises(ValueError, match="day 0"):
        generate_day(tmp_path, source, mode="delta")


def test_the_command_line(tmp_path, capsys):
    from integrations.sandbox.t24_files import main

    assert main(["--out", str(tmp_path), "--customers", "20", "--products", "30",
                 "--base-date", "2026-11-24", "--format", "xml", "--wrong-count", "loans"]) == 0
    assert "t24_manifest_20261124.json (full)" in capsys.readouterr().out
    result = verify(tmp_path / "t24_manifest_20261124.json")
    assert [c.entry.entity for c in result.checks if not c.ok] == ["loans"]
    assert json.loads((tmp_path / "t24_manifest_20261124.json").read_text())["mode"] == "full"
