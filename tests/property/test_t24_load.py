"""The T24 loader against real PostgreSQL, fed the generator's set with hostile values planted
in a few records: the load never fails for a bad record; every record is accounted for once
(loaded, unchanged or quarantined with a reason); the good neighbours are in the database."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integrations.sandbox.t24_files import SeedSource, record_key
from integrations.t24.formats import ENTITIES, NATURAL_KEYS, manifest_name
from integrations.t24.load import load_set
from integrations.t24.manifest import FileEntry, Manifest, sha256_file, verify
from tests.integration.sync_helpers import truncate_bank_data
from tests.property.conftest import examples
from tests.property.strategies import UNSTORABLE, hostile_values

BASE = date(2026, 11, 24)
# which entity's keys each entity's records point to (a poisoned target takes its dependants)
DEPENDS = {"reference_customers": (("primary_cif", "customers"),),
           "collaterals": (("cif", "customers"),), "loans": (("cif", "customers"),),
           "loan_collaterals": (("account_number", "loans"),
                                ("collateral_number", "collaterals"))}
FIELDS = {"customers": ("name", "national_id", "date_of_birth", "segment", "phones", "emails"),
          "reference_customers": ("name", "relationship_type", "national_id"),
          "collaterals": ("value", "description", "valuation_date", "vehicle_year"),
          "loans": ("outstanding", "dpd", "product_type", "next_payment_date", "status",
                    "interest_rate"),
          "loan_collaterals": ("collateral_number",)}


@pytest.fixture(scope="module")
def seed_records():
    records: dict[str, list[dict]] = {e: [] for e in ENTITIES}
    for entity, record in SeedSource(6, 9, business_date=BASE).records():
        records[entity].append(record)
    return records


def write_jsonl(directory, records_by_entity) -> Manifest:
    """JSON Lines written with ASCII escapes, so that any str (lone surrogates included) can be
    written, as a sender's JSON encoder would."""
    entries = []
    for entity, records in records_by_entity.items():
        path = directory / f"t24_{entity}_{BASE:%Y%m%d}.jsonl"
        path.write_text("".join(json.dumps(r, default=str) + "\n" for r in records),
                        encoding="ascii")
        digest, size = sha256_file(path)
        entries.append(FileEntry(entity, path.name, len(records), digest, "jsonl", size))
    manifest = Manifest(BASE, "delta", entries)
    manifest.write(directory / manifest_name(BASE))
    return manifest


poison = st.tuples(st.sampled_from(ENTITIES), st.integers(0, 10), st.data())


@examples(0.3)
@given(plants=st.lists(poison, min_size=1, max_size=4))
def test_hostile_values_are_quarantined_and_the_good_neighbours_load(pg, tmp_path, seed_records,
                                                                     plants):
    truncate_bank_data(pg)
    records = copy.deepcopy(seed_records)
    keys = {e: [record_key(e, r) for r in seed_records[e]] for e in ENTITIES}  # before planting
    suspects: dict[str, set[str]] = {e: set() for e in ENTITIES}
    for entity, index, data in plants:
        record = records[entity][index % len(records[entity])]
        suspects[entity].add(keys[entity][index % len(records[entity])])
        record[data.draw(st.sampled_from(FIELDS[entity]))] = data.draw(hostile_values)
    for entity in ENTITIES:  # what points to a suspect is a suspect (load order)
        for key, original in zip(keys[entity], seed_records[entity], strict=True):
            if any(original[column] in suspects[target] for column, target in
                   DEPENDS.get(entity, ())):
                suspects[entity].add(key)
    directory = tmp_path / uuid.uuid4().hex[:12]
    directory.mkdir()
    write_jsonl(directory, records)
    verification = verify(directory / manifest_name(BASE))
    assert verification.ok, verification.errors

    result = load_set(pg, verification, batch_size=4)  # must not raise

    assert result.status in ("succeeded", "partial"), result.errors
    quarantined = pg.execute("SELECT entity, reason, record_key FROM quarantined_records "
                             "WHERE run_id = %s", (result.run_id,)).fetchall()
    assert len(quarantined) == sum(e.quarantined for e in result.entities.values())
    assert all(reason for _, reason, _ in quarantined)
    for entity, counts in result.entities.items():
        assert counts.extracted == len(records[entity])
        assert counts.extracted == (counts.inserted + counts.updated + counts.unchanged
                                    + counts.quarantined), entity
    # quarantined records are only planted ones (or those pointing to one)
    for entity, _reason, key in quarantined:
        assert key is None or key in suspects[entity] or not any(
            key == k for k in keys[entity]), (entity, key, _reason)
    # and every good neighbour is in the database
    for entity in ENTITIES:
        cols = NATURAL_KEYS[entity]
        stored = {"|".join(str(v) for v in row) for row in pg.execute(
            f"SELECT {', '.join(cols)} FROM {entity}").fetchall()}  # noqa: S608
        good = set(keys[entity]) - suspects[entity]
        assert good <= stored, (entity, good - stored)


def test_a_nul_or_a_lone_surrogate_quarantines_its_record_only(pg, tmp_path, seed_records):
    failures = []
    for n, (value, where) in enumerate((v, w) for v in UNSTORABLE for w in ("name", "payload")):
        truncate_bank_data(pg)
        records = copy.deepcopy(seed_records)
        victim = records["customers"][0]
        if where == "name":
            victim["name"] = value  # to_str accepts it: the row reaches COPY
        else:
            victim["date_of_birth"] = {value: value}  # quarantined: the payload reaches JSONB
        directory = tmp_path / str(n)
        directory.mkdir()
        write_jsonl(directory, records)
        try:
            result = load_set(pg, verify(directory / manifest_name(BASE)), batch_size=4)
        except Exception as exc:  # noqa: BLE001 - collected: every case is reported
            failures.append((value, where, type(exc).__name__))
            continue
        if result.entities["customers"].quarantined != 1:
            failures.append((value, where, "not quarantined"))
    assert not failures, failures
