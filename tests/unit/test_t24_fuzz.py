"""Whatever a record holds, the transforms answer a Row or a Quarantine item: they never raise."""

from __future__ import annotations

import os
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrations.fields import Quarantine, Row
from integrations.los.transform import transform_application
from integrations.t24.formats import ENTITIES
from integrations.t24.parser import RawRecord
from integrations.t24.transform import ENTITY_FIELDS, transform
from integrations.w4.transform import CARD_FIELDS, transform_card

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**30, max_value=10**30),
    st.floats(allow_nan=True), st.text(max_size=40),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from(["2026-02-30", "20261124", "1e999", "-0", "NaN", "Infinity", "12.345",
                     "0901234567", "VND", "OPEN", "ACTIVE", "spouse", "  ", "9" * 40]),
    st.just(Decimal("1E+30")), st.just(Decimal("-1E-30")),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=8)


def records(field_names):
    names = st.sampled_from(sorted(set(field_names) | {"phones", "addresses", "emails",
                                                         "referees", "collection_case"}))
    return st.dictionaries(st.one_of(names, st.text(max_size=8)), values, max_size=12)


FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(entity=st.sampled_from(ENTITIES), data=st.data())
def test_t24_transform_never_raises(entity, data):
    record = data.draw(records([f.name for f in ENTITY_FIELDS[entity]]))
    result = transform(RawRecord(entity, "f.jsonl", 1, 1, record))
    assert isinstance(result, Row | Quarantine)
    if isinstance(result, Quarantine):
        assert result.reason


@FUZZ
@given(record=st.one_of(records([f.name for f in CARD_FIELDS]), values))
def test_w4_transform_never_raises(record):
    assert isinstance(transform_card(record), Row | Quarantine)


@FUZZ
@given(record=st.one_of(records(["application_id", "customer_cif", "product_code", "status",
                                 "requested_amount", "application_date"]), values))
def test_los_transform_never_raises(record):
    assert isinstance(transform_application(record), Row | Quarantine)


VALID = {
    "customers": {"cif": "1", "name": "A", "phones": [{"number": "0901234567"}],
                  "addresses": [{"line1": "x"}], "emails": [{"address": "a@b.vn"}]},
    "reference_customers": {"ref_cif": "R1", "primary_cif": "1", "relationship_type": "spouse",
                            "name": "B"},
    "collaterals": {"collateral_number": "C1", "cif": "1", "type": "VEHICLE", "value": "1"},
    "loans": {"account_number": "L1", "cif": "1", "product_type": "P", "currency": "VND",
              "original_amount": "1", "outstanding": "1", "dpd": 0, "status": "OPEN"},
    "loan_collaterals": {"account_number": "L1", "collateral_number": "C1"},
}


@FUZZ
@given(entity=st.sampled_from(ENTITIES), data=st.data())
def test_one_bad_field_of_a_valid_record_is_a_quarantine_or_a_row(entity, data):
    names = [f.name for f in ENTITY_FIELDS[entity]] + (
        ["phones", "addresses", "emails"] if entity == "customers" else [])
    name = data.draw(st.sampled_from(names))
    record = {**VALID[entity], name: data.draw(values)}
    assert isinstance(transform(RawRecord(entity, "f.jsonl", 1, 1, VALID[entity])), Row)
    result = transform(RawRecord(entity, "f.jsonl", 1, 1, record))
    assert isinstance(result, Row | Quarantine)
    if isinstance(result, Row):
        for value in result.values.values():
            assert not isinstance(value, float)  # never a float, whatever came in
