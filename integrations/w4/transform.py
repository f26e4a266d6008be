"""Validate W4 card records and map them to ``cards`` columns.

W4 field -> column: contract_number, client_cif -> cif, card_mask -> masked_card_number,
product_code -> product, currency, credit_limit, total_balance -> outstanding, min_amount_due ->
min_due, payment_due_date -> due_date, days_past_due -> days_overdue (and bucket, computed with
``bucket_for_dpd``), contract_status -> status, collection_case.case_id / .status ->
w4_case_id / w4_case_status. A card number that is not masked is refused (a full PAN must never
be stored). A bad record becomes a :class:`Quarantine` item, never an exception.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from integrations.fields import (
    Field,
    Invalid,
    Quarantine,
    Row,
    convert_fields,
    json_safe,
    to_currency,
    to_date,
    to_decimal,
    to_int,
    to_str,
)
from portal.models.enums import CARD_STATUSES, bucket_for_dpd

SOURCE = "W4"
ENTITY = "cards"
_MASK = re.compile(r"^[0-9]{4,6}[0-9 *]*\*[0-9 *]*[0-9]{4}$")

CARD_FIELDS = (
    Field("contract_number", to_str(32), required=True),
    Field("client_cif", to_str(32), required=True),
    Field("card_mask", to_str(19), required=True),
    Field("product_code", to_str(32)),
    Field("currency", to_currency, required=True),
    Field("credit_limit", to_decimal(), required=True),
    Field("total_balance", to_decimal(), required=True),
    Field("min_amount_due", to_decimal(), required=True),
    Field("payment_due_date", to_date),
    Field("days_past_due", to_int(minimum=0, maximum=36500), required=True),
    Field("contract_status", to_str(choices=CARD_STATUSES, upper=True), required=True),
)
CASE_FIELDS = (
    Field("case_id", to_str(40), required=True),
    Field("status", to_str(32, upper=True), required=True),
)


def transform_card(record, *, source: str | None = None,
                   number: int | None = None) -> Row | Quarantine:
    key = record.get("contract_number") if isinstance(record, Mapping) else None
    key = str(key)[:64] if key else None
    if not isinstance(record, Mapping):
        return Quarantine(ENTITY, "a card must be a JSON object", None, None,
                          str(record)[:4000], source, None, number)
    try:
        v = convert_fields(CARD_FIELDS, record)
        mask = v["card_mask"]
        if not _MASK.match(mask) or len(re.sub(r"\D", "", mask)) > 10:
            raise Invalid("card_mask: not a masked card number (a full PAN is never accepted)")
        case = record.get("collection_case")
        case_values = {"case_id": None, "status": None}
        if case is not None:
            if not isinstance(case, Mapping):
                raise Invalid("collection_case: expected an object or null")
            case_values = convert_fields(CASE_FIELDS, case, "collection_case.")
        values = {
            "contract_number": v["contract_number"],
            "cif": v["client_cif"],
            "masked_card_number": mask,
            "product": v["product_code"],
            "currency": v["currency"],
            "credit_limit": v["credit_limit"],
            "outstanding": v["total_balance"],
            "min_due": v["min_amount_due"],
            "due_date": v["payment_due_date"],
            "days_overdue": v["days_past_due"],
            "bucket": bucket_for_dpd(v["days_past_due"]),
            "status": v["contract_status"],
            "w4_case_id": case_values["case_id"],
            "w4_case_status": case_values["status"],
            "source_system": SOURCE,
        }
    except Invalid as exc:
        return Quarantine(ENTITY, str(exc), key, json_safe(dict(record)), None, source, None,
                          number)
    return Row(ENTITY, values["contract_number"], values, {}, source, number)
