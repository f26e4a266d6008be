"""Validate LOS application records and map them to ``loan_applications`` columns; the
application's referees become reference customers (``reference_customers`` + their phone).

LOS field -> column: application_id, customer_cif -> cif, loan_account_number ->
account_number (set once the loan is disbursed), product_code -> product, requested_amount,
approved_amount, currency, application_date, decision_date, disbursement_date, monthly_income,
employer, channel, status; ``scoring`` (free-form) -> raw.

Referee -> reference customer: referee_id -> ref_cif, the application's customer_cif ->
primary_cif, relationship (LOS vocabulary, e.g. FATHER) -> relationship_type (ours: parent),
full_name -> name, national_id, date_of_birth, gender, phone -> contacts + a MOBILE phone row.
"""

from __future__ import annotations

from collections.abc import Mapping

from integrations.fields import (
    Field,
    Invalid,
    Quarantine,
    Row,
    convert_fields,
    json_safe,
    phone_e164,
    to_currency,
    to_date,
    to_decimal,
    to_str,
)
from portal.models.enums import RELATIONSHIP_TYPES

SOURCE = "LOS"
ENTITY = "loan_applications"
APPLICATION_STATUSES = ("DRAFT", "SUBMITTED", "IN_REVIEW", "APPROVED", "REJECTED", "WITHDRAWN",
                        "CANCELLED", "DISBURSED")
# LOS relationship codes -> ours (RELATIONSHIP_TYPES); anything else is 'other'.
RELATIONSHIPS = {
    "SPOUSE": "spouse", "HUSBAND": "spouse", "WIFE": "spouse", "GUARANTOR": "guarantor",
    "CO_SIGNER": "co_signer", "COSIGNER": "co_signer", "FATHER": "parent", "MOTHER": "parent",
    "PARENT": "parent", "SON": "child", "DAUGHTER": "child", "CHILD": "child",
    "BROTHER": "sibling", "SISTER": "sibling", "SIBLING": "sibling", "RELATIVE": "relative",
    "COLLEAGUE": "colleague", "FRIEND": "friend",
}
assert set(RELATIONSHIPS.values()) <= set(RELATIONSHIP_TYPES)

APPLICATION_FIELDS = (
    Field("application_id", to_str(40), required=True),
    Field("customer_cif", to_str(32), required=True),
    Field("loan_account_number", to_str(32)),
    Field("product_code", to_str(32), required=True),
    Field("requested_amount", to_decimal()),
    Field("approved_amount", to_decimal()),
    Field("currency", to_currency, default="VND"),
    Field("application_date", to_date),
    Field("decision_date", to_date),
    Field("disbursement_date", to_date),
    Field("monthly_income", to_decimal()),
    Field("employer", to_str(200)),
    Field("channel", to_str(32, upper=True)),
    Field("status", to_str(24, choices=APPLICATION_STATUSES, upper=True), required=True),
)
REFEREE_FIELDS = (
    Field("referee_id", to_str(32), required=True),
    Field("relationship", to_str(32, upper=True), required=True),
    Field("full_name", to_str(200), required=True),
    Field("phone", to_str(32)),
    Field("national_id", to_str(32)),
    Field("date_of_birth", to_date),
    Field("gender", to_str(10, choices=("MALE", "FEMALE", "OTHER"), upper=True)),
)


def _referee(cif: str, item, index: int) -> tuple[dict, dict | None]:
    if not isinstance(item, Mapping):
        raise Invalid(f"referees[{index}]: expected an object")
    r = convert_fields(REFEREE_FIELDS, item, f"referees[{index}].")
    phone = None
    if r["phone"]:
        e164 = phone_e164(r["phone"])
        if e164 is None:
            raise Invalid(f"referees[{index}].phone: not a phone number: {r['phone']!r}")
        phone = {"cif": None, "ref_cif": r["referee_id"], "type": "MOBILE",
                 "number": r["phone"], "number_e164": e164, "is_primary": True,
                 "is_verified": False, "do_not_contact": False, "source_system": SOURCE}
    reference = {
        "ref_cif": r["referee_id"], "primary_cif": cif,
        "relationship_type": RELATIONSHIPS.get(r["relationship"], "other"),
        "type": "INDIVIDUAL", "name": r["full_name"], "date_of_birth": r["date_of_birth"],
        "national_id": r["national_id"], "gender": r["gender"], "company_name": None,
        "contacts": {"phone": r["phone"]} if r["phone"] else None, "source_system": SOURCE,
    }
    return reference, phone


def transform_application(record, *, source: str | None = None,
                          number: int | None = None) -> Row | Quarantine:
    """A Row of ``loan_applications`` whose ``contacts`` hold ``reference_customers`` and
    ``phones`` rows for the referees; or a Quarantine item (the whole application: a bad
    referee quarantines its application, so nothing half-valid is loaded)."""
    if not isinstance(record, Mapping):
        return Quarantine(ENTITY, "an application must be a JSON object", None, None,
                          str(record)[:4000], source, None, number)
    key = record.get("application_id")
    key = str(key)[:64] if key else None
    try:
        v = convert_fields(APPLICATION_FIELDS, record)
        if (v["decision_date"] and v["application_date"]
                and v["decision_date"] < v["application_date"]):
            raise Invalid("decision_date: before application_date")
        if v["status"] == "DISBURSED" and not v["disbursement_date"]:
            raise Invalid("disbursement_date: required when status is DISBURSED")
        referees = record.get("referees") or []
        if not isinstance(referees, list):
            raise Invalid("referees: expected a list")
        references, phones = [], []
        for index, item in enumerate(referees):
            reference, phone = _referee(v["customer_cif"], item, index)
            references.append(reference)
            if phone:
                phones.append(phone)
        scoring = record.get("scoring")
        values = {
            "application_id": v["application_id"], "cif": v["customer_cif"],
            "account_number": v["loan_account_number"], "product": v["product_code"],
            "requested_amount": v["requested_amount"], "approved_amount": v["approved_amount"],
            "currency": v["currency"], "application_date": v["application_date"],
            "decision_date": v["decision_date"], "disbursement_date": v["disbursement_date"],
            "monthly_income": v["monthly_income"], "employer": v["employer"],
            "channel": v["channel"], "status": v["status"],
            "raw": json_safe(scoring) if isinstance(scoring, Mapping) else None,
            "source_system": SOURCE,
        }
    except Invalid as exc:
        return Quarantine(ENTITY, str(exc), key, json_safe(dict(record)), None, source, None,
                          number)
    return Row(ENTITY, values["application_id"], values,
               {"reference_customers": references, "phones": phones}, source, number)
