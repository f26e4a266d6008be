"""Contact updates from the case view: add or edit a phone, address or email, mark one
verified or do-not-contact.

Bank rows (source_system T24/W4/LOS) are read-only — the bank sync overwrites them, flags
included — so a change to one is stored as a CRM row (a correction) beside it. Every change adds
an audit row and publishes CONTACT_UPDATED in the caller's transaction (no commit here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.orm import Session

from portal import audit, clock
from portal.events.publish import publish
from portal.models import Address, Email, Phone, User
from portal.models.enums import ADDRESS_TYPES, EMAIL_TYPES, PHONE_TYPES

CRM = "CRM"
FLAGS = ("is_verified", "do_not_contact")


@dataclass(frozen=True)
class ContactKind:
    name: str
    model: type
    types: tuple[str, ...]
    fields: tuple[str, ...]  # editable value fields besides type / is_primary / notes


KINDS: dict[str, ContactKind] = {
    "phone": ContactKind("phone", Phone, PHONE_TYPES, ("number",)),
    "address": ContactKind("address", Address, ADDRESS_TYPES,
                           ("line1", "line2", "ward", "district", "city", "province")),
    "email": ContactKind("email", Email, EMAIL_TYPES, ("address",)),
}
EDITABLE = ("type", "is_primary", "notes")
LIMITS = {"number": 32, "line1": 300, "line2": 300, "ward": 100, "district": 100, "city": 100,
          "province": 100, "address": 254, "notes": 1000}
PHONE_RE = re.compile(r"^\+?[0-9][0-9 .\-()]{6,30}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ContactValidationError(Exception):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def kind_of(name: str) -> ContactKind:
    if name not in KINDS:
        raise KeyError(name)
    return KINDS[name]


def e164(number: str) -> str | None:
    """Vietnamese numbers in E.164: "0912 345 678" → "+84912345678"."""
    digits = re.sub(r"\D", "", number or "")
    if not digits:
        return None
    if number.strip().startswith("+"):
        return "+" + digits
    if digits.startswith("84"):
        return "+" + digits
    if digits.startswith("0"):
        return "+84" + digits[1:]
    return "+84" + digits


def clean(kind: ContactKind, form) -> dict:
    """The values of a contact form, validated; raises ContactValidationError."""
    errors: dict[str, str] = {}
    values: dict = {}
    contact_type = (form.get("type") or "").strip().upper()
    if contact_type not in kind.types:
        errors["type"] = "Choose a type."
    values["type"] = contact_type
    for name in (*kind.fields, "notes"):
        value = (form.get(name) or "").strip()
        if len(value) > LIMITS.get(name, 300):
            errors[name] = f"At most {LIMITS.get(name, 300)} characters."
        values[name] = value or None
    values["is_primary"] = form.get("is_primary") in ("1", "on", "true", "y")
    if kind.name == "phone":
        if not values["number"]:
            errors["number"] = "Enter the phone number."
        elif not PHONE_RE.match(values["number"]):
            errors["number"] = "Enter a phone number such as 0912 345 678 or +84912345678."
    elif kind.name == "email":
        if not values["address"]:
            errors["address"] = "Enter the email address."
        elif not EMAIL_RE.match(values["address"]):
            errors["address"] = "Enter an email address such as name@example.com."
    elif kind.name == "address" and not values["line1"]:
        errors["line1"] = "Enter the street address."
    if errors:
        raise ContactValidationError(errors)
    return values


def snapshot(kind: ContactKind, row) -> dict:
    data = {"id": row.id, "type": row.type, "source_system": row.source_system,
            "is_primary": row.is_primary, "is_verified": row.is_verified,
            "do_not_contact": row.do_not_contact, "notes": row.notes}
    for name in kind.fields:
        data[name] = getattr(row, name)
    return data


def _changes(before: dict | None, after: dict) -> dict:
    changes = {}
    for key, new in after.items():
        if key == "id":
            continue
        old = None if before is None else before.get(key)
        if old != new:
            changes[key] = {"old": old, "new": new}
    return changes or {"id": {"old": None if before is None else before.get("id"),
                              "new": after.get("id")}}


def _publish(session: Session, actor: User, kind: ContactKind, row, operation: str,
             changes: dict) -> None:
    publish("CONTACT_UPDATED", {
        "cif": row.cif, "contact_type": kind.name, "operation": operation,
        "contact_id": row.id, "ref_cif": row.ref_cif, "changes": changes,
        "actor_id": actor.id,
    }, session=session)


def _apply(kind: ContactKind, row, values: dict) -> None:
    for name, value in values.items():
        setattr(row, name, value)
    if kind.name == "phone" and "number" in values:
        row.number_e164 = e164(values["number"])


def _new_crm_row(kind: ContactKind, cif: str, values: dict):
    row = kind.model(cif=cif, source_system=CRM)
    row.is_primary = False
    row.is_verified = False
    row.do_not_contact = False
    _apply(kind, row, values)
    return row


def _unset_other_primaries(session: Session, kind: ContactKind, row) -> None:
    """One primary per kind among the CRM rows of the customer (bank rows stay as they are)."""
    if not row.is_primary:
        return
    for other in session.query(kind.model).filter(
        kind.model.cif == row.cif, kind.model.source_system == CRM,
        kind.model.id != row.id, kind.model.is_primary.is_(True),
    ):
        other.is_primary = False


def add_contact(session: Session, actor: User, cif: str, kind_name: str, form) -> object:
    kind = kind_of(kind_name)
    values = clean(kind, form)
    row = _new_crm_row(kind, cif, values)
    session.add(row)
    session.flush()
    _unset_other_primaries(session, kind, row)
    after = snapshot(kind, row)
    audit.record(session, actor, f"{kind.name}.create", kind.name, row.id, after=after)
    _publish(session, actor, kind, row, "created", _changes(None, after))
    return row


def update_contact(session: Session, actor: User, cif: str, kind_name: str, contact_id: int,
                   form) -> object:
    """Edit a CRM row in place; a bank row gets a CRM correction row instead."""
    kind = kind_of(kind_name)
    row = _get(session, kind, cif, contact_id)
    values = clean(kind, form)
    before = snapshot(kind, row)
    if row.source_system != CRM:
        values["notes"] = values.get("notes") or f"Correction of {row.source_system} #{row.id}"
        correction = _new_crm_row(kind, cif, values)
        correction.is_verified = row.is_verified and \
            all(getattr(row, f) == values.get(f) for f in kind.fields)
        correction.do_not_contact = row.do_not_contact
        session.add(correction)
        session.flush()
        _unset_other_primaries(session, kind, correction)
        after = snapshot(kind, correction)
        audit.record(session, actor, f"{kind.name}.correct", kind.name, correction.id,
                     before=before, after=after)
        _publish(session, actor, kind, correction, "created", _changes(before, after))
        return correction
    _apply(kind, row, values)
    _unset_other_primaries(session, kind, row)
    session.flush()
    after = snapshot(kind, row)
    changes = _changes(before, after)
    audit.record(session, actor, f"{kind.name}.update", kind.name, row.id, before=before,
                 after=after)
    _publish(session, actor, kind, row, "updated", changes)
    return row


def set_flag(session: Session, actor: User, cif: str, kind_name: str, contact_id: int,
             flag: str, value: bool) -> object:
    """Mark a contact verified (or not) / do-not-contact (or not)."""
    kind = kind_of(kind_name)
    if flag not in FLAGS:
        raise ContactValidationError({"flag": "Unknown flag."})
    row = _get(session, kind, cif, contact_id)
    before = snapshot(kind, row)
    target = row
    if row.source_system != CRM:
        values = {name: getattr(row, name) for name in (*kind.fields, "type")}
        values["notes"] = f"Correction of {row.source_system} #{row.id}"
        target = _new_crm_row(kind, cif, values)
        target.is_verified = row.is_verified
        target.do_not_contact = row.do_not_contact
        session.add(target)
    setattr(target, flag, value)
    if flag == "is_verified":
        target.verified_at = clock.now() if value else None
        target.verified_by_id = actor.id if value else None
    session.flush()
    after = snapshot(kind, target)
    operation = "verified" if flag == "is_verified" and value else (
        "created" if target is not row else "updated")
    audit.record(session, actor, f"{kind.name}.{flag}", kind.name, target.id, before=before,
                 after=after)
    _publish(session, actor, kind, target, operation, _changes(before, after))
    return target


def _get(session: Session, kind: ContactKind, cif: str, contact_id: int):
    row = session.get(kind.model, contact_id)
    if row is None or row.cif != cif:
        raise LookupError(f"no {kind.name} {contact_id} for customer {cif}")
    return row
