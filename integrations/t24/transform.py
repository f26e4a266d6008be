"""Validate T24 raw records and map them to column dicts of the models.

Every record becomes either a :class:`Row` (column values of the entity's table, typed: ``str``,
``int``, ``bool``, ``date``, ``Decimal`` — never float) or a :class:`Quarantine` item (reason +
raw payload); a bad record never raises, so its neighbours still load.

Values may arrive as JSON types or as strings (XML): ``"12.50"``, ``12``, ``"true"``, and dates
as ``YYYY-MM-DD`` or T24's own ``YYYYMMDD``. A JSON float cannot occur (the parser decodes numbers
as Decimal); a float handed in directly is refused. ``bucket`` is never read from the file: it is
computed from ``dpd`` with :func:`portal.models.enums.bucket_for_dpd`.

Rows carry ``source_system = "T24"`` and no ``last_synced_at`` (the loader stamps it, so the
change detection compares data only).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from integrations.t24.formats import CONTROL_TOTAL_FIELDS, NATURAL_KEYS
from integrations.t24.parser import RawRecord
from portal.models.enums import (
    ADDRESS_TYPES,
    CUSTOMER_STATUSES,
    CUSTOMER_TYPES,
    EMAIL_TYPES,
    LOAN_STATUSES,
    PHONE_TYPES,
    RELATIONSHIP_TYPES,
    bucket_for_dpd,
)
from portal.text import printable, storable

SOURCE = "T24"
MONEY_INTEGER_DIGITS = 16  # Numeric(18, 2)
_AMOUNT = re.compile(r"^-?\d+(\.\d+)?$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_PHONE = re.compile(r"^\+?\d{8,15}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_INTEGER = re.compile(r"-?\d+")
_T24_DATE = re.compile(r"\d{8}")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PHONE_PUNCTUATION = re.compile(r"[\s.\-()]")
_TRUE = {"true", "1", "yes", "y"}
_FALSE = {"false", "0", "no", "n"}


class Invalid(ValueError):
    """One field's value is not acceptable (the message is the quarantine reason)."""


# -- value converters: (field name, value) -> typed value; raise Invalid -------------------------
def _blank(value) -> bool:
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


def _fields(*items: Field) -> tuple[Field, ...]:
    return items


def phone_e164(number: str) -> str | None:
    """A Vietnamese number in E.164 form: 0901234567 -> +84901234567 (None if not a number)."""
    digits = _PHONE_PUNCTUATION.sub("", number)
    if not _PHONE.match(digits):
        return None
    if digits.startswith("+"):
        return digits
    if digits.startswith("84") and len(digits) >= 11:
        return "+" + digits
    if digits.startswith("0"):
        return "+84" + digits[1:]
    return None


