"""Validate T24 raw records and map them to column dicts of the models.

Every record becomes either a :class:`Row` (column values of the entity's table, typed: ``str``,
``int``, ``bool``, ``date``, ``Decimal`` — never float) or a :class:`Quarantine` item (reason +
raw payload); a bad record never raises, so its neighbours still load. The field converters,
``Row`` and ``Quarantine`` are integrations/fields.py's, shared with the W4 and LOS transforms.

Values may arrive as JSON types or as strings (XML): ``"12.50"``, ``12``, ``"true"``, and dates
as ``YYYY-MM-DD`` or T24's own ``YYYYMMDD``. A JSON float cannot occur (the parser decodes numbers
as Decimal); a float handed in directly is refused. ``bucket`` is never read from the file: it is
computed from ``dpd`` with :func:`portal.models.enums.bucket_for_dpd`.

Rows carry ``source_system = "T24"`` and no ``last_synced_at`` (the loader stamps it, so the
change detection compares data only).
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from integrations.fields import (
    Field,
    Invalid,
    Quarantine,
    Row,
    convert_fields,
    is_blank,
    json_safe,
    phone_e164,
    to_bool,
    to_coordinate,
    to_currency,
    to_date,
    to_decimal,
    to_int,
    to_str,
)
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
from portal.text import printable

SOURCE = "T24"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _fields(*items: Field) -> tuple[Field, ...]:
    return items


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


def _record_key(entity: str, data: Mapping | None) -> str | None:
    if not isinstance(data, Mapping):
        return None
    parts = [data.get(k) for k in NATURAL_KEYS[entity]]
    if any(is_blank(p) for p in parts):
        return None
    return printable("|".join(str(p).strip() for p in parts))[:64]


def check_rules(entity: str, values: dict) -> None:
    """Cross-field rules of an entity."""
    if entity == "loans":
        if (values["disbursement_date"] and values["maturity_date"]
                and values["maturity_date"] < values["disbursement_date"]):
            raise Invalid("maturity_date: before disbursement_date")
        values["bucket"] = bucket_for_dpd(values["dpd"])
    elif (entity in ("customers", "reference_customers") and values["type"] == "ORGANIZATION"
          and not values.get("company_name")):
        values["company_name"] = values["name"]


def contacts_of(entity: str, owner_field: str, owner: str, data: Mapping) -> dict[str, list]:
    contacts: dict[str, list] = {}
    for kind, fields in CONTACT_FIELDS.items():
        items = data.get(kind)
        if is_blank(items):
            contacts[kind] = []
            continue
        if not isinstance(items, list):
            raise Invalid(f"{kind}: expected a list")
        rows = []
        primary_types = set()  # one primary per type: the first the record marks
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise Invalid(f"{kind}[{index}]: expected an object")
            row = convert_fields(fields, item, f"{kind}[{index}].")
            rows.append(finish_contact(kind, index, row, primary_types, owner_field, owner))
        contacts[kind] = rows
    return contacts


def finish_contact(kind: str, index: int, row: dict, primary_types: set, owner_field: str,
                   owner: str) -> dict:
    """What every contact row gets once its fields are converted (native records' and a
    mapping's alike): one primary per type (the first the record marks; ``primary_types``: the
    types of the kind seen so far), a phone's E.164 form, an e-mail's shape, the owner."""
    if row.get("is_primary"):
        if row.get("type") in primary_types:
            row["is_primary"] = False
        primary_types.add(row.get("type"))
    if kind == "phones":
        row["number_e164"] = phone_e164(row["number"])
        if row["number_e164"] is None:
            raise Invalid(f"phones[{index}].number: not a phone number: {row['number']!r}")
    if kind == "emails" and not _EMAIL.match(row["address"]):
        raise Invalid(f"emails[{index}].address: not an e-mail address")
    row["cif"] = owner if owner_field == "cif" else None
    row["ref_cif"] = owner if owner_field == "ref_cif" else None
    row["source_system"] = SOURCE
    return row


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
        check_rules(entity, values)
        if known is not None:
            for field_name, target in REFERENCES.get(entity, ()):
                keys = known.get(target)
                if keys is not None and values[field_name] not in keys:
                    raise Invalid(f"{field_name}: {values[field_name]!r} is not a known "
                                  f"{target[:-1].replace('_', ' ')}")
        contacts = {}
        if entity in WITH_CONTACTS:
            owner_field = WITH_CONTACTS[entity]
            contacts = contacts_of(entity, owner_field, values[owner_field], record.data)
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
