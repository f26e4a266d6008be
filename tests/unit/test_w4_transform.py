"""W4 card records -> cards columns."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from integrations.fields import Quarantine, Row
from integrations.w4.transform import transform_card

CARD = {
    "contract_number": "W4C000000001", "client_cif": "10000001",
    "card_mask": "4221 51** **** 1234", "product_code": "VISA_GOLD", "currency": "VND",
    "credit_limit": "50000000", "total_balance": "48000000", "min_amount_due": "2400000",
    "payment_due_date": "2026-10-20", "days_past_due": 35, "contract_status": "BLOCKED",
    "collection_case": {"case_id": "W4CS00000001", "status": "IN_COLLECTION"},
    "updated_at": "2026-11-23T10:00:00Z",
}


def test_a_card_maps_to_columns():
    row = transform_card(CARD, source="page 1", number=3)
    assert isinstance(row, Row) and row.key == "W4C000000001"
    v = row.values
    assert v["cif"] == "10000001" and v["masked_card_number"] == "4221 51** **** 1234"
    assert v["outstanding"] == Decimal("48000000.00") and v["min_due"] == Decimal("2400000.00")
    assert v["due_date"] == date(2026, 10, 20)
    assert (v["days_overdue"], v["bucket"], v["status"]) == (35, "31-60", "BLOCKED")
    assert (v["w4_case_id"], v["w4_case_status"]) == ("W4CS00000001", "IN_COLLECTION")
    assert v["source_system"] == "W4"


def test_a_card_without_a_collection_case():
    row = transform_card({**CARD, "collection_case": None, "days_past_due": 0})
    assert row.values["w4_case_id"] is None and row.values["bucket"] == "current"


@pytest.mark.parametrize("change, reason", [
    ({"card_mask": "4221510000001234"}, "full PAN"),
    ({"days_past_due": "n/a"}, "days_past_due"),
    ({"client_cif": None}, "client_cif: required"),
    ({"total_balance": 1.5}, "floating point"),
    ({"contract_status": "LOST"}, "contract_status"),
    ({"collection_case": {"status": "OPEN"}}, "collection_case.case_id: required"),
    ({"collection_case": "OPEN"}, "collection_case"),
])
def test_a_bad_card_is_quarantined(change, reason):
    result = transform_card({**CARD, **change}, source="page 2", number=5)
    assert isinstance(result, Quarantine) and reason in result.reason
    assert (result.entity, result.record_key, result.record_number) == ("cards",
                                                                        "W4C000000001", 5)
    assert result.payload["product_code"] == "VISA_GOLD"


def test_a_record_that_is_not_an_object_is_quarantined():
    result = transform_card(["not", "a", "card"])
    assert isinstance(result, Quarantine) and result.raw