# -- entity specifications -----------------------------------------------------------------------
PERSON_FIELDS = _fields(
    Field("type", to_str(choices=CUSTOMER_TYPES, upper=True), default="INDIVIDUAL"),
    Field("name", to_str(200), required=True),
    Field("date_of_birth", to_date),
    Field("national_id", to_str(32)),
    Field("gender", to_str(10, choices=("MALE", "FEMALE", "OTHER"), upper=True)),
    Field("company_name", to_str(200)),
)
CUSTOMER_FIELDS = _fields(
    Field("cif", to_str(32), required=True),
    *PERSON_FIELDS,
    Field("registration_number", to_str(64)),
    Field("tax_id", to_str(32)),
    Field("segment", to_str(32)),
    Field("status", to_str(choices=CUSTOMER_STATUSES, upper=True), default="ACTIVE"),
)
REFERENCE_FIELDS = _fields(
    Field("ref_cif", to_str(32), required=True),
    Field("primary_cif", to_str(32), required=True),
    Field("relationship_type", to_str(32, choices=RELATIONSHIP_TYPES, lower=True),
          required=True),
    *PERSON_FIELDS,
)
PHONE_FIELDS = _fields(
    Field("type", to_str(choices=PHONE_TYPES, upper=True), default="MOBILE"),
    Field("number", to_str(32), required=True),
    Field("is_primary", to_bool, default=False),
    Field("is_verified", to_bool, default=False),
    Field("do_not_contact", to_bool, default=False),
)
ADDRESS_FIELDS = _fields(
    Field("type", to_str(choices=ADDRESS_TYPES, upper=True), default="HOME"),
    Field("line1", to_str(300), required=True),
    Field("line2", to_str(300)),
    Field("ward", to_str(100)),
    Field("district", to_str(100)),
    Field("city", to_str(100)),
    Field("province", to_str(100)),
    Field("country", to_str(2, upper=True), default="VN"),
    Field("postal_code", to_str(16)),
    Field("lat", to_coordinate(90)),
    Field("lon", to_coordinate(180)),
    Field("is_primary", to_bool, default=False),
    Field("is_verified", to_bool, default=False),
)
EMAIL_FIELDS = _fields(
    Field("type", to_str(choices=EMAIL_TYPES, upper=True), default="PERSONAL"),
    Field("address", to_str(254), required=True),
    Field("is_primary", to_bool, default=False),
    Field("is_verified", to_bool, default=False),
)
LOAN_FIELDS = _fields(
    Field("account_number", to_str(32), required=True),
    Field("cif", to_str(32), required=True),
    Field("product_type", to_str(32), required=True),
    Field("currency", to_currency, required=True),
    Field("original_amount", to_decimal(), required=True),
    Field("outstanding", to_decimal(), required=True),
    Field("due_amount", to_decimal(), default=Decimal("0.00")),
    Field("min_pay", to_decimal(), default=Decimal("0.00")),
    Field("next_payment_date", to_date),
    Field("dpd", to_int(minimum=0, maximum=36500), required=True),
    Field("status", to_str(choices=LOAN_STATUSES, upper=True), required=True),
    Field("disbursement_date", to_date),
    Field("maturity_date", to_date),
    Field("close_date", to_date),
    Field("interest_rate", to_decimal(places=4, integer_digits=3)),
    Field("term", to_int(minimum=0, maximum=1200)),
)
COLLATERAL_FIELDS = _fields(
    Field("collateral_number", to_str(32), required=True),
    Field("cif", to_str(32), required=True),
    Field("type", to_str(32, upper=True), required=True),
    Field("description", to_str()),
    Field("value", to_decimal(), required=True),
    Field("currency", to_currency, default="VND"),
    Field("valuation_date", to_date),
    Field("vehicle_make", to_str(64)),
    Field("vehicle_model", to_str(64)),
    Field("vehicle_year", to_int(minimum=1900, maximum=2200)),
    Field("license_plate", to_str(20)),
    Field("chassis_number", to_str(32)),
    Field("engine_number", to_str(32)),
    Field("property_address", to_str(300)),
    Field("property_area_m2", to_decimal(places=2, integer_digits=10)),
    Field("land_certificate_number", to_str(64)),
)
LOAN_COLLATERAL_FIELDS = _fields(
    Field("account_number", to_str(32), required=True),
    Field("collateral_number", to_str(32), required=True),
)

ENTITY_FIELDS: Mapping[str, tuple[Field, ...]] = {
    "customers": CUSTOMER_FIELDS,
    "reference_customers": REFERENCE_FIELDS,
    "loans": LOAN_FIELDS,
    "collaterals": COLLATERAL_FIELDS,
    "loan_collaterals": LOAN_COLLATERAL_FIELDS,
}
CONTACT_FIELDS = {"phones": PHONE_FIELDS, "addresses": ADDRESS_FIELDS, "emails": EMAIL_FIELDS}
# Entities whose records carry nested contact lists.
WITH_CONTACTS = {"customers": "cif", "reference_customers": "ref_cif"}
# Which key of another entity a field must reference: (field, entity).
REFERENCES = {
    "reference_customers": (("primary_cif", "customers"),),
    "loans": (("cif", "customers"),),
    "collaterals": (("cif", "customers"),),
    "loan_collaterals": (("account_number", "loans"), ("collateral_number", "collaterals")),
}


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


def _record_key(entity: str, data: Mapping | None) -> str | None:
    if not isinstance(data, Mapping):
        return None
    parts = [data.get(k) for k in NATURAL_KEYS[entity]]
    if any(_blank(p) for p in parts):
        return None
    return printable("|".join(str(p).strip() for p in parts))[:64]


def _check_rules(entity: str, values: dict) -> None:
    """Cross-field rules of an entity."""
    if entity == "loans":
        if (values["disbursement_date"] and values["maturity_date"]
                and values["maturity_date"] < values["disbursement_date"]):
            raise Invalid("maturity_date: before disbursement_date")
        values["bucket"] = bucket_for_dpd(values["dpd"])
    elif (entity in ("customers", "reference_customers") and values["type"] == "ORGANIZATION"
          and not values.get("company_name")):
        values["company_name"] = values["name"]


