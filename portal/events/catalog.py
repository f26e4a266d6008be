"""The event catalog: every event type of the bus, its version, aggregate and JSON Schema.

One place to read what each module announces. ``publish`` refuses a payload that does not match
its schema (``EventValidationError`` names the failing field). Payloads are JSON: money travels
as a decimal string (``"1500000.00"``), times as ISO 8601 strings, dates as ``YYYY-MM-DD``
(``publish`` converts ``Decimal``, ``datetime``, ``date`` and ``UUID`` values for you).

Changing a payload incompatibly means a new ``version``; extra fields are allowed so that
producers can add information without breaking subscribers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from portal.models.enums import (
    ACTION_SOURCES,
    AGENT_STATUS_SOURCES,
    AGENT_STATUSES,
    CALL_DIRECTIONS,
    INTEGRATIONS,
    PAYMENT_SOURCES,
    PROMISE_STATUSES,
    RUN_KINDS,
    RUN_STATUSES,
    SOURCE_SYSTEMS,
    VISIT_VERIFICATIONS,
)

# -- schema building blocks -------------------------------------------------------------------

STRING = {"type": "string", "minLength": 1, "maxLength": 200}
TEXT = {"type": "string", "maxLength": 4000}
ID = {"type": ["integer", "string"], "minLength": 1}
INT_ID = {"type": "integer", "minimum": 1}
COUNT = {"type": "integer", "minimum": 0}
MONEY = {"type": "string", "pattern": r"^-?[0-9]{1,16}(\.[0-9]{1,4})?$"}
CURRENCY = {"type": "string", "pattern": r"^[A-Z]{3}$"}
DATE = {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
DATETIME = {
    "type": "string",
    "pattern": (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"
                r"(Z|[+-][0-9]{2}:?[0-9]{2})$"),
}
LAT = {"type": "number", "minimum": -90, "maximum": 90}
LON = {"type": "number", "minimum": -180, "maximum": 180}
CHANGES = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": {
        "type": "object",
        "required": ["old", "new"],
        "properties": {"old": {}, "new": {}},
    },
}


def enum(values) -> dict:
    return {"type": "string", "enum": list(values)}


def nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(required: dict[str, dict], optional: dict[str, dict] | None = None) -> dict:
    """An object schema: ``required`` fields must be present; other fields are allowed."""
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }


# -- the catalog --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventType:
    name: str
    version: int
    aggregate_type: str
    aggregate_key: str  # payload field holding the aggregate id
    schema: dict
    description: str = ""
    producers: tuple[str, ...] = field(default_factory=tuple)

    @cached_property
    def validator(self) -> Draft202012Validator:
        """The reference validator: it decides, and names the failing field."""
        return Draft202012Validator(self.schema)

    @cached_property
    def fast_validator(self) -> jsonschema_rs.Draft202012Validator:
        """A compiled copy (~1 µs a payload against ~50 µs): a payload it passes is valid; one
        it fails goes to ``validator`` for the verdict and the field to name."""
        return jsonschema_rs.Draft202012Validator(self.schema)


def _types(*types: EventType) -> dict[str, EventType]:
    return {t.name: t for t in types}


_SYNC_CHANGE = {"source_system": enum(SOURCE_SYSTEMS), "changes": CHANGES}
_SYNC_OPTIONAL = {"integration_run_id": nullable(INT_ID), "significant": {"type": "boolean"},
                  # bank sync (integrations/changes.py): a new row, its business date, the
                  # reference person a CUSTOMER_UPDATED is about, "card" for a W4 card
                  "created": {"type": "boolean"}, "business_date": nullable(DATE),
                  "ref_cif": nullable(STRING), "product": nullable(STRING)}

CATALOG: dict[str, EventType] = _types(
    EventType(
        "CUSTOMER_UPDATED", 1, "customer", "cif",
        obj({"cif": STRING, **_SYNC_CHANGE}, _SYNC_OPTIONAL),
        "A customer's bank data changed (created or updated by a bank sync).",
        ("bank sync",),
    ),
    EventType(
        "LOAN_UPDATED", 1, "loan", "account_number",
        obj({"account_number": STRING, "cif": STRING, **_SYNC_CHANGE}, _SYNC_OPTIONAL),
        "A loan or card balance, DPD, bucket or status changed.",
        ("bank sync",),
    ),
    EventType(
        "COLLATERAL_UPDATED", 1, "collateral", "collateral_number",
        obj({"collateral_number": STRING, "cif": STRING, **_SYNC_CHANGE}, _SYNC_OPTIONAL),
        "A collateral's data or valuation changed.",
        ("bank sync",),
    ),
    EventType(
        "SYNC_COMPLETED", 1, "integration_run", "run_id",
        obj(
            {"run_id": INT_ID, "integration": enum(INTEGRATIONS), "kind": enum(RUN_KINDS),
             "status": enum(RUN_STATUSES)},
            {"business_date": nullable(DATE), "extracted": COUNT, "loaded": COUNT,
             "failed": COUNT, "full_refresh": {"type": "boolean"},
             "unchanged": COUNT, "events": COUNT, "cursor": nullable(STRING),
             "owner_moves": COUNT, "owner_moves_held": COUNT},
        ),
        "A bank synchronisation run finished (whatever its outcome).",
        ("bank sync",),
    ),
    EventType(
        "PRODUCT_OWNER_CHANGED", 1, "product", "product_key",
        obj(
            {"move_id": INT_ID, "product": enum(("loan", "card", "application")),
             "product_key": STRING, "old_cif": STRING, "new_cif": STRING,
             "source_system": enum(SOURCE_SYSTEMS)},
            {"integration_run_id": nullable(INT_ID), "decided_by_id": nullable(INT_ID),
             "held": {"type": "boolean"}, "moved_at": DATETIME},
        ),
        "A bank sync gave a loan, card or application to another customer (applied at the end "
        "of its run, or by ops after it was held).",
        ("bank sync", "ops"),
    ),
    EventType(
        "PAYMENT_RECEIVED", 1, "payment", "reference_number",
        obj(
            {"reference_number": STRING, "account_number": STRING, "cif": STRING,
             "amount": MONEY, "currency": CURRENCY, "paid_at": DATETIME},
            {"payment_id": nullable(INT_ID), "channel": nullable(STRING),
             "source": enum(PAYMENT_SOURCES)},
        ),
        "Money arrived on a loan or card.",
        ("payments",),
    ),
    EventType(
        "PAYMENT_FAILED", 1, "payment", "reference_number",
        obj(
            {"reference_number": STRING, "amount": MONEY, "currency": CURRENCY,
             "reason": STRING},
            {"payment_id": nullable(INT_ID), "account_number": nullable(STRING),
             "cif": nullable(STRING), "source": enum(PAYMENT_SOURCES)},
        ),
        "A payment attempt failed.",
        ("payments",),
    ),
    EventType(
        "PAYMENT_REVERSED", 1, "payment", "reference_number",
        obj(
            {"reference_number": STRING, "account_number": STRING, "cif": STRING,
             "amount": MONEY, "currency": CURRENCY},
            {"payment_id": nullable(INT_ID), "reason": nullable(TEXT),
             "reversed_at": nullable(DATETIME)},
        ),
        "A received payment was reversed (promise fulfilment is undone).",
        ("payments",),
    ),
    EventType(
        "CONTACT_UPDATED", 1, "customer", "cif",
        obj(
            {"cif": STRING, "contact_type": enum(("phone", "address", "email")),
             "operation": enum(("created", "updated", "deleted", "verified"))},
            {"contact_id": nullable(INT_ID), "ref_cif": nullable(STRING), "changes": CHANGES,
             "actor_id": nullable(INT_ID)},
        ),
        "An agent added, changed, verified or removed a phone, address or email.",
        ("case view",),
    ),
    EventType(
        "CALL_LOGGED", 1, "call", "call_id",
        obj(
            {"call_id": STRING, "direction": enum(CALL_DIRECTIONS), "started_at": DATETIME},
            {"cif": nullable(STRING), "agent_id": nullable(INT_ID), "phone": nullable(STRING),
             "answered_at": nullable(DATETIME), "ended_at": nullable(DATETIME),
             "duration_seconds": nullable(COUNT), "disposition": nullable(STRING),
             "action_id": nullable(INT_ID), "source": enum(ACTION_SOURCES)},
        ),
        "A call was made or received (from the call centre or entered by hand).",
        ("call centre",),
    ),
    EventType(
        "AGENT_STATUS_CHANGED", 1, "agent", "agent_id",
        obj(
            {"agent_id": INT_ID, "status": enum(AGENT_STATUSES), "since": DATETIME},
            {"previous_status": nullable(enum(AGENT_STATUSES)),
             "source": enum(AGENT_STATUS_SOURCES)},
        ),
        "An agent's availability changed.",
        ("call centre", "portal"),
    ),
    EventType(
        "PROMISE_CREATED", 1, "promise", "promise_id",
        obj(
            {"promise_id": INT_ID, "cif": STRING, "agent_id": INT_ID, "amount": MONEY,
             "promised_date": DATE},
            {"account_number": nullable(STRING), "action_id": nullable(INT_ID),
             "currency": CURRENCY, "supersedes": nullable(INT_ID)},
        ),
        "A customer promised to pay (``supersedes``: the pending promise it replaced).",
        ("workflow",),
    ),
    EventType(
        "PROMISE_KEPT", 1, "promise", "promise_id",
        obj(
            {"promise_id": INT_ID, "cif": STRING, "status": enum(("kept", "partially_kept")),
             "amount": MONEY, "paid_amount": MONEY},
            {"account_number": nullable(STRING), "agent_id": nullable(INT_ID),
             "payment_reference": nullable(STRING)},
        ),
        "Payments covered a promise fully or partly.",
        ("workflow",),
    ),
    EventType(
        "PROMISE_BROKEN", 1, "promise", "promise_id",
        obj(
            {"promise_id": INT_ID, "cif": STRING, "amount": MONEY, "promised_date": DATE,
             "paid_amount": MONEY},
            {"account_number": nullable(STRING), "agent_id": nullable(INT_ID),
             "previous_status": nullable(enum(PROMISE_STATUSES))},
        ),
        "A promise's date passed without enough payment.",
        ("workflow",),
    ),
    EventType(
        "VISIT_CHECKED_IN", 1, "visit", "visit_id",
        obj(
            {"visit_id": INT_ID, "cif": STRING, "agent_id": INT_ID, "checked_in_at": DATETIME},
            {"lat": nullable(LAT), "lon": nullable(LON),
             "distance_m": nullable({"type": "number", "minimum": 0}),
             "verification": enum(VISIT_VERIFICATIONS)},
        ),
        "A field agent checked in at a customer visit.",
        ("field",),
    ),
    EventType(
        "VISIT_VERIFIED", 1, "visit", "visit_id",
        obj(
            {"visit_id": INT_ID, "cif": STRING, "verification": enum(VISIT_VERIFICATIONS)},
            {"reviewer_id": nullable(INT_ID), "agent_id": nullable(INT_ID),
             "note": nullable(TEXT)},
        ),
        "A visit's location was verified (automatically or by a reviewer).",
        ("field",),
    ),
)

EVENT_TYPES: tuple[str, ...] = tuple(CATALOG)


class UnknownEventType(KeyError):
    pass


class EventValidationError(ValueError):
    """A payload that does not match its event type's schema. ``field`` is the failing path."""

    def __init__(self, event_type: str, field: str, message: str):
        self.event_type = event_type
        self.field = field
        self.reason = message
        super().__init__(f"{event_type} payload is invalid at '{field}': {message}")


def get_event_type(name: str) -> EventType:
    try:
        return CATALOG[name]
    except KeyError:
        raise UnknownEventType(f"unknown event type {name!r}") from None


def _field_path(error) -> str:
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [p for p in error.validator_value if p not in error.instance]
        if missing:
            path.append(str(missing[0]))
    return ".".join(path) or "(payload)"


def validate_payload(name: str, payload: Any) -> EventType:
    """Check ``payload`` against the schema of event type ``name``; raise naming the field."""
    event_type = get_event_type(name)
    if event_type.fast_validator.is_valid(payload):
        return event_type
    error = best_match(event_type.validator.iter_errors(payload))
    if error is not None:
        raise EventValidationError(name, _field_path(error), error.message)
    return event_type
