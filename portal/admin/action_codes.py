"""Admin: the action-code catalogue — type → subtype → result, flags (right-party contact,
promise to pay), follow-up offset, order and active. Codes are never deleted (actions refer to
them): an admin deactivates one instead. Every change is audited."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from wtforms import BooleanField, IntegerField, SelectField, StringField
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from portal import audit
from portal.admin.views import bp
from portal.extensions import db, partial_request
from portal.labels import COMMON
from portal.models import Action, ActionCode
from portal.models.enums import ACTION_TYPES
from portal.permissions.decorators import permission_required

CODE_PATTERN = Regexp(r"^[A-Z0-9_]+$", message=_l("Use capital letters, digits and _ only "
                                                    "(e.g. NO_ANSWER)."))
FIELDS = ("type", "subtype", "result", "label", "is_contact", "is_promise", "follow_up_days",
          "sort_order", "active")


class ActionCodeForm(FlaskForm):
    type = SelectField(_l("Type"),
                       choices=[SelectChoice(t, COMMON.get(t.lower(), t.title()))
                                for t in ACTION_TYPES],
                       validators=[DataRequired(_l("Choose a type."))])
    subtype = StringField(_l("Subtype"), filters=[lambda v: (v or "").strip().upper() or None],
                          validators=[DataRequired(_l("Enter a subtype, e.g. OUTBOUND.")),
                                      Length(max=40), CODE_PATTERN],
                          description=_l("Groups results, e.g. OUTBOUND, INBOUND, HOME, WORK."))
    result = StringField(_l("Result"), filters=[lambda v: (v or "").strip().upper() or None],
                         validators=[DataRequired(_l("Enter a result code, e.g. NO_ANSWER.")),
                                     Length(max=40), CODE_PATTERN])
    label = StringField(_l("Label"), filters=[lambda v: (v or "").strip() or None],
                        validators=[DataRequired(_l("Enter the label agents see.")),
                                    Length(max=120)],
                        description=_l("What agents see in the result dropdown."))
    is_contact = BooleanField(_l("Right-party contact"),
                              description=_l("The customer (or their authorised person) was "
                                             "reached."))
    is_promise = BooleanField(_l("Captures a promise to pay"),
                              description=_l("The agent must enter an amount and a date."))
    follow_up_days = IntegerField(
        _l("Follow-up after (days)"),
        validators=[Optional(), NumberRange(0, 365, _l("Enter 0 to 365 days, or leave empty."))],
        description=_l("Pre-fills the next follow-up date; empty: no automatic follow-up."))
    sort_order = IntegerField(_l("Order"), default=0,
                              validators=[Optional(),
                                          NumberRange(0, 9999, _l("Enter 0 to 9999."))],
                              description=_l("Lower comes first within its subtype."))
    active = BooleanField(_l("Active"), default=True,
                          description=_l("Inactive codes are hidden from agents; past actions "
                                         "keep them."))


def _code_words(*parts: str) -> str:
    """"CALL / OUTBOUND / NO_ANSWER": a code as admins read it."""
    return " / ".join(parts)


def _values(code: ActionCode) -> dict:
    return {name: getattr(code, name) for name in FIELDS}


def _tree(session: Session) -> tuple[list[dict], dict[int, int]]:
    """([{type, subtypes: [{subtype, codes}], count}] in type order, then sort order;
    {action code id: number of actions recorded with it})."""
    codes = session.scalars(select(ActionCode).order_by(
        ActionCode.type, ActionCode.subtype, ActionCode.sort_order, ActionCode.result)).all()
    usage = dict(session.execute(
        select(Action.action_code_id, func.count()).where(Action.action_code_id.is_not(None))
        .group_by(Action.action_code_id)).all())
    order = {t: i for i, t in enumerate(ACTION_TYPES)}
    types: dict[str, dict[str, list]] = {}
    for code in codes:
        types.setdefault(code.type, {}).setdefault(code.subtype, []).append(code)
    return [
        {"type": t, "subtypes": [{"subtype": s, "codes": c} for s, c in subs.items()],
         "count": sum(len(c) for c in subs.values())}
        for t, subs in sorted(types.items(), key=lambda item: order.get(item[0], 99))
    ], usage


def save_action_code(session: Session, form: ActionCodeForm, actor,
                     code: ActionCode | None = None) -> ActionCode | None:
    """Create or update from a validated form; None (and an error on the form) when the
    type/subtype/result already exists. Audited; no commit."""
    duplicate = session.scalar(select(ActionCode).where(
        ActionCode.type == form.type.data, ActionCode.subtype == form.subtype.data,
        ActionCode.result == form.result.data,
        ActionCode.id != (code.id if code else -1)))
    if duplicate is not None:
        form.result.errors = [*form.result.errors,
                              _("%(code)s already exists (“%(label)s”).",
                                code=_code_words(form.type.data, form.subtype.data,
                                                 form.result.data), label=duplicate.label)]
        return None
    before = _values(code) if code else None
    if code is None:
        code = ActionCode()
        session.add(code)
    code.type, code.subtype, code.result = form.type.data, form.subtype.data, form.result.data
    code.label = form.label.data
    code.is_contact, code.is_promise = bool(form.is_contact.data), bool(form.is_promise.data)
    code.follow_up_days = form.follow_up_days.data
    code.sort_order = form.sort_order.data or 0
    code.active = bool(form.active.data)
    session.flush()
    after = _values(code)
    if before != after:
        audit.record(session, actor, "action_code.create" if before is None
                     else "action_code.update", "action_code", code.id, before=before,
                     after=after)
    return code


def _render(form: ActionCodeForm, editing: ActionCode | None = None, status: int = 200):
    tree, usage = _tree(db.session)
    template = "admin/action_code_edit.html" if editing else "admin/action_codes.html"
    return render_template(template, form=form, tree=tree, usage=usage, editing=editing,
                           types=ACTION_TYPES), status


@bp.get("/action-codes")
@permission_required("admin.workflow")
def action_codes():
    form = ActionCodeForm(formdata=None)
    if request.args.get("type") in ACTION_TYPES:
        form.type.data = request.args["type"]
    if request.args.get("subtype"):
        form.subtype.data = request.args["subtype"][:40].upper()
    return _render(form)


@bp.post("/action-codes")
@permission_required("admin.workflow")
def create_action_code():
    form = ActionCodeForm()
    if not form.validate_on_submit():
        return _render(form, status=422)
    code = save_action_code(db.session, form, current_user)
    if code is None:
        db.session.rollback()
        return _render(form, status=422)
    db.session.commit()
    flash(_("Action code %(code)s added.",
            code=_code_words(code.type, code.subtype, code.result)), "success")
    return redirect(url_for("admin.action_codes") + f"#code-{code.id}")


@bp.get("/action-codes/<int:code_id>")
@permission_required("admin.workflow")
def edit_action_code(code_id: int):
    code = db.session.get(ActionCode, code_id) or abort(404)
    return _render(ActionCodeForm(formdata=None, obj=code), editing=code)


@bp.post("/action-codes/<int:code_id>")
@permission_required("admin.workflow")
def update_action_code(code_id: int):
    code = db.session.get(ActionCode, code_id) or abort(404)
    form = ActionCodeForm()
    if not form.validate_on_submit() or save_action_code(db.session, form, current_user,
                                                         code) is None:
        db.session.rollback()
        code = db.session.get(ActionCode, code_id)
        return _render(form, editing=code, status=422)
    db.session.commit()
    flash(_("Action code %(code)s saved.",
            code=_code_words(code.type, code.subtype, code.result)), "success")
    return redirect(url_for("admin.action_codes") + f"#code-{code.id}")


@bp.post("/action-codes/<int:code_id>/toggle")
@permission_required("admin.workflow")
def toggle_action_code(code_id: int):
    """Activate or deactivate (HTMX: returns the row)."""
    code = db.session.get(ActionCode, code_id) or abort(404)
    before = _values(code)
    code.active = not code.active
    audit.record(db.session, current_user, "action_code.update", "action_code", code.id,
                 before=before, after=_values(code))
    db.session.commit()
    if partial_request():
        _codes, usage = _tree(db.session)
        return render_template("admin/_action_code_row.html", code=code, usage=usage)
    flash(_("%(label)s: activated.", label=code.label) if code.active
          else _("%(label)s: deactivated.", label=code.label), "success")
    return redirect(url_for("admin.action_codes") + f"#code-{code.id}")