def _contacts(entity: str, owner_field: str, owner: str, data: Mapping) -> dict[str, list]:
    contacts: dict[str, list] = {}
    for kind, fields in CONTACT_FIELDS.items():
        items = data.get(kind)
        if _blank(items):
            contacts[kind] = []
            continue
        if not isinstance(items, list):
            raise Invalid(f"{kind}: expected a list")
        rows = []
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise Invalid(f"{kind}[{index}]: expected an object")
            row = convert_fields(fields, item, f"{kind}[{index}].")
            if kind == "phones":
                row["number_e164"] = phone_e164(row["number"])
                if row["number_e164"] is None:
                    raise Invalid(f"phones[{index}].number: not a phone number: "
                                  f"{row['number']!r}")
            if kind == "emails" and not _EMAIL.match(row["address"]):
                raise Invalid(f"emails[{index}].address: not an e-mail address")
            row["cif"] = owner if owner_field == "cif" else None
            row["ref_cif"] = owner if owner_field == "ref_cif" else None
            row["source_system"] = SOURCE
            rows.append(row)
        contacts[kind] = rows
    return contacts


def transform(record: RawRecord,
              known: Mapping[str, Container[str]] | None = None) -> Row | Quarantine:
    """Validate one raw record. ``known`` (entity -> keys already loaded or seen in this set)
    turns on the referential checks: a loan whose cif is not known is quarantined."""
    entity = record.entity
    if record.data is None:
        return Quarantine(entity, record.error or "undecodable record", None, None, record.raw,
                          record.source, record.line, record.number)
    key = _record_key(entity, record.data)
    try:
        values = convert_fields(ENTITY_FIELDS[entity], record.data)
        _check_rules(entity, values)
        if known is not None:
            for field_name, target in REFERENCES.get(entity, ()):
                keys = known.get(target)
                if keys is not None and values[field_name] not in keys:
                    raise Invalid(f"{field_name}: {values[field_name]!r} is not a known "
                                  f"{target[:-1].replace('_', ' ')}")
        contacts = {}
        if entity in WITH_CONTACTS:
            owner_field = WITH_CONTACTS[entity]
            contacts = _contacts(entity, owner_field, values[owner_field], record.data)
        values["source_system"] = SOURCE
    except Invalid as exc:
        return Quarantine(entity, str(exc), key, json_safe(record.data), None, record.source,
                          record.line, record.number)
    return Row(entity, key or "", values, contacts, record.source, record.number)


def transform_records(records: Iterable[RawRecord],
                      known: Mapping[str, Container[str]] | None = None,
                      ) -> Iterator[Row | Quarantine]:
    """Transform a stream; duplicates of a natural key within one stream are quarantined (the
    first one wins), so a file cannot update the same row twice in one load."""
    seen: set[str] = set()
    for record in records:
        result = transform(record, known)
        if isinstance(result, Row):
            if result.key in seen:
                yield Quarantine(result.entity, f"duplicate {result.entity} key {result.key!r} "
                                 f"in {result.source_file}", result.key,
                                 json_safe(record.data), None, record.source, record.line,
                                 record.number)
                continue
            seen.add(result.key)
        yield result


@dataclass
class ControlTotals:
    """Counts and exact sums of the rows that passed validation, to compare with the manifest."""

    entity: str
    rows: int = 0
    quarantined: int = 0
    sums: dict[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sums = {name: Decimal("0.00") for name in CONTROL_TOTAL_FIELDS.get(self.entity, ())}

    def add(self, result: Row | Quarantine) -> None:
        if isinstance(result, Quarantine):
            self.quarantined += 1
            return
        self.rows += 1
        for name in self.sums:
            self.sums[name] += result.values[name] or 0

    def merge(self, other: ControlTotals) -> None:
        """Add another part's counts and sums (a batch's) to these."""
        self.rows += other.rows
        self.quarantined += other.quarantined
        for name, amount in other.sums.items():
            self.sums[name] += amount

    def compare(self, expected: Mapping[str, Decimal]) -> dict[str, dict[str, str]]:
        """Fields whose sum differs from the manifest's: {field: {expected, actual, diff}}.
        A quarantined record explains a difference; it is reported, not fatal."""
        out = {}
        for name, want in expected.items():
            have = self.sums.get(name)
            if have is None or have != want:
                out[name] = {"expected": str(want), "actual": str(have),
                             "difference": str((have or 0) - want)}
        return out
