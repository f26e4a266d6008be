"""Reference persons of a customer (spouse, guarantor, co-signer, ...) entered, edited and
retired from the case view. Their phones, e-mails and addresses are contacts like the
customer's own: portal/cases/contacts.py with ``ref_cif=`` (the same rules, verification and
corrections).

A person an agent enters is a CRM row (``source_system`` CRM) with a ``ref_cif`` of its own
("CRM-…", a key no bank sends, so no sync can overwrite it). A bank-synced person (T24, LOS)
is read-only here, as every bank row is: the agent corrects their contacts (CRM rows beside the
bank's) and may retire them. Retiring never deletes: the row, its contacts and its audit
history stay; ``retired_at`` hides it from the list (a bank sync leaves the column alone).
Every change adds an audit row in the caller's transaction (no commit here); a change that
changes nothing returns None and records nothing.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import audit
from portal.models import ReferenceCustomer, User
from portal.models.enums import REFERENCE_RELATIONSHIPS

CRM = "CRM"
FIELDS = ("relationship_type", "name", "national_id")
LIMITS = {"name": 200, "national_id": 32}


class ReferenceValidationError(Exception):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def clean(form) -> dict:
    """The values of a reference person's form, validated (ReferenceValidationError)."""
    errors: dict[str, str] = {}
    relationship = (form.get("relationship_type") or "").strip().lower()
    if relationship not in REFERENCE_RELATIONSHIPS:
        errors["relationship_type"] = _("Choose a relationship.")
    values: dict = {"relationship_type": relationship}
    for name in ("name", "national_id"):
        value = " ".join((form.get(name) or "").split())
        if len(value) > LIMITS[name]:
            errors[name] = _("At most %(num)d characters.", num=LIMITS[name])
        values[name] = value or None
    if not values["name"]:
        errors["name"] = _("Enter the person's name.")
    if values["national_id"] and not values["national_id"].replace(" ", "").isalnum():
        errors["national_id"] = _("An ID number has only letters and digits.")
    if errors:
        raise ReferenceValidationError(errors)
    return values


def snapshot(row: ReferenceCustomer) -> dict:
    return {"ref_cif": row.ref_cif, "primary_cif": row.primary_cif,
            "source_system": row.source_system,
            "retired_at": row.retired_at.isoformat() if row.retired_at else None,
            **{name: getattr(row, name) for name in FIELDS}}


def get(session: Session, cif: str, ref_id: int) -> ReferenceCustomer:
    """The reference person ``ref_id`` of customer ``cif`` (LookupError for any other: an id
    guessed from another customer is not found)."""
    row = session.get(ReferenceCustomer, ref_id)
    if row is None or row.primary_cif != cif:
        raise LookupError(f"no reference person {ref_id} for customer {cif}")
    return row


def for_customer(session: Session, cif: str) -> list[ReferenceCustomer]:
    """The customer's reference persons: active ones first (by relationship, name), then the
    retired ones."""
    return list(session.scalars(
        select(ReferenceCustomer).where(ReferenceCustomer.primary_cif == cif)
        .order_by(ReferenceCustomer.retired_at.is_not(None), ReferenceCustomer.relationship_type,
                  ReferenceCustomer.name, ReferenceCustomer.id)))


def _new_ref_cif(session: Session) -> str:
    while True:
        key = f"CRM-{secrets.token_hex(6).upper()}"
        if session.scalar(select(ReferenceCustomer.id)
                          .where(ReferenceCustomer.ref_cif == key)) is None:
            return key


def add_reference(session: Session, actor: User, cif: str, form) -> ReferenceCustomer:
    values = clean(form)
    row = ReferenceCustomer(ref_cif=_new_ref_cif(session), primary_cif=cif, type="INDIVIDUAL",
                            source_system=CRM, **values)
    session.add(row)
    session.flush()
    audit.record(session, actor, "reference.create", "reference_customer", row.id,
                 after=snapshot(row))
    return row


def update_reference(session: Session, actor: User, cif: str, ref_id: int,
                     form) -> ReferenceCustomer | None:
    """Edit a CRM-entered person (a bank's is read-only: ReferenceValidationError)."""
    row = get(session, cif, ref_id)
    if row.source_system != CRM:
        raise ReferenceValidationError({"name": _(
            "This person comes from the bank (%(source)s) and cannot be edited here: correct "
            "their contacts instead.", source=row.source_system)})
    if row.retired_at is not None:
        raise ReferenceValidationError({"name": _("This person is retired.")})
    values = clean(form)
    before = snapshot(row)
    for name, value in values.items():
        setattr(row, name, value)
    session.flush()
    if not audit.record_changes(session, actor, "reference.update", "reference_customer",
                                row.id, before, snapshot(row)):
        return None
    return row


def retire_reference(session: Session, actor: User, cif: str, ref_id: int,
                     now: datetime) -> ReferenceCustomer | None:
    """Hide the person from the list (kept, with their contacts). None when already retired."""
    row = get(session, cif, ref_id)
    if row.retired_at is not None:
        return None
    before = snapshot(row)
    row.retired_at = now
    row.retired_by_id = actor.id
    session.flush()
    audit.record(session, actor, "reference.retire", "reference_customer", row.id,
                 before=before, after=snapshot(row))
    return row


def reinstate_reference(session: Session, actor: User, cif: str,
                        ref_id: int) -> ReferenceCustomer | None:
    """Bring a retired person back to the list. None when not retired."""
    row = get(session, cif, ref_id)
    if row.retired_at is None:
        return None
    before = snapshot(row)
    row.retired_at = None
    row.retired_by_id = None
    session.flush()
    audit.record(session, actor, "reference.reinstate", "reference_customer", row.id,
                 before=before, after=snapshot(row))
    return row
