"""Work queue, Next case, customer search, case view, recording actions and contact updates.
Thin: parse the request, call a service, render."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from portal import clock
from portal.cases import actions, case_view, contacts, queue, statuses
from portal.cases import search as customer_search
from portal.cases.forms import ActionForm, ContactFlagForm, ContactForm
from portal.extensions import db, partial_request
from portal.models.enums import ACTION_TYPES
from portal.permissions import scopes
from portal.permissions.decorators import permission_required
from portal.permissions.roles import can
from portal.phones import phone_national
from portal.text import mask_national_id, mask_phone

bp = Blueprint("cases", __name__, url_prefix="/cases")


@bp.app_template_filter("action_label")
def action_label(text: str | None) -> str:
    """An action code's label in the reader's language: the default catalogue's labels
    (portal/seed/action_codes.py) have their translations; a label an admin wrote is shown
    as written."""
    return _(text) if text else "—"


# --- queue -----------------------------------------------------------------------------------


@bp.get("/", endpoint="queue")
@permission_required("cases.work")
def work_queue():
    filters = queue.QueueFilters.from_args(request.args)
    page = queue.queue_page(db.session, current_user.id, filters, clock.now(),
                            role=current_user.role)
    template = "cases/_queue_results.html" if partial_request("queue-results") \
        else "cases/queue.html"
    return render_template(template, page=page, filters=filters, now=clock.now(),
                           status_choices=statuses.queue_choices(db.session, page.counts))


@bp.post("/next")
@permission_required("cases.work")
def next_case():
    minutes = int(current_app.config.get("CASE_LOCK_MINUTES", queue.DEFAULT_LOCK_MINUTES))
    case = queue.next_case(db.session, current_user, clock.now(), minutes)
    if case is None:
        flash(_("Nothing needs work right now: every case in your queue has a follow-up "
                "scheduled later, or is being worked by a colleague."), "info")
        return redirect(url_for("cases.queue"))
    return redirect(url_for("cases.view", cif=case.cif))


@bp.get("/search")
@permission_required("cases.view")
def search():
    filters = queue.QueueFilters.from_args(request.args)
    page = None
    scope = scopes.case_scope(db.session, current_user)  # not other teams' cases
    if filters.q:  # every customer, with a case or not
        page = customer_search.customer_search(
            db.session, filters.q, page=filters.page, status=filters.status,
            bucket_condition=queue.bucket_condition(filters.bucket) if filters.bucket else None,
            case_scope=scope)
    elif filters.bucket or filters.status:  # browsing cases by bucket / status
        page = queue.queue_page(db.session, None, filters, clock.now(), with_counts=False,
                                case_scope=scope)
    template = "cases/_search_results.html" if partial_request("search-results") \
        else "cases/search.html"
    return render_template(template, page=page, filters=filters)


# --- case view -------------------------------------------------------------------------------


def _load(cif: str) -> case_view.CaseView:
    view = case_view.load_case_view(db.session, cif, clock.now())
    if view is None:
        abort(404)
    return view


def _context(view: case_view.CaseView, **extra) -> dict:
    return {"v": view, "show_pii": can("customers.view_pii"), "can_work": can("cases.work"),
            "mask_phone": mask_phone, "mask_id": mask_national_id,
            "now": clock.now(), "today": clock.bank_today(),
            "status_kind_names": statuses.KIND_NAMES, **extra}


PANELS = {"timeline", "promises", "header", "contacts", "accounts", "history", "statuses",
          "master_note", "references"}


@bp.get("/<cif>")
@permission_required("cases.view")
def view(cif: str):
    return render_case(_load(cif))


def load_case(cif: str) -> case_view.CaseView:
    """The case view of ``cif`` for the signed-in user (404 outside their scope)."""
    return _load(cif)


def render_case(v: case_view.CaseView, **extra) -> str:
    """The case view page, with ``extra`` in its context (a panel that a feature above the
    cases adds, e.g. portal/refresh's change panel)."""
    form = _action_form_state(v, {}) if can("cases.work") else None
    return render_template("cases/view.html", **_context(v, form=form, **extra))


@bp.get("/<cif>/panels/<name>")
@permission_required("cases.view")
def panel(cif: str, name: str):
    if name not in PANELS:
        abort(404)
    return render_template(f"cases/_panel_{name}.html", **_context(_load(cif)))


# --- record an action ------------------------------------------------------------------------


def _action_form_state(v: case_view.CaseView, args, errors=None, refusal=None) -> dict:
    """The record-action form: chosen type → subtype → result and the other fields."""
    codes = case_view.active_action_codes(db.session)
    changed = args.get("changed")
    types = sorted({c.type for c in codes}, key=ACTION_TYPES.index)
    code = None
    raw_code = args.get("action_code_id") or ""
    if raw_code.isdigit() and changed not in ("type", "subtype"):
        code = next((c for c in codes if c.id == int(raw_code)), None)
    chosen_type = code.type if code else (args.get("type") if args.get("type") in types
                                          else None)
    subtypes = list(dict.fromkeys(c.subtype for c in codes if c.type == chosen_type))
    chosen_subtype = code.subtype if code else (
        args.get("subtype") if args.get("subtype") in subtypes and changed != "type" else None)
    results = [c for c in codes if c.type == chosen_type and c.subtype == chosen_subtype]
    follow_up = args.get("follow_up_date")
    if code is not None and (not follow_up or args.get("changed") == "action_code_id"):
        suggested = actions.default_follow_up(code, clock.now())
        follow_up = suggested.isoformat() if suggested else ""
    return {"types": types, "subtypes": subtypes, "results": results, "type": chosen_type,
            "subtype": chosen_subtype, "code": code, "input": args,
            "follow_up_date": follow_up or "", "errors": errors or {}, "refusal": refusal,
            "default_promise_date": clock.add_days(clock.bank_today(), 1).isoformat()}


@bp.get("/<cif>/action-form")
@permission_required("cases.work")
def action_form(cif: str):
    v = _load(cif)
    form = _action_form_state(v, request.args)
    return render_template("cases/_action_form.html", **_context(v, form=form))


@bp.post("/<cif>/actions")
@permission_required("cases.work")
def record_action(cif: str):
    v = _load(cif)
    submitted = ActionForm()
    data, errors = submitted.action_input()
    refusal = None
    if not errors:
        try:
            actions.record_action(db.session, agent=current_user, cif=cif, data=data,
                                  now=clock.now())
            db.session.commit()
        except actions.ActionValidationError as exc:
            db.session.rollback()
            errors = exc.errors
        except actions.ContactRefused as exc:
            db.session.rollback()
            refusal = exc
    if errors or refusal:
        form = _action_form_state(v, submitted.submitted(), errors, refusal)
        return render_template("cases/_action_form.html", **_context(v, form=form)), 422
    v = _load(cif)
    form = _action_form_state(v, {})
    response = current_app.make_response(
        render_template("cases/_action_form.html", **_context(v, form=form, saved=True)))
    response.headers["HX-Trigger"] = "case-updated"
    return response


# --- contacts --------------------------------------------------------------------------------


def _kind(name: str) -> contacts.ContactKind:
    try:
        return contacts.kind_of(name)
    except KeyError:
        abort(404)


def _contact(kind: contacts.ContactKind, cif: str, contact_id: int):
    row = db.session.get(kind.model, contact_id)
    if row is None or row.cif != cif:
        abort(404)
    return row


@bp.get("/<cif>/contacts/<kind>/new")
@permission_required("cases.work")
def contact_new(cif: str, kind: str):
    _load(cif)
    k = _kind(kind)
    return render_template("cases/_contact_form.html", cif=cif, kind=k, row=None, values={},
                           errors={})


@bp.get("/<cif>/contacts/<kind>/<int:contact_id>/edit")
@permission_required("cases.work")
def contact_edit(cif: str, kind: str, contact_id: int):
    k = _kind(kind)
    row = _contact(k, cif, contact_id)
    values = contacts.snapshot(k, row)
    if k.name == "phone":  # as every page shows it; a masked user re-enters it
        values["number"] = phone_national(row.number_e164 or row.number) \
            if can("customers.view_pii") else ""
    return render_template("cases/_contact_form.html", cif=cif, kind=k, row=row, values=values,
                           errors={})


NOTHING_CHANGED = _l("Nothing changed.")
KIND_NAMES = {"phone": _l("Phone"), "address": _l("Address"), "email": _l("Email")}


def contact_saved_message(kind: str, row, saved) -> str:
    """What an agent is told after an edit of a contact (the customer's or a reference
    person's): a bank's row is not edited, a CRM correction is saved beside it."""
    if saved.id != row.id:
        return _("Saved as a CRM correction: the %(source)s record stays as the bank sent it.",
                 source=row.source_system)
    return _("%(kind)s updated.", kind=KIND_NAMES[kind])
FLAG_MESSAGES = {("is_verified", True): _l("%(kind)s marked verified."),
                 ("is_verified", False): _l("%(kind)s marked not verified."),
                 ("do_not_contact", True): _l("%(kind)s marked do not contact."),
                 ("do_not_contact", False): _l("%(kind)s marked contactable.")}


def _contacts_panel(cif: str, message: str, changed: bool = True):
    response = current_app.make_response(
        render_template("cases/_panel_contacts.html", **_context(_load(cif), message=message)))
    if changed:
        response.headers["HX-Trigger"] = "contacts-updated"
    return response


def _contact_form_errors(cif: str, kind: contacts.ContactKind, row, errors: dict):
    """The form again with its errors, swapped in place of the form (not the panel)."""
    response = current_app.make_response((
        render_template("cases/_contact_form.html", cif=cif, kind=kind, row=row,
                        values=ContactForm().submitted(), errors=errors), 422))
    response.headers["HX-Retarget"] = "#contact-form-slot"
    response.headers["HX-Reswap"] = "innerHTML"
    return response


@bp.post("/<cif>/contacts/<kind>")
@permission_required("cases.work")
def contact_create(cif: str, kind: str):
    _load(cif)
    k = _kind(kind)
    try:
        contacts.add_contact(db.session, current_user, cif, k.name, ContactForm().submitted())
        db.session.commit()
    except contacts.ContactValidationError as exc:
        db.session.rollback()
        return _contact_form_errors(cif, k, None, exc.errors)
    return _contacts_panel(cif, _("%(kind)s added.", kind=KIND_NAMES[k.name]))


@bp.post("/<cif>/contacts/<kind>/<int:contact_id>")
@permission_required("cases.work")
def contact_update(cif: str, kind: str, contact_id: int):
    k = _kind(kind)
    row = _contact(k, cif, contact_id)
    try:
        saved = contacts.update_contact(db.session, current_user, cif, k.name, contact_id,
                                        ContactForm().submitted())
        db.session.commit()
    except contacts.ContactValidationError as exc:
        db.session.rollback()
        return _contact_form_errors(cif, k, row, exc.errors)
    if saved is None:
        db.session.rollback()
        return _contacts_panel(cif, NOTHING_CHANGED, changed=False)
    return _contacts_panel(cif, contact_saved_message(k.name, row, saved))


@bp.post("/<cif>/contacts/<kind>/<int:contact_id>/flags")
@permission_required("cases.work")
def contact_flag(cif: str, kind: str, contact_id: int):
    k = _kind(kind)
    _contact(k, cif, contact_id)
    form = ContactFlagForm()
    flag, value = form.flag.data or "", bool(form.value.data)
    if flag not in contacts.FLAGS:
        abort(400, description="Unknown flag.")
    if contacts.set_flag(db.session, current_user, cif, k.name, contact_id, flag, value) is None:
        db.session.rollback()
        return _contacts_panel(cif, NOTHING_CHANGED, changed=False)
    db.session.commit()
    return _contacts_panel(cif, FLAG_MESSAGES[flag, value] % {"kind": KIND_NAMES[k.name]})


OPT_OUT_MESSAGES = {True: _l("%(kind)s: no more SMS or e-mail to it."),
                    False: _l("%(kind)s: messages allowed again.")}


@bp.post("/<cif>/contacts/<kind>/<int:contact_id>/messages-opt-out")
@permission_required("cases.work")
def contact_messages_opt_out(cif: str, kind: str, contact_id: int):
    """The customer asked for no SMS (e-mail) on this number (address), or for them again:
    on the row itself (bank rows too: the bank's sync does not carry it); audited."""
    if kind not in ("phone", "email"):
        abort(404)
    row = _contact(_kind(kind), cif, contact_id)
    value = bool(ContactFlagForm().value.data)
    if not contacts.set_messages_opt_out(db.session, row, value, current_user):
        db.session.rollback()
        return _contacts_panel(cif, NOTHING_CHANGED, changed=False)
    db.session.commit()
    return _contacts_panel(cif, OPT_OUT_MESSAGES[value] % {"kind": KIND_NAMES[kind]})
