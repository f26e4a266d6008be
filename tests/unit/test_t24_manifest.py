"""Manifest verification: checksums and counts are checked before anything is loaded, and any
contradiction rejects the set whole."""

from __future__ import annotations

import json
from datetime import date

import pytest

from integrations.sandbox.t24_files import SeedSource, T24Faults, generate_day
from integrations.t24.formats import ENTITIES
from integrations.t24.manifest import Manifest, ManifestError, verify

BASE = date(2026, 11, 24)


@pytest.fixture(scope="module")
def source():
    return SeedSource(60, 90, business_date=BASE)


def snapshot(directory):
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in directory.iterdir()}


@pytest.mark.parametrize("fmt", ["jsonl", "json", "xml"])
def test_a_generated_set_verifies(tmp_path, source, fmt):
    manifest_path = generate_day(tmp_path, source, fmt=fmt)
    result = verify(manifest_path)
    assert result.ok, result.errors
    manifest = result.manifest
    assert manifest.mode == "full" and manifest.business_date == BASE
    assert [entry.entity for entry, _ in result.files()] == list(ENTITIES)
    for check in result.checks:
        assert check.records == check.entry.records > 0
        assert check.sha256 == check.entry.sha256
    assert manifest.entry("loans").control_totals["outstanding"] > 0


@pytest.mark.parametrize("faults, entity, message", [
    (T24Faults(wrong_count=("loans",)), "loans", "records, manifest says"),
    (T24Faults(bad_checksum=("customers",)), "customers", "does not match"),
    (T24Faults(half_written=("collaterals",)), "collaterals", "size"),
    (T24Faults(missing=("loan_collaterals",)), "loan_collaterals", "missing"),
])
def test_a_contradicting_file_rejects_the_set_and_nothing_is_touched(tmp_path, source, faults,
                                                                      entity, message):
    manifest_path = generate_day(tmp_path, source, faults=faults)
    before = snapshot(tmp_path)
    result = verify(manifest_path)
    assert not result.ok
    assert snapshot(tmp_path) == before  # verification writes nothing
    bad = [c for c in result.checks if not c.ok]
    assert [c.entry.entity for c in bad] == [entity]
    assert message in " ".join(bad[0].problems)
    assert any(entity in error for error in result.errors)


def test_a_tampered_byte_is_caught(tmp_path, source):
    manifest_path = generate_day(tmp_path, source)
    loans = next(tmp_path.glob("t24_loans_*.jsonl"))
    data = bytearray(loans.read_bytes())
    data[data.index(b'"dpd": ') + 7] ^= 1  # one digit of one dpd changes
    loans.write_bytes(bytes(data))
    result = verify(manifest_path)
    assert not result.ok
    assert "sha256" in result.errors[0]


def test_an_xml_file_with_an_external_entity_is_rejected(tmp_path, source):
    manifest_path = generate_day(tmp_path, source, fmt="xml",
                                 faults=T24Faults(xml_external_entity=("customers",)))
    result = verify(manifest_path)
    assert not result.ok
    (check,) = [c for c in result.checks if not c.ok]
    assert check.entry.entity == "customers"
    assert "forbidden XML construct" in check.problems[0]


def _rewrite(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(mode="sometimes"), "mode"),
    (lambda d: d.update(system="W4"), "system"),
    (lambda d: d["files"][0].update(name="../../etc/passwd"), "name"),
    (lambda d: d["files"][0].update(sha256="abc"), "sha256"),
    (lambda d: d["files"][1].update(entity=d["files"][0]["entity"]), "listed twice"),
    (lambda d: d.update(business_date="2026-11-25"), "contradicts the file name"),
    (lambda d: d["files"][0].update(records=-1), "records"),
])
def test_an_invalid_manifest_is_refused(tmp_path, source, change, message):
    manifest_path = generate_day(tmp_path, source)
    _rewrite(manifest_path, change)
    with pytest.raises(ManifestError, match=message):
        Manifest.load(manifest_path)
    result = verify(manifest_path)
    assert not result.ok and result.manifest is None
    assert message in result.errors[0]


def test_a_manifest_that_is_not_json_is_refused(tmp_path):
    path = tmp_path / "t24_manifest_20261124.json"
    path.write_text("{not json", encoding="utf-8")
    result = verify(path)
    assert not result.ok and "cannot read manifest" in result.errors[0]


def test_manifest_round_trip(tmp_path, source):
    manifest_path = generate_day(tmp_path, source, mode="full", fmt={"loans": "xml"})
    manifest = Manifest.load(manifest_path)
    assert manifest.entry("loans").format == "xml"
    assert manifest.entry("customers").format == "jsonl"
    again = tmp_path / "copy" / manifest_path.name
    again.parent.mkdir()
    manifest.write(again)
    assert Manifest.load(again).to_json() == manifest.to_json()
