"""Admin: the dictionaries of statuses people set on a case (portal/cases/statuses.py) — add a
value, edit its words, colour and order, retire or reactivate it. A value in use (a case holds
it, a history row names it, it has substates, or the system moves cases to it) is never
deleted: deleting it is refused with the reason, and it can be retired instead. Every change is
audited."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select, union_all
from sqlalchemy.orm import Session
from wtforms import BooleanField, IntegerField, SelectField, StringField
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from portal import audit
from portal.admin.views import bp
from portal.cases import statuses
from portal.extensions import db, partial_request
from portal.i18n import current_locale
from portal.models import Case, CaseStatusChange, StatusValue
from portal.models.enums import CASE_PROCESSING_STATES, STATUS_KINDS
from portal.permissions.decorators import permission_required

FIELDS = ("kind", "code", "parent_id", "label_vi", "label_en", "colour", "sort_order", "active")


def _strip(value):
    return (value or "").strip() or None


class StatusValueForm(FlaskForm):
    kind = SelectField(_l("List"), validators=[DataRequired(_l("Choose a list."))])
    code = StringField(
        _l("Code"), filters=[lambda v: (v or "").strip().lower() or None],
        validators=[DataRequired(_l("Enter a code, e.g. refuses_to_pay.")), Length(max=40),
                    Regexp(r"^[a-z0-9_]+$", message=_l("Use small letters, digits and _ only "
                                                        "(e.g. refuses_to_pay)."))],
        description=_l("Fixed once saved: reports and filters use it."))
    parent_id = SelectField(_l("Substate of"), coerce=str, default="",
                            description=_l("Processing states only: leave empty for a state."))
    label_vi = StringField(_l("Label in Vietnamese"), filters=[_strip],
                           validators=[DataRequired(_l("Enter the Vietnamese label.")),
                                       Length(max=120)])
    label_en = StringField(_l("Label in English"), filters=[_strip],
                           validators=[DataRequired(_l("Enter the English label.")),
                                       Length(max=120)])
    colour = StringField(_l("Colour"), default="#607d8b",
                         filters=[lambda v: (v or "").strip().lower() or None],
                         validators=[DataRequired(_l("Choose a colour.")),
                                     Regexp(r"^#[0-9a-f]{6}$",
                                            message=_l("Enter a colour as #rrggbb."))],
                         render_kw={"type": "color"})
    sort_order = IntegerField(_l("Order"), default=0,
                              validators=[Optional(), NumberRange(0, 9999,
                                                                  _l("Enter 0 to 9999."))])
    active = BooleanField(_l("Active"), default=True,
                          description=_l("Retired values are not offered to agents; cases that "
                                         "hold one keep it."))

    def __init__(self, *args, session: Session, editing: StatusValue | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        language = current_locale().language
        self.kind.choices = [SelectChoice(k, statuses.KIND_NAMES[k]) for k in STATUS_KINDS]
        states = statuses.dictionary(session, "processing_state", top_level=True)
        self.parent_id.choices = [SelectChoice("", _("None: a state of its own"))] + [
            SelectChoice(str(s.id), s.label(language)) for s in states
            if editing is None or s.id != editing.id]


def _values(value: StatusValue) -> dict:
    return {name: getattr(value, name) for name in FIELDS}


def usage(session: Session, ids: list[int] | None = None) -> dict[int, int]:
    """{value id: how many cases hold it and history rows name it}."""
    refs = [select(getattr(Case, column).label("value_id"))
            for column in (*statuses.CASE_COLUMN.values(), "processing_substate_id")]
    refs.append(select(StatusValue.id.label("value_id")).join(
        Case, (Case.processing_state == StatusValue.code)
        & (StatusValue.kind == "processing_state") & StatusValue.parent_id.is_(None)))
    refs += [select(getattr(CaseStatusChange, column).label("value_id")) for column in (
        "value_id", "substate_id", "previous_value_id", "previous_substate_id")]
    every = union_all(*refs).subquery()
    query = select(every.c.value_id, func.count()).where(every.c.value_id.is_not(None))
    if ids is not None:
        query = query.where(every.c.value_id.in_(ids))
    return dict(session.execute(query.group_by(every.c.value_id)).all())


def why_not_deletable(session: Session, value: StatusValue) -> str | None:
    """Why ``value`` may not be deleted (retire it instead), or None."""
    if value.kind == "processing_state" and value.parent_id is None \
            and value.code in CASE_PROCESSING_STATES:
        return _("The system moves cases to this processing state: it cannot be deleted. "
                 "Retire it instead.")
    used = usage(session, [value.id]).get(value.id, 0)
    if used:
        return _("This value is in use (%(num)s cases or history entries): it cannot be "
                 "deleted. Retire it instead; the cases that hold it keep it.", num=used)
    if session.scalar(select(func.count()).select_from(StatusValue)
                      .where(StatusValue.parent_id == value.id)):
        return _("This state has substates: delete or move them first, or retire it.")
    return None


def save_status_value(session: Session, form: StatusValueForm, actor,
                      value: StatusValue | None = None) -> StatusValue | None:
    """Create or update from a validated form; None (and an error on the form) when the code
    is taken or the parent is not a processing state. Audited; no commit."""
    kind = value.kind if value else form.kind.data
    code = value.code if value else form.code.data
    parent = None
    if form.parent_id.data:
        parent = session.get(StatusValue, int(form.parent_id.data)) \
            if form.parent_id.data.isdecimal() else None
        if kind != "processing_state" or parent is None or parent.kind != kind \
                or parent.parent_id is not None or (value and parent.id == value.id):
            form.parent_id.errors = [*form.parent_id.errors, _(
                "Only a processing state has substates: choose one, or leave this empty.")]
            return None
    if value and parent and session.scalar(select(func.count()).select_from(StatusValue)
                                           .where(StatusValue.parent_id == value.id)):
        form.parent_id.errors = [*form.parent_id.errors,
                                 _("This state has substates: it cannot become one.")]
        return None
    if value is None and session.scalar(select(StatusValue).where(
            StatusValue.kind == kind, StatusValue.code == code)) is not None:
        form.code.errors = [*form.code.errors, _("This list already has the code %(code)s.",
                                                 code=code)]
        return None
    if value and (value.parent_id != (parent.id if parent else None)) \
            and usage(session, [value.id]).get(value.id):
        form.parent_id.errors = [*form.parent_id.errors, _(
            "This value is in use: it cannot move to another state.")]
        return None
    before = _values(value) if value else None
    if value is None:
        value = StatusValue(kind=kind, code=code)
        session.add(value)
    value.parent_id = parent.id if parent else None
    value.label_vi, value.label_en = form.label_vi.data, form.label_en.data
    value.colour = form.colour.data
    value.sort_order = form.sort_order.data or 0
    value.active = bool(form.active.data)
    session.flush()
    after = _values(value)
    if before != after:
        audit.record(session, actor, "status_value.create" if before is None
                     else "status_value.update", "status_value", value.id, before=before,
                     after=after)
    return value


def _lists(session: Session) -> list[dict]:
    """Each dictionary with its states and, under each, its substates."""
    every = list(session.scalars(select(StatusValue).order_by(
        StatusValue.kind, StatusValue.sort_order, StatusValue.code)))
    lists = []
    for kind in STATUS_KINDS:
        values = [v for v in every if v.kind == kind]
        tops = [v for v in values if v.parent_id is None]
        lists.append({"kind": kind, "name": statuses.KIND_NAMES[kind], "count": len(values),
                      "rows": [(top, [v for v in values if v.parent_id == top.id])
                               for top in tops]})
    return lists


def _render(form: StatusValueForm, editing: StatusValue | None = None, status: int = 200,
            refusal: str | None = None):
    template = "admin/status_value_edit.html" if editing else "admin/statuses.html"
    return render_template(template, form=form, lists=_lists(db.session),
                           usage=usage(db.session), editing=editing, refusal=refusal,
                           status_kind_names=statuses.KIND_NAMES), status


@bp.get("/statuses", endpoint="statuses")
@permission_required("admin.workflow")
def statuses_page():
    form = StatusValueForm(formdata=None, session=db.session)
    if request.args.get("kind") in STATUS_KINDS:
        form.kind.data = request.args["kind"]
    parent = request.args.get("parent_id") or ""
    if parent.isdecimal():
        form.kind.data, form.parent_id.data = "processing_state", parent
    return _render(form)



@bp.post("/statuses")
@permission_required("admin.workflow")
def create_status_value():
    form = StatusValueForm(session=db.session)
    if not form.validate_on_submit():
        return _render(form, status=422)
    value = save_status_value(db.session, form, current_user)
    if value is None:
        db.session.rollback()
        return _render(form, status=422)
    db.session.commit()
    flash(_("“%(label)s” added.", label=value.label(current_locale().language)), "success")
    return redirect(url_for("admin.statuses", kind=value.kind) + f"#status-{value.id}")


@bp.get("/statuses/<int:value_id>")
@permission_required("admin.workflow")
def edit_status_value(value_id: int):
    value = db.session.get(StatusValue, value_id) or abort(404)
    form = StatusValueForm(formdata=None, obj=value, session=db.session, editing=value)
    form.parent_id.data = str(value.parent_id) if value.parent_id else ""
    return _render(form, editing=value)


@bp.post("/statuses/<int:value_id>")
@permission_required("admin.workflow")
def update_status_value(value_id: int):
    value = db.session.get(StatusValue, value_id) or abort(404)
    form = StatusValueForm(session=db.session, editing=value)
    # the list and the code are fixed once saved
    form.kind.data, form.code.data = value.kind, value.code
    if not form.validate_on_submit() or save_status_value(db.session, form, current_user,
                                                          value) is None:
        db.session.rollback()
        return _render(form, editing=db.session.get(StatusValue, value_id), status=422)
    db.session.commit()
    flash(_("“%(label)s” saved.", label=value.label(current_locale().language)), "success")
    return redirect(url_for("admin.statuses", kind=value.kind) + f"#status-{value.id}")


@bp.post("/statuses/<int:value_id>/toggle")
@permission_required("admin.workflow")
def toggle_status_value(value_id: int):
    """Retire or reactivate (HTMX: returns the row)."""
    value = db.session.get(StatusValue, value_id) or abort(404)
    before = _values(value)
    value.active = not value.active
    audit.record(db.session, current_user, "status_value.update", "status_value", value.id,
                 before=before, after=_values(value))
    db.session.commit()
    if partial_request():
        return render_template("admin/_status_value_row.html", value=value,
                               usage=usage(db.session, [value.id]), sub=value.parent_id)
    label = value.label(current_locale().language)
    flash(_("“%(label)s” reactivated.", label=label) if value.active
          else _("“%(label)s” retired.", label=label), "success")
    return redirect(url_for("admin.statuses", kind=value.kind) + f"#status-{value.id}")


@bp.post("/statuses/<int:value_id>/delete")
@permission_required("admin.workflow")
def delete_status_value(value_id: int):
    """Delete a value nobody uses; a value in use is refused (409) with the reason."""
    value = db.session.get(StatusValue, value_id) or abort(404)
    reason = why_not_deletable(db.session, value)
    if reason is not None:
        form = StatusValueForm(formdata=None, obj=value, session=db.session, editing=value)
        form.parent_id.data = str(value.parent_id) if value.parent_id else ""
        return _render(form, editing=value, status=409, refusal=reason)
    label, kind = value.label(current_locale().language), value.kind
    audit.record(db.session, current_user, "status_value.delete", "status_value", value.id,
                 before=_values(value))
    db.session.delete(value)
    db.session.commit()
    flash(_("“%(label)s” deleted.", label=label), "success")
    return redirect(url_for("admin.statuses", kind=kind))

