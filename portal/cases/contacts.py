"""Contact updates from the case view: add or edit a phone, address or email, mark one
verified or do-not-contact.

Bank rows (source_system T24/W4/LOS) are read-only — the bank sync overwrites them, flags
included — so a change to one is stored as a CRM row (a correction) beside it; a later change
to the same bank row, or a correction to a number the CRM already holds, goes to that CRM row
(one CRM row per number). Every change adds an audit row and publishes CONTACT_UPDATED in the
caller's transaction (no commit here). A change that changes nothing is not a change: no row,
no audit, no event (the functions return None; the page says "Nothing changed").

Phones are stored normalised: ``number_e164`` (portal/phones.py, the one phone rule) and
``number`` in its national form ("0903 123 456"), whatever way the agent typed it.

One primary per type: the CRM's choice of a primary unsets every other primary of that type of
the customer, the bank's rows included (a partial unique index holds it; the bank syncs leave
a CRM primary in place, integrations/t24/load.py).

A reference person's contacts (``ref_cif=``: the rows are theirs, not the customer's) follow
the same rules, the same verification and the same corrections of bank rows: only the owner
differs (``Owner``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import audit, clock
from portal.events.publish import publish
from portal.models import Address, Email, Phone, User
from portal.models.enums import ADDRESS_TYPES, EMAIL_TYPES, PHONE_TYPES
from portal.phones import phone_e164, phone_national

CRM = "CRM"
FLAGS = ("is_verified", "do_not_contact")


@dataclass(frozen=True)
class ContactKind:
    name: str
    model: type
    types: tuple[str, ...]
    fields: tuple[str, ...]  # editable value fields besides type / is_primary / notes
    primary_choice: bool = True  # the form has a "Primary" box


KINDS: dict[str, ContactKind] = {
    "phone": ContactKind("phone", Phone, PHONE_TYPES, ("number",)),
    "address": ContactKind("address", Address, ADDRESS_TYPES,
                           ("line1", "line2", "ward", "district", "city", "province"),
                           primary_choice=False),
    "email": ContactKind("email", Email, EMAIL_TYPES, ("address",)),
}
EDITABLE = ("type", "is_primary", "notes")
LIMITS = {"number": 32, "line1": 300, "line2": 300, "ward": 100, "district": 100, "city": 100,
          "province": 100, "address": 254, "notes": 1000}
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE_EXAMPLE = _l("Enter a phone number such as 0912 345 678 or +84912345678.")
# a number (e-mail) the customer already has: on adding one, on editing a CRM row into another
ALREADY_ON_FILE = {"phone": _l("The customer already has this phone: correct or edit it in the "
                               "list."),
                   "email": _l("The customer already has this email: correct or edit it in the "
                               "list.")}
ANOTHER_CRM_ROW = {"phone": _l("Another CRM phone of the customer is already this one: edit "
                               "that one instead."),
                   "email": _l("Another CRM email of the customer is already this one: edit "
                               "that one instead.")}


ANOTHER_CRM_ROW_REF = {"phone": _l("Another CRM phone of this person is already this one: edit "
                                   "that one instead."),
                       "email": _l("Another CRM email of this person is already this one: edit "
                                   "that one instead.")}
ALREADY_ON_FILE_REF = {"phone": _l("This person already has this phone: correct or edit it in "
                                   "the list."),
                       "email": _l("This person already has this email: correct or edit it in "
                                   "the list.")}


@dataclass(frozen=True)
class Owner:
    """Whose contact rows: the customer's own (``ref_cif`` None) or one of their reference
    persons'. ``cif`` is always the customer's (the event names it)."""

    cif: str
    ref_cif: str | None = None

    def rows(self, model):
        """The condition matching this owner's rows of ``model``."""
        if self.ref_cif is not None:
            return model.ref_cif == self.ref_cif
        return model.cif == self.cif

    def owns(self, row) -> bool:
        if self.ref_cif is not None:
            return row.ref_cif == self.ref_cif and row.cif is None
        return row.cif == self.cif

    def message(self, messages: dict, messages_ref: dict, kind: ContactKind) -> str:
        return str((messages_ref if self.ref_cif is not None else messages)[kind.name])


