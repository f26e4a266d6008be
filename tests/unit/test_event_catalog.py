"""The event catalog: every event type of DESIGN.md §4, each with a version and a valid schema
that accepts a realistic payload and refuses a wrong one naming the field."""

from __future__ import annotations

from decimal import Decimal

import pytest
from jsonschema import Draft202012Validator

from portal.events.catalog import CATALOG, EventValidationError, UnknownEventType, validate_payload
from portal.events.publish import to_json

DESIGN_EVENTS = {
    "CUSTOMER_UPDATED", "LOAN_UPDATED", "COLLATERAL_UPDATED", "SYNC_COMPLETED",
    "PAYMENT_RECEIVED", "PAYMENT_FAILED", "PAYMENT_REVERSED", "CONTACT_UPDATED",
    "CALL_LOGGED", "AGENT_STATUS_CHANGED", "PROMISE_CREATED", "PROMISE_KEPT",
    "PROMISE_BROKEN", "VISIT_CHECKED_IN", "VISIT_VERIFIED",
    "PRODUCT_OWNER_CHANGED",  # issue 19: a product a bank sync gives another customer
}

CHANGES = {"dpd": {"old": 3, "new": 4}}
EXAMPLES = {
    "CUSTOMER_UPDATED": {"cif": "C1", "source_system": "T24", "changes": CHANGES},
    "LOAN_UPDATED": {"account_number": "LN1", "cif": "C1", "source_system": "W4",
                     "changes": CHANGES, "integration_run_id": 5},
    "COLLATERAL_UPDATED": {"collateral_number": "COL1", "cif": "C1", "source_system": "T24",
                           "changes": CHANGES},
    "SYNC_COMPLETED": {"run_id": 9, "integration": "T24", "kind": "sync",
                       "status": "succeeded", "business_date": "2026-01-05", "loaded": 10},
    "PAYMENT_RECEIVED": {"reference_number": "FT1", "account_number": "LN1", "cif": "C1",
                         "amount": "1500000.00", "currency": "VND",
                         "paid_at": "2026-01-05T09:00:00+07:00", "source": "webhook"},
    "PAYMENT_FAILED": {"reference_number": "FT2", "amount": "10.5", "currency": "VND",
                       "reason": "insufficient funds"},
    "PAYMENT_REVERSED": {"reference_number": "FT1", "account_number": "LN1", "cif": "C1",
                         "amount": "1500000", "currency": "VND"},
    "CONTACT_UPDATED": {"cif": "C1", "contact_type": "phone", "operation": "verified",
                        "contact_id": 3, "actor_id": 2},
    "CALL_LOGGED": {"call_id": "CALL-1", "direction": "outbound",
                    "started_at": "2026-01-05T02:00:00Z", "duration_seconds": 65},
    "AGENT_STATUS_CHANGED": {"agent_id": 2, "status": "on_call",
                             "since": "2026-01-05T02:00:00Z", "source": "cti"},
    "PROMISE_CREATED": {"promise_id": 1, "cif": "C1", "agent_id": 2, "amount": "500000",
                        "promised_date": "2026-01-10"},
    "PROMISE_KEPT": {"promise_id": 1, "cif": "C1", "status": "partially_kept",
                     "amount": "500000", "paid_amount": "200000"},
    "PROMISE_BROKEN": {"promise_id": 1, "cif": "C1", "amount": "500000",
                       "promised_date": "2026-01-10", "paid_amount": "0"},
    "VISIT_CHECKED_IN": {"visit_id": 1, "cif": "C1", "agent_id": 2,
                         "checked_in_at": "2026-01-05T02:00:00Z", "lat": 10.77, "lon": 106.7},
    "VISIT_VERIFIED": {"visit_id": 1, "cif": "C1", "verification": "manual_approved",
                       "reviewer_id": 4},
    "PRODUCT_OWNER_CHANGED": {"move_id": 7, "product": "card", "product_key": "W4C1",
                              "old_cif": "C1", "new_cif": "C2", "source_system": "W4",
                              "integration_run_id": 5, "held": False,
                              "moved_at": "2026-01-05T02:00:00.000000Z"},
}


def test_catalog_declares_every_design_event():
    assert set(CATALOG) == DESIGN_EVENTS


@pytest.mark.parametrize("name", sorted(DESIGN_EVENTS))
def test_each_type_has_version_schema_and_aggregate(name):
    event_type = CATALOG[name]
    assert event_type.name == name
    assert isinstance(event_type.version, int) and event_type.version >= 1
    Draft202012Validator.check_schema(event_type.schema)
    assert event_type.aggregate_key in event_type.schema["required"]
    assert event_type.aggregate_type and event_type.description


