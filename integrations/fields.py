"""Field converters shared by the bank-system adapters (T24 files, W4 and LOS pages): each turns
one field's value, as a JSON type or as a string (XML), into a typed column value — ``str``,
``int``, ``bool``, ``date``, ``Decimal``, never float — or raises :class:`Invalid`, whose message
is the quarantine reason. A record's fields are listed as :class:`Field` specs and converted with
:func:`convert_fields`; a record becomes a :class:`Row` or a :class:`Quarantine` item.

Dates are ``YYYY-MM-DD`` or T24's own ``YYYYMMDD``; amounts are int, Decimal or a plain decimal
string (a float is refused).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from portal.phones import phone_e164 as phone_e164  # the one phone rule, for the loaders
from portal.text import printable, storable

MONEY_INTEGER_DIGITS = 16  # Numeric(18, 2)
_AMOUNT = re.compile(r"^-?\d+(\.\d+)?$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_INTEGER = re.compile(r"-?\d+")
_T24_DATE = re.compile(r"\d{8}")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TRUE = {"true", "1", "yes", "y"}
_FALSE = {"false", "0", "no", "n"}


# -- value converters: (field name, value) -> typed value; raise Invalid -------------------------
class Invalid(ValueError):
    """One field's value is not acceptable (the message is the quarantine reason)."""


def is_blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def to_str(max_len: int | None = None, choices: Iterable[str] | None = None,
           upper: bool = False, lower: bool = False) -> Callable:
    allowed = tuple(choices) if choices is not None else None

    def convert(name: str, value):
        if type(value) is str:  # the common case first
            text = value.strip()
        elif isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise Invalid(f"{name}: expected text, got {type(value).__name__}")
        else:
            text = str(value).strip()
        if upper:
            text = text.upper()
        if lower:
            text = text.lower()
        if max_len is not None and len(text) > max_len:
            raise Invalid(f"{name}: longer than {max_len} characters")
        if "\x00" in text or not text.isascii() and not storable(text):
            raise Invalid(f"{name}: holds a NUL or an invalid character")
        if allowed is not None and text not in allowed:
            raise Invalid(f"{name}: {text!r} is not one of {', '.join(allowed)}")
        return text

    return convert


def to_int(minimum: int | None = None, maximum: int | None = None) -> Callable:
    def convert(name: str, value):
        if isinstance(value, bool | float):
            raise Invalid(f"{name}: expected a whole number, got {value!r}")
        if isinstance(value, Decimal):
            if not value.is_finite() or value != value.to_integral_value():
                raise Invalid(f"{name}: expected a whole number, got {value}")
            number = int(value)
        elif isinstance(value, int):
            number = value
        elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
            number = int(value.strip())
        else:
            raise Invalid(f"{name}: expected a whole number, got {value!r}")
        if minimum is not None and number < minimum:
            raise Invalid(f"{name}: must be at least {minimum}, got {number}")
        if maximum is not None and number > maximum:
            raise Invalid(f"{name}: must be at most {maximum}, got {number}")
        return number

    return convert


