"""The case view's statuses (set with a reason, with their history) and the customer's master
note (edited, with its versions). Thin: parse the form, call cases.statuses, render."""

from __future__ import annotations

from flask import abort, current_app, render_template, request
from flask_babel import gettext as _
from flask_login import current_user

from portal import clock
from portal.cases import statuses
from portal.cases.forms import MasterNoteForm, StatusForm
from portal.cases.views import _context, _load, bp
from portal.extensions import db
from portal.i18n import current_locale
from portal.models import StatusValue
from portal.models.enums import STATUS_KINDS
from portal.permissions.decorators import permission_required


@bp.app_template_filter("status_label")
def status_label(value: StatusValue | None) -> str:
    """A dictionary value's words in the reader's language."""
    return value.label(current_locale().language) if value is not None else "—"


@bp.app_template_filter("badge_style")
def badge_style(value: StatusValue) -> str:
    """The inline colours of a value's badge: its colour, and black or white text, whichever
    reads better on it."""
    return f"background:{value.colour};color:{statuses.text_colour(value.colour)}"


def _case(cif: str):
    v = _load(cif)
    if v.case is None:
        abort(404)
    return v


def _kind(kind: str) -> str:
    if kind not in STATUS_KINDS:
        abort(404)
    return kind


def _form_state(v, kind: str, values: dict, errors: dict | None = None) -> dict:
    """The set-status form: the dictionary's active values, the chosen value's active
    substates (processing states), what was typed and the errors."""
    choices = statuses.dictionary(db.session, kind, active_only=True, top_level=True)
    current = next(s for s in v.statuses if s.kind == kind)
    raw = values.get("value_id") or ""
    chosen = next((c for c in choices if str(c.id) == raw), None)
    if chosen is None and not raw and current.value is not None and current.value.active:
        chosen = current.value
    substates = [s for s in statuses.dictionary(db.session, kind, active_only=True,
                                                top_level=False)
                 if chosen is not None and s.parent_id == chosen.id]
    return {"kind": kind, "kind_name": statuses.KIND_NAMES[kind], "choices": choices,
            "chosen": chosen, "substates": substates, "current": current,
            "input": values, "errors": errors or {}}


@bp.get("/<cif>/statuses/<kind>/form")
@permission_required("cases.work")
def status_form(cif: str, kind: str):
    v = _case(cif)
    state = _form_state(v, _kind(kind), dict(request.args))
    return render_template("cases/_status_form.html", **_context(v, form=state))


@bp.post("/<cif>/statuses/<kind>")
@permission_required("cases.work")
def set_status(cif: str, kind: str):
    v = _case(cif)
    _kind(kind)
    form = StatusForm()
    form.validate()
    try:
        statuses.set_status(db.session, current_user, v.case, kind, form.value_id.data,
                            form.substate_id.data, form.reason.data, clock.now())
        db.session.commit()
    except statuses.StatusValidationError as exc:
        db.session.rollback()
        state = _form_state(_case(cif), kind, form.submitted(), exc.errors)
        response = current_app.make_response((render_template(
            "cases/_status_form.html", **_context(_case(cif), form=state)), 422))
        response.headers["HX-Retarget"] = "#status-form-slot"
        response.headers["HX-Reswap"] = "innerHTML"
        return response
    response = current_app.make_response(render_template(
        "cases/_panel_statuses.html", **_context(_case(cif), message=_(
            "%(what)s saved.", what=statuses.KIND_NAMES[kind]))))
    response.headers["HX-Trigger"] = "statuses-updated"  # the header shows them
    return response


@bp.get("/<cif>/master-note/form")
@permission_required("cases.work")
def master_note_form(cif: str):
    v = _case(cif)
    return render_template("cases/_master_note_form.html",
                           **_context(v, values={"note": v.case.notes or ""}, errors={}))


@bp.post("/<cif>/master-note")
@permission_required("cases.work")
def save_master_note(cif: str):
    v = _case(cif)
    form = MasterNoteForm()
    form.validate()
    try:
        statuses.save_master_note(db.session, current_user, v.case, form.note.data, clock.now())
        db.session.commit()
    except statuses.StatusValidationError as exc:
        db.session.rollback()
        response = current_app.make_response((render_template(
            "cases/_master_note_form.html",
            **_context(_case(cif), values=form.submitted(), errors=exc.errors)), 422))
        response.headers["HX-Retarget"] = "#master-note-form-slot"
        response.headers["HX-Reswap"] = "innerHTML"
        return response
    return render_template("cases/_panel_master_note.html",
                           **_context(_case(cif), message=_("Master note saved.")))