class ContactValidationError(Exception):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def kind_of(name: str) -> ContactKind:
    if name not in KINDS:
        raise KeyError(name)
    return KINDS[name]


def clean(kind: ContactKind, form) -> dict:
    """The values of a contact form, validated; raises ContactValidationError. A phone number
    comes back in its national form ("0903 123 456"). ``is_primary`` only for the kinds whose
    form offers it."""
    errors: dict[str, str] = {}
    values: dict = {}
    contact_type = (form.get("type") or "").strip().upper()
    if contact_type not in kind.types:
        errors["type"] = _("Choose a type.")
    values["type"] = contact_type
    for name in (*kind.fields, "notes"):
        value = (form.get(name) or "").strip()
        if len(value) > LIMITS.get(name, 300):
            errors[name] = _("At most %(num)d characters.", num=LIMITS.get(name, 300))
        values[name] = value or None
    if kind.primary_choice:
        values["is_primary"] = form.get("is_primary") in ("1", "on", "true", "y")
    if kind.name == "phone":
        e164 = phone_e164(values["number"])
        if not values["number"]:
            errors["number"] = _("Enter the phone number.")
        elif e164 is None:
            errors["number"] = str(PHONE_EXAMPLE)
        else:
            values["number"] = phone_national(e164)
    elif kind.name == "email":
        if not values["address"]:
            errors["address"] = _("Enter the email address.")
        elif not EMAIL_RE.match(values["address"]):
            errors["address"] = _("Enter an email address such as name@example.com.")
    elif kind.name == "address" and not values["line1"]:
        errors["line1"] = _("Enter the street address.")
    if errors:
        raise ContactValidationError(errors)
    return values


def _value_key(kind: ContactKind, name: str, value):
    """A field's value as compared: a phone by its E.164 form, an e-mail case-blind."""
    if name == "number":
        return phone_e164(value) or (value or "").strip() or None
    if name == "address" and kind.name == "email":
        return (value or "").strip().lower() or None
    return (value.strip() or None) if isinstance(value, str) else value


def same(kind: ContactKind, row, values: dict) -> bool:
    """Whether ``values`` would leave ``row`` as it is."""
    return all(_value_key(kind, name, getattr(row, name)) == _value_key(kind, name, value)
               for name, value in values.items())


def _same_value(kind: ContactKind, values: dict):
    """The condition matching the rows that hold the same number / e-mail / address."""
    model = kind.model
    if kind.name == "phone":
        return model.number_e164 == phone_e164(values["number"])
    if kind.name == "email":
        return func.lower(model.address) == _value_key(kind, "address", values["address"])
    return model.type == values["type"], *(
        getattr(model, name) == values[name] if values[name] is not None
        else getattr(model, name).is_(None) for name in kind.fields)


def _holding(session: Session, kind: ContactKind, owner: Owner, values: dict, *,
             source: str | None = None, exclude_id: int | None = None):
    """The owner's row (of ``source``, any when None) holding the same value, if any."""
    condition = _same_value(kind, values)
    conditions = condition if isinstance(condition, tuple) else (condition,)
    query = select(kind.model).where(owner.rows(kind.model), *conditions)
    if source is not None:
        query = query.where(kind.model.source_system == source)
    if exclude_id is not None:
        query = query.where(kind.model.id != exclude_id)
    return session.scalar(query.order_by(kind.model.id).limit(1))


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


def _publish(session: Session, actor: User, kind: ContactKind, owner: Owner, row,
             operation: str, changes: dict) -> None:
    publish("CONTACT_UPDATED", {
        "cif": owner.cif, "contact_type": kind.name, "operation": operation,
        "contact_id": row.id, "ref_cif": row.ref_cif, "changes": changes,
        "actor_id": actor.id,
    }, session=session)