@pytest.mark.parametrize("name", sorted(DESIGN_EVENTS))
def test_realistic_payload_is_accepted(name):
    assert validate_payload(name, EXAMPLES[name]) is CATALOG[name]


@pytest.mark.parametrize("name", sorted(DESIGN_EVENTS))
def test_missing_aggregate_field_is_named(name):
    key = CATALOG[name].aggregate_key
    payload = {k: v for k, v in EXAMPLES[name].items() if k != key}
    with pytest.raises(EventValidationError) as info:
        validate_payload(name, payload)
    assert info.value.field == key
    assert f"'{key}'" in str(info.value) and name in str(info.value)


@pytest.mark.parametrize(
    ("name", "patch", "field"),
    [
        ("PAYMENT_RECEIVED", {"amount": 1500000.0}, "amount"),
        ("PAYMENT_RECEIVED", {"amount": "15,000"}, "amount"),
        ("PAYMENT_RECEIVED", {"currency": "vnd"}, "currency"),
        ("PAYMENT_RECEIVED", {"paid_at": "yesterday"}, "paid_at"),
        ("LOAN_UPDATED", {"changes": {}}, "changes"),
        ("LOAN_UPDATED", {"changes": {"dpd": {"new": 4}}}, "changes.dpd.old"),
        ("AGENT_STATUS_CHANGED", {"status": "asleep"}, "status"),
        ("VISIT_CHECKED_IN", {"lat": 123.0}, "lat"),
        ("PROMISE_CREATED", {"promised_date": "10/01/2026"}, "promised_date"),
        ("SYNC_COMPLETED", {"run_id": 0}, "run_id"),
    ],
)
def test_wrong_field_is_named(name, patch, field):
    with pytest.raises(EventValidationError) as info:
        validate_payload(name, {**EXAMPLES[name], **patch})
    assert info.value.field == field


def test_payload_must_be_an_object():
    with pytest.raises(EventValidationError) as info:
        validate_payload("LOAN_UPDATED", ["not", "an", "object"])
    assert info.value.field == "(payload)"


def test_unknown_type():
    with pytest.raises(UnknownEventType):
        validate_payload("LOAN_DELETED", {})


def test_to_json_converts_python_values():
    from datetime import UTC, date, datetime
    from uuid import UUID

    out = to_json({"a": Decimal("1.50"), "d": date(2026, 1, 5),
                   "t": datetime(2026, 1, 5, 1, 2, 3, tzinfo=UTC),
                   "u": UUID("12345678123456781234567812345678")})
    assert out == {"a": "1.50", "d": "2026-01-05", "t": "2026-01-05T01:02:03+00:00",
                   "u": "12345678-1234-5678-1234-567812345678"}
    with pytest.raises(TypeError):
        to_json({"x": object()})


# -- the compiled validator must never pass what the reference validator refuses ----------------

MUTATIONS = [None, True, 0, -1, 1.5, "", "x", "1500000.00", "2026-01-05", "2026-01-05\n",
             "2026-01-05T09:00:00+07:00", "٢٠٢٦-٠١-٠٥", "VND", "vnd", [], {}, {"old": 1},
             {"dpd": {"old": 1, "new": 2}}, "9" * 17]


@pytest.mark.parametrize("name", sorted(DESIGN_EVENTS))
def test_compiled_validator_agrees_with_the_reference(name):
    event_type = CATALOG[name]
    payloads = [EXAMPLES[name], {}, [], "x"]
    for key in set(EXAMPLES[name]) | set(event_type.schema.get("properties", {})):
        payloads += [{**EXAMPLES[name], key: value} for value in MUTATIONS]
        payloads.append({k: v for k, v in EXAMPLES[name].items() if k != key})
    verdicts = [(event_type.fast_validator.is_valid(p), event_type.validator.is_valid(p))
                for p in payloads]
    # they differ only where Python's ``$`` also matches before a final newline (the compiled
    # one refuses, and the reference is then asked, so its verdict stands)
    differ = [p for p, (fast, ref) in zip(payloads, verdicts, strict=True) if fast != ref]
    assert all(not fast or ref for fast, ref in verdicts), differ
    assert all("2026-01-05\n" in p.values() for p in differ), differ
    assert sum(ref for _, ref in verdicts) >= 1 and sum(not ref for _, ref in verdicts) >= 1
