"""The case view's reference persons (spouse, guarantor, ...) and their contacts: add, edit,
retire. Thin: parse the form, call cases.references / cases.contacts (the customer's contact
rules, with the person as owner), render the panel."""

from __future__ import annotations

from flask import abort, current_app, render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from portal import clock
from portal.cases import contacts, references
from portal.cases.forms import ContactFlagForm, ContactForm, ReferenceForm
from portal.cases.views import (
    FLAG_MESSAGES,
    KIND_NAMES,
    NOTHING_CHANGED,
    _context,
    _kind,
    _load,
    bp,
    contact_saved_message,
)
from portal.extensions import db
from portal.models.enums import REFERENCE_RELATIONSHIPS
from portal.permissions.decorators import permission_required
from portal.permissions.roles import can
from portal.phones import phone_national

SLOT = "#reference-form-slot"
RETIRED = _l("%(name)s retired: kept with their contacts, hidden from the list.")


def _reference(cif: str, ref_id: int):
    try:
        return references.get(db.session, cif, ref_id)
    except LookupError:
        abort(404)


def _panel(cif: str, message: str | None = None, changed: bool = True):
    response = current_app.make_response(render_template(
        "cases/_panel_references.html", **_context(_load(cif), message=message)))
    if changed:
        response.headers["HX-Trigger"] = "references-updated"
    return response


def _in_slot(template: str, status: int = 200, **context):
    response = current_app.make_response((render_template(template, **context), status))
    if status != 200:  # the form again with its errors, in place of the form
        response.headers["HX-Retarget"] = SLOT
        response.headers["HX-Reswap"] = "innerHTML"
    return response


def _person_form(cif: str, row, values: dict, errors: dict, status: int = 200):
    return _in_slot("cases/_reference_form.html", status, cif=cif, row=row, values=values,
                    errors=errors, relationships=REFERENCE_RELATIONSHIPS)


# --- the person ------------------------------------------------------------------------------


@bp.get("/<cif>/references/new")
@permission_required("cases.work")
def reference_new(cif: str):
    _load(cif)
    return _person_form(cif, None, {}, {})


@bp.post("/<cif>/references")
@permission_required("cases.work")
def reference_create(cif: str):
    _load(cif)
    form = ReferenceForm()
    try:
        row = references.add_reference(db.session, current_user, cif, form.submitted())
        db.session.commit()
    except references.ReferenceValidationError as exc:
        db.session.rollback()
        return _person_form(cif, None, form.submitted(), exc.errors, 422)
    return _panel(cif, _("%(name)s added.", name=row.name))


@bp.get("/<cif>/references/<int:ref_id>/edit")
@permission_required("cases.work")
def reference_edit(cif: str, ref_id: int):
    row = _reference(cif, ref_id)
    if row.source_system != references.CRM or row.retired_at is not None:
        abort(404)
    return _person_form(cif, row, references.snapshot(row), {})


@bp.post("/<cif>/references/<int:ref_id>")
@permission_required("cases.work")
def reference_update(cif: str, ref_id: int):
    row = _reference(cif, ref_id)
    form = ReferenceForm()
    try:
        saved = references.update_reference(db.session, current_user, cif, ref_id,
                                            form.submitted())
        db.session.commit()
    except references.ReferenceValidationError as exc:
        db.session.rollback()
        return _person_form(cif, row, form.submitted(), exc.errors, 422)
    if saved is None:
        db.session.rollback()
        return _panel(cif, NOTHING_CHANGED, changed=False)
    return _panel(cif, _("%(name)s updated.", name=saved.name))


@bp.post("/<cif>/references/<int:ref_id>/retire")
@permission_required("cases.work")
def reference_retire(cif: str, ref_id: int):
    _reference(cif, ref_id)
    row = references.retire_reference(db.session, current_user, cif, ref_id, clock.now())
    if row is None:
        db.session.rollback()
        return _panel(cif, NOTHING_CHANGED, changed=False)
    db.session.commit()
    return _panel(cif, RETIRED % {"name": row.name})


@bp.post("/<cif>/references/<int:ref_id>/reinstate")
@permission_required("cases.work")
def reference_reinstate(cif: str, ref_id: int):
    _reference(cif, ref_id)
    row = references.reinstate_reference(db.session, current_user, cif, ref_id)
    if row is None:
        db.session.rollback()
        return _panel(cif, NOTHING_CHANGED, changed=False)
    db.session.commit()
    return _panel(cif, _("%(name)s is back on the list.", name=row.name))