def _apply(kind: ContactKind, row, values: dict) -> None:
    for name, value in values.items():
        setattr(row, name, value)
    if kind.name == "phone" and "number" in values:
        row.number_e164 = phone_e164(values["number"])


def _new_crm_row(kind: ContactKind, owner: Owner, values: dict):
    row = kind.model(cif=None if owner.ref_cif else owner.cif, ref_cif=owner.ref_cif,
                     source_system=CRM)
    row.is_primary = False
    row.is_verified = False
    row.do_not_contact = False
    _apply(kind, row, values)
    return row


def _make_room_for_primary(session: Session, kind: ContactKind, owner: Owner, values: dict,
                           keep_id: int | None) -> list:
    """Before a row becomes (or stays) the primary of its type: every other primary of that
    type of the owner — the bank's rows too — is unset (flushed, so the one-primary index
    never sees two). Returns the rows unset."""
    if not values.get("is_primary"):
        return []
    others = list(session.scalars(select(kind.model).where(
        owner.rows(kind.model), kind.model.type == values["type"],
        kind.model.is_primary.is_(True),
        *((kind.model.id != keep_id,) if keep_id is not None else ()))))
    for other in others:
        other.is_primary = False
    session.flush()
    return others


def _record_unset(session: Session, actor: User, kind: ContactKind, unset: list, row) -> None:
    for other in unset:
        audit.record(session, actor, f"{kind.name}.unset_primary", kind.name, other.id,
                     before={"is_primary": True},
                     after={"is_primary": False, "primary_id": row.id})


def add_contact(session: Session, actor: User, cif: str, kind_name: str, form, *,
                ref_cif: str | None = None) -> object:
    """A new CRM contact of the customer (of their reference person ``ref_cif``). A number
    (e-mail) the owner already has on file is refused: the agent corrects or edits that one."""
    kind = kind_of(kind_name)
    owner = Owner(cif, ref_cif)
    values = clean(kind, form)
    if kind.name != "address" and _holding(session, kind, owner, values) is not None:
        field = kind.fields[0]
        raise ContactValidationError({field: owner.message(ALREADY_ON_FILE,
                                                           ALREADY_ON_FILE_REF, kind)})
    unset = _make_room_for_primary(session, kind, owner, values, None)
    row = _new_crm_row(kind, owner, values)
    session.add(row)
    session.flush()
    _record_unset(session, actor, kind, unset, row)
    after = snapshot(kind, row)
    audit.record(session, actor, f"{kind.name}.create", kind.name, row.id, after=after)
    _publish(session, actor, kind, owner, row, "created", _changes(None, after))
    return row


def update_contact(session: Session, actor: User, cif: str, kind_name: str, contact_id: int,
                   form, *, ref_cif: str | None = None) -> object | None:
    """Edit a CRM row in place; a bank row gets a CRM correction row instead — or, when the CRM
    already holds the corrected number, that row is edited. Returns the row saved, or None when
    the form changes nothing."""
    kind = kind_of(kind_name)
    owner = Owner(cif, ref_cif)
    row = _get(session, kind, owner, contact_id)
    values = clean(kind, form)
    if same(kind, row, values):
        return None
    before = snapshot(kind, row)
    if row.source_system != CRM:
        return _correct(session, actor, kind, owner, row, values, before)
    if kind.name != "address" and _holding(session, kind, owner, values, source=CRM,
                                           exclude_id=row.id) is not None:
        field = kind.fields[0]
        raise ContactValidationError({field: owner.message(ANOTHER_CRM_ROW,
                                                           ANOTHER_CRM_ROW_REF, kind)})
    unset = _make_room_for_primary(session, kind, owner, values, row.id)
    _apply(kind, row, values)
    session.flush()
    _record_unset(session, actor, kind, unset, row)
    after = snapshot(kind, row)
    audit.record(session, actor, f"{kind.name}.update", kind.name, row.id, before=before,
                 after=after)
    _publish(session, actor, kind, owner, row, "updated", _changes(before, after))
    return row


