"""A segment's conditions are data — ``{"field": ..., "op": ..., "value": ...}`` — and this
module is the one place that turns them into SQL: ``compile_conditions`` over a whitelist of
fields (``FIELDS``, columns of the account facts, portal.strategies.facts) and operators. A
value never becomes SQL text: it is a bound parameter. Nothing a user types reaches the query
but through ``FIELDS`` and ``OPERATORS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from flask_babel import lazy_gettext as _l

from portal.labels import label
from portal.models.enums import BUCKET_NAMES, CASE_STATUSES
from portal.money import format_money, parse_money


class ConditionError(ValueError):
    """A condition that cannot be compiled: unknown field or operator, or a bad value."""

    def __init__(self, message: str, part: str = "value"):
        super().__init__(message)
        self.part = part  # field | op | value: which input the message belongs to


@dataclass(frozen=True)
class Field:
    name: str
    label: object  # a lazy msgid
    kind: str  # int | money | text | choice | bool
    operators: tuple[str, ...]
    choices: tuple[str, ...] = ()


NUMBER_OPS = ("eq", "ne", "lt", "le", "gt", "ge")
TEXT_OPS = ("eq", "ne", "in", "not_in")

OPERATORS = {
    "eq": ("=", _l("is")), "ne": ("<>", _l("is not")), "lt": ("<", _l("less than")),
    "le": ("<=", _l("at most")), "gt": (">", _l("more than")), "ge": (">=", _l("at least")),
    "in": ("IN", _l("one of")), "not_in": ("NOT IN", _l("none of")),
}

# column of the account facts → what a supervisor may ask of it
FIELDS: dict[str, Field] = {f.name: f for f in (
    Field("dpd", _l("Days past due (negative: days before the due date)"), "int", NUMBER_OPS),
    Field("bucket", _l("DPD bucket"), "choice", TEXT_OPS, BUCKET_NAMES),
    Field("product", _l("Product"), "text", TEXT_OPS),
    Field("outstanding", _l("Outstanding amount"), "money", NUMBER_OPS),
    Field("overdue", _l("Overdue amount"), "money", NUMBER_OPS),
    Field("customer_segment", _l("Customer segment"), "text", TEXT_OPS),
    Field("region", _l("Region (province)"), "text", TEXT_OPS),
    Field("case_status", _l("Case status"), "choice", TEXT_OPS, CASE_STATUSES),
    Field("processing_state", _l("Processing state"), "text", TEXT_OPS),
    Field("customer_status", _l("Customer status (code)"), "text", TEXT_OPS),
    Field("promise_pending", _l("Has a pending promise"), "bool", ("eq",)),
    Field("broken_promises_90d", _l("Broken promises, last 90 days"), "int", NUMBER_OPS),
    Field("plan_active", _l("Has an active payment plan"), "bool", ("eq",)),
    Field("plans_broken", _l("Broken payment plans"), "int", NUMBER_OPS),
    Field("last_contact_days", _l("Days since the last contact (never: 9999)"), "int",
          NUMBER_OPS),
)}

MAX_CONDITIONS = 12
MAX_LIST = 50
MAX_TEXT = 60


def parse_value(field: Field, op: str, raw) -> object:
    """The typed value of ``raw`` for ``field`` and ``op`` (a list for in / not_in)."""
    if op in ("in", "not_in"):
        items = raw if isinstance(raw, list) else [p for p in str(raw or "").split(",")]
        items = [str(p).strip() for p in items if str(p).strip()]
        if not items:
            raise ConditionError(str(_l("Give at least one value, separated by commas.")))
        if len(items) > MAX_LIST:
            raise ConditionError(str(_l("At most %(max)s values.", max=MAX_LIST)))
        return [_scalar(field, p) for p in items]
    return _scalar(field, raw)


def _scalar(field: Field, raw) -> object:
    text = str(raw if raw is not None else "").strip()
    if field.kind == "bool":
        if text.lower() in ("true", "1", "yes", "on"):
            return True
        if text.lower() in ("false", "0", "no", "off"):
            return False
        raise ConditionError(str(_l("Choose yes or no.")))
    if field.kind == "int":
        try:
            value = int(text)
        except ValueError:
            raise ConditionError(str(_l("Enter a whole number."))) from None
        if abs(value) > 100_000:
            raise ConditionError(str(_l("Enter a whole number."))) from None
        return value
    if field.kind == "money":
        try:
            value = parse_money(text) if not isinstance(raw, Decimal) else raw
        except ValueError as exc:
            raise ConditionError(str(exc)) from None
        if value is None:
            raise ConditionError(str(_l("Enter an amount.")))
        return str(value)  # JSON keeps it exact; bound as numeric
    if not text or len(text) > MAX_TEXT:
        raise ConditionError(str(_l("Enter a value (at most %(max)s characters).",
                                    max=MAX_TEXT)))
    if field.choices and text not in field.choices:
        raise ConditionError(str(_l("Choose one of: %(values)s.",
                                    values=", ".join(field.choices))))
    return text


def validate(condition: dict) -> dict:
    """A condition as stored: ``{"field", "op", "value"}`` with the value typed. Raises
    ConditionError."""
    if not isinstance(condition, dict):
        raise ConditionError(str(_l("Choose a field.")), "field")
    field = FIELDS.get(str(condition.get("field") or ""))
    if field is None:
        raise ConditionError(str(_l("Choose a field.")), "field")
    op = str(condition.get("op") or "")
    if op not in field.operators:
        raise ConditionError(str(_l("Choose how to compare.")), "op")
    return {"field": field.name, "op": op, "value": parse_value(field, op, condition.get("value"))}


def compile_conditions(conditions: list[dict], params: dict, prefix: str,
                       facts: str = "f") -> str:
    """THE compiler: the SQL boolean over the facts alias ``facts`` that holds when every
    condition does (``TRUE`` for none). Values are added to ``params`` under names starting
    with ``prefix``; only whitelisted field names and operators become SQL text."""
    if len(conditions) > MAX_CONDITIONS:
        raise ConditionError(str(_l("At most %(max)s conditions.", max=MAX_CONDITIONS)))
    parts = []
    for index, raw in enumerate(conditions):
        condition = validate(raw)
        field = FIELDS[condition["field"]]
        sql_op = OPERATORS[condition["op"]][0]
        column = f"{facts}.{field.name}"
        name = f"{prefix}_{index}"
        cast = {"int": "int", "money": "numeric", "bool": "boolean"}.get(field.kind, "text")
        if condition["op"] in ("in", "not_in"):
            params[name] = [str(v) for v in condition["value"]]
            parts.append(f"({column} {'<>' if sql_op == 'NOT IN' else '='} "
                         f"{'ALL' if sql_op == 'NOT IN' else 'ANY'}"
                         f"(CAST(:{name} AS {cast}[])))")
        else:
            params[name] = condition["value"] if field.kind != "money" else Decimal(
                condition["value"])
            parts.append(f"({column} {sql_op} CAST(:{name} AS {cast}))")
    return "(" + " AND ".join(parts) + ")" if parts else "TRUE"


def describe(condition: dict) -> str:
    """A condition in words (the strategy page)."""
    field = FIELDS.get(condition.get("field"))
    if field is None:
        return "?"
    op = OPERATORS.get(condition.get("op"), ("", ""))[1]
    value = condition.get("value")
    if field.kind == "money" and not isinstance(value, list):
        value = format_money(Decimal(str(value)))
    if field.name == "case_status":  # a code of the product's: its words
        value = [label(v) for v in value] if isinstance(value, list) else label(value)
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    elif isinstance(value, bool):
        value = str(_l("yes")) if value else str(_l("no"))
    return f"{field.label} {op} {value}"