def to_decimal(places: int = 2, integer_digits: int = MONEY_INTEGER_DIGITS,
               non_negative: bool = True) -> Callable:
    """Exact amounts: int, Decimal or a plain decimal string; never float."""
    quantum = Decimal(1).scaleb(-places)
    # the common case, checked by its shape alone: a plain string within the digits allowed
    plain = re.compile(("" if non_negative else "-?") +
                       rf"\d{{1,{integer_digits}}}(\.\d{{1,{places}}})?")

    def convert(name: str, value):
        if type(value) is str and plain.fullmatch(value):
            return Decimal(value).quantize(quantum)
        if type(value) is Decimal and value.is_finite() and value.adjusted() < integer_digits \
                and not (non_negative and value < 0):
            # the other common case (a mapping's amount converter made it): within the digits
            # allowed, so quantize cannot overflow; kept when that loses nothing
            amount = value.quantize(quantum)
            if amount == value:
                return amount
        if isinstance(value, bool | float):
            raise Invalid(f"{name}: amounts must not be floating point, got {value!r}")
        if isinstance(value, int):
            amount = Decimal(value)
        elif isinstance(value, Decimal):
            amount = value
        elif isinstance(value, str) and _AMOUNT.match(value.strip()):
            amount = Decimal(value.strip())
        else:
            raise Invalid(f"{name}: not a decimal amount: {value!r}")
        if not amount.is_finite():
            raise Invalid(f"{name}: not a finite amount: {value!r}")
        if non_negative and amount < 0:
            raise Invalid(f"{name}: must not be negative, got {amount}")
        sign, digits, exponent = amount.as_tuple()
        if exponent < -places and amount != amount.quantize(Decimal(1).scaleb(-places)):
            raise Invalid(f"{name}: more than {places} decimal places: {value}")
        try:
            amount = amount.quantize(Decimal(1).scaleb(-places))
        except InvalidOperation as exc:
            raise Invalid(f"{name}: amount out of range: {value}") from exc
        if len(amount.as_tuple().digits) - places > integer_digits:
            raise Invalid(f"{name}: amount out of range: {value}")
        return amount

    return convert


def to_date(name: str, value):
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise Invalid(f"{name}: expected a date, got {value!r}")
    text = value.strip()
    try:
        if _T24_DATE.fullmatch(text):  # T24's own YYYYMMDD
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        if _ISO_DATE.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError as exc:
        raise Invalid(f"{name}: not a valid date: {value!r}") from exc
    raise Invalid(f"{name}: not a date (YYYY-MM-DD or YYYYMMDD): {value!r}")


def to_bool(name: str, value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise Invalid(f"{name}: expected true or false, got {value!r}")


def to_currency(name: str, value):
    text = to_str()(name, value).upper()
    if not _CURRENCY.match(text):
        raise Invalid(f"{name}: not an ISO 4217 currency code: {value!r}")
    return text


def to_coordinate(limit: int) -> Callable:
    decimal = to_decimal(places=6, integer_digits=3, non_negative=False)

    def convert(name: str, value):
        number = decimal(name, value)
        if abs(number) > limit:
            raise Invalid(f"{name}: out of range: {value}")
        return number

    return convert


@dataclass(frozen=True)
class Field:
    name: str
    convert: Callable
    required: bool = False
    default: object = None


# -- results -------------------------------------------------------------------------------------
@dataclass(slots=True)
class Row:
    """A valid record: its table's column values, and its contacts (customers, references)."""

    entity: str
    key: str  # natural key, joined with '|' for composite keys
    values: dict
    contacts: dict[str, list[dict]] = field(default_factory=dict)
    source_file: str | None = None
    record_number: int | None = None


@dataclass(slots=True)
class Quarantine:
    """A record that failed validation: kept with the reason and what was received."""

    entity: str
    reason: str
    record_key: str | None
    payload: dict | None  # the decoded record (JSON-safe), when it could be decoded
    raw: str | None  # the raw text, when it could not
    source_file: str | None
    line_number: int | None
    record_number: int | None


def json_safe(value):
    """The record with Decimal and date values as strings (for a JSONB payload); text made
    storable."""
    if isinstance(value, dict):
        return {printable(str(k)): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, Decimal | date):
        return str(value) if isinstance(value, Decimal) else value.isoformat()
    if isinstance(value, str):
        return printable(value)
    return value


def convert_fields(fields: tuple[Field, ...], data: Mapping, prefix: str = "") -> dict:
    values = {}
    get = data.get
    for spec in fields:
        value = get(spec.name)
        if value is None or (type(value) is str and not value.strip()):
            if spec.required:
                raise Invalid(f"{prefix}{spec.name}: required")
            values[spec.name] = spec.default
            continue
        values[spec.name] = spec.convert(prefix + spec.name, value)
    return values