def _correct(session: Session, actor: User, kind: ContactKind, owner: Owner, bank_row,
             values: dict, before: dict) -> object | None:
    """A change to a bank row: stored on the CRM row holding the (corrected) value, or on a
    new CRM row beside the bank's."""
    values.setdefault("is_primary", False)
    target = _holding(session, kind, owner, values, source=CRM)
    if target is not None:
        if not values.get("notes"):
            values.pop("notes")  # the CRM row keeps its own note
        if same(kind, target, values):
            return None
        unset = _make_room_for_primary(session, kind, owner, values, target.id)
        _apply(kind, target, values)
        operation = "updated"
    else:
        values["notes"] = values.get("notes") or f"Correction of {bank_row.source_system} " \
                                                 f"#{bank_row.id}"
        unset = _make_room_for_primary(session, kind, owner, values, None)
        target = _new_crm_row(kind, owner, values)
        target.is_verified = bank_row.is_verified and \
            all(_value_key(kind, f, getattr(bank_row, f)) == _value_key(kind, f, values.get(f))
                for f in kind.fields)
        target.do_not_contact = bank_row.do_not_contact
        session.add(target)
        operation = "created"
    session.flush()
    _record_unset(session, actor, kind, unset, target)
    after = snapshot(kind, target)
    audit.record(session, actor, f"{kind.name}.correct", kind.name, target.id,
                 before=before, after=after)
    _publish(session, actor, kind, owner, target, operation, _changes(before, after))
    return target


def set_flag(session: Session, actor: User, cif: str, kind_name: str, contact_id: int,
             flag: str, value: bool, *, ref_cif: str | None = None) -> object | None:
    """Mark a contact verified (or not) / do-not-contact (or not). A bank row's flag goes on the
    CRM row of the same number (made when there is none). None when the flag already says so."""
    kind = kind_of(kind_name)
    if flag not in FLAGS:
        raise ContactValidationError({"flag": _("Unknown flag.")})
    owner = Owner(cif, ref_cif)
    row = _get(session, kind, owner, contact_id)
    before = snapshot(kind, row)
    target = row
    if row.source_system != CRM:
        values = {name: getattr(row, name) for name in (*kind.fields, "type")}
        target = _holding(session, kind, owner, values, source=CRM)
        if target is None:
            values["notes"] = f"Correction of {row.source_system} #{row.id}"
            target = _new_crm_row(kind, owner, values)
            target.is_verified = row.is_verified
            target.do_not_contact = row.do_not_contact
        else:
            before = snapshot(kind, target)
    if getattr(target, flag) == value:
        return None
    if target.id is None:
        session.add(target)
    setattr(target, flag, value)
    if flag == "is_verified":
        target.verified_at = clock.now() if value else None
        target.verified_by_id = actor.id if value else None
    session.flush()
    after = snapshot(kind, target)
    operation = "verified" if flag == "is_verified" and value else (
        "created" if target is not row and before["id"] == row.id else "updated")
    audit.record(session, actor, f"{kind.name}.{flag}", kind.name, target.id, before=before,
                 after=after)
    _publish(session, actor, kind, owner, target, operation, _changes(before, after))
    return target


def _get(session: Session, kind: ContactKind, owner: Owner, contact_id: int):
    row = session.get(kind.model, contact_id)
    if row is None or not owner.owns(row):
        raise LookupError(f"no {kind.name} {contact_id} for {owner}")
    return row


def set_messages_opt_out(session: Session, point: Phone | Email, opted_out: bool, actor) -> bool:
    """Opt a phone or e-mail address out of messages (or back in); audited. False when it did
    not change. No commit."""
    if point.messages_opt_out == opted_out:
        return False
    kind = "phone" if isinstance(point, Phone) else "email"
    audit.record(session, actor, "contact.messages_opt_out", kind, point.id,
                 before={"messages_opt_out": point.messages_opt_out, "cif": point.cif},
                 after={"messages_opt_out": opted_out, "cif": point.cif})
    point.messages_opt_out = opted_out
    return True