# --- the person's contacts (the customer's contact rules: cases.contacts) ----------------------


def _active(cif: str, ref_id: int):
    row = _reference(cif, ref_id)
    if row.retired_at is not None:
        abort(404)
    return row


def _contact(kind: contacts.ContactKind, person, contact_id: int):
    row = db.session.get(kind.model, contact_id)
    if row is None or row.ref_cif != person.ref_cif:
        abort(404)
    return row


def _contact_form(cif: str, person, kind, row, values: dict, errors: dict, status: int = 200):
    post_url = ("cases.reference_contact_update", {"contact_id": row.id}) if row \
        else ("cases.reference_contact_create", {})
    return _in_slot("cases/_contact_form.html", status, cif=cif, kind=kind, row=row,
                    values=values, errors=errors, person=person, idp="ref-contact",
                    post_url=post_url, target="#panel-references")


@bp.get("/<cif>/references/<int:ref_id>/contacts/<kind>/new")
@permission_required("cases.work")
def reference_contact_new(cif: str, ref_id: int, kind: str):
    person = _active(cif, ref_id)
    return _contact_form(cif, person, _kind(kind), None, {}, {})


@bp.get("/<cif>/references/<int:ref_id>/contacts/<kind>/<int:contact_id>/edit")
@permission_required("cases.work")
def reference_contact_edit(cif: str, ref_id: int, kind: str, contact_id: int):
    person = _active(cif, ref_id)
    k = _kind(kind)
    row = _contact(k, person, contact_id)
    values = contacts.snapshot(k, row)
    if k.name == "phone":  # as every page shows it; a masked user re-enters it
        values["number"] = phone_national(row.number_e164 or row.number) \
            if can("customers.view_pii") else ""
    return _contact_form(cif, person, k, row, values, {})


@bp.post("/<cif>/references/<int:ref_id>/contacts/<kind>")
@permission_required("cases.work")
def reference_contact_create(cif: str, ref_id: int, kind: str):
    person = _active(cif, ref_id)
    k = _kind(kind)
    form = ContactForm()
    try:
        contacts.add_contact(db.session, current_user, cif, k.name, form.submitted(),
                             ref_cif=person.ref_cif)
        db.session.commit()
    except contacts.ContactValidationError as exc:
        db.session.rollback()
        return _contact_form(cif, person, k, None, form.submitted(), exc.errors, 422)
    return _panel(cif, _("%(kind)s added.", kind=KIND_NAMES[k.name]))


@bp.post("/<cif>/references/<int:ref_id>/contacts/<kind>/<int:contact_id>")
@permission_required("cases.work")
def reference_contact_update(cif: str, ref_id: int, kind: str, contact_id: int):
    person = _active(cif, ref_id)
    k = _kind(kind)
    row = _contact(k, person, contact_id)
    form = ContactForm()
    try:
        saved = contacts.update_contact(db.session, current_user, cif, k.name, contact_id,
                                        form.submitted(), ref_cif=person.ref_cif)
        db.session.commit()
    except contacts.ContactValidationError as exc:
        db.session.rollback()
        return _contact_form(cif, person, k, row, form.submitted(), exc.errors, 422)
    if saved is None:
        db.session.rollback()
        return _panel(cif, NOTHING_CHANGED, changed=False)
    return _panel(cif, contact_saved_message(k.name, row, saved))


@bp.post("/<cif>/references/<int:ref_id>/contacts/<kind>/<int:contact_id>/flags")
@permission_required("cases.work")
def reference_contact_flag(cif: str, ref_id: int, kind: str, contact_id: int):
    person = _active(cif, ref_id)
    k = _kind(kind)
    _contact(k, person, contact_id)
    form = ContactFlagForm()
    flag, value = form.flag.data or "", bool(form.value.data)
    if flag not in contacts.FLAGS:
        abort(400, description="Unknown flag.")
    if contacts.set_flag(db.session, current_user, cif, k.name, contact_id, flag, value,
                         ref_cif=person.ref_cif) is None:
        db.session.rollback()
        return _panel(cif, NOTHING_CHANGED, changed=False)
    db.session.commit()
    return _panel(cif, FLAG_MESSAGES[flag, value] % {"kind": KIND_NAMES[k.name]})
