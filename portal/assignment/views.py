"""Assignment pages: parse the form, call portal.assignment.operations, render (errors → 422)."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import select

from portal.assignment import operations as assignment
from portal.assignment import queries
from portal.assignment.forms import (
    AutoDistributeForm,
    BulkAssignForm,
    CaseReassignForm,
    CsvApplyForm,
    CsvUploadForm,
    filter_from_query,
)
from portal.assignment.operations import AssignmentError, CaseFilter
from portal.extensions import db
from portal.models import Case
from portal.permissions.decorators import permission_required
from portal.permissions.roles import can

bp = Blueprint("assignment", __name__, url_prefix="/supervisor/assignment")

PAGE_SIZE = 50
STRATEGY_WORDS = {"balance": _l("balance"), "round_robin": _l("round robin"),
                  "nearest": _l("nearest")}


def _index_page(case_filter: CaseFilter, error: str | None = None) -> str:
    return render_template("assignment/index.html", error=error, **queries.index_page(
        db.session, current_user, case_filter, limit=PAGE_SIZE))


def _upload_page(preview: assignment.CsvPreview | None, content: str, error: str | None) -> str:
    return render_template("assignment/upload.html", preview=preview, content=content,
                           error=error)


@bp.get("/")
@permission_required("supervisor.assign")
def index():
    return _index_page(filter_from_query(request.args))


@bp.post("/bulk")
@permission_required("supervisor.assign")
def bulk():
    form = BulkAssignForm()
    case_filter = form.case_filter()
    if not form.validate():
        return _index_page(case_filter, error=form.first_error()), 422
    try:
        result = assignment.assign_filtered(db.session, current_user, case_filter,
                                            form.agent_id(), reason=form.reason.data,
                                            case_ids=form.case_ids())
        db.session.commit()
    except AssignmentError as exc:
        db.session.rollback()
        return _index_page(case_filter, error=str(exc)), 422
    flash(_("%(summary)s.", summary=result.summary()), "success")
    return redirect(url_for("assignment.index", role=case_filter.role,
                            team=case_filter.team_id or "",
                            agent=("none" if case_filter.agent_id == 0
                                   else case_filter.agent_id or ""),
                            bucket=case_filter.bucket or ""))


@bp.post("/auto")
@permission_required("supervisor.assign")
def auto():
    form = AutoDistributeForm()
    role = form.role.data
    if not form.validate():
        return _index_page(CaseFilter(role=role), error=form.first_error()), 422
    try:
        plan, result = assignment.distribute(db.session, current_user, team_id=form.team.data,
                                             role=role, strategy=form.strategy.data,
                                             limit=form.limit.data)
        db.session.commit()
    except AssignmentError as exc:
        db.session.rollback()
        return _index_page(CaseFilter(role=role), error=str(exc)), 422
    flash(_("Automatic distribution (%(strategy)s): %(summary)s.",
            strategy=STRATEGY_WORDS.get(plan.strategy, plan.strategy), summary=result.summary()),
          "success")
    return redirect(url_for("assignment.index", role=role, team=form.team.data))


@bp.post("/upload")
@permission_required("supervisor.assign")
def upload():
    content, error = CsvUploadForm().csv_text()
    if error:
        return _upload_page(None, "", error), 422
    preview = assignment.preview_csv(db.session, current_user, content)
    return _upload_page(preview, content, preview.fatal), 200 if preview.ok else 422


@bp.get("/upload")
@permission_required("supervisor.assign")
def upload_form():
    return _upload_page(None, "", None)


@bp.post("/upload/apply")
@permission_required("supervisor.assign")
def apply_upload():
    form = CsvApplyForm()
    content = form.content.data
    try:
        preview, results = assignment.apply_csv(db.session, current_user, content,
                                                skip_invalid=form.skip_invalid.data)
        db.session.commit()
    except AssignmentError as exc:
        db.session.rollback()
        preview = assignment.preview_csv(db.session, current_user, content)
        return _upload_page(preview, content, str(exc)), 422
    changed = sum(r.changed for r in results)
    skipped = _(", %(num)d line(s) with errors skipped", num=len(preview.errors)) \
        if preview.errors else ""
    flash(ngettext("CSV applied: %(num)d case assigned%(skipped)s.",
                   "CSV applied: %(num)d cases assigned%(skipped)s.", changed, skipped=skipped),
          "success")
    return redirect(url_for("assignment.index"))


# --- one case, from the case view (an HTMX card the case view loads) -------------------------


def _case(cif: str) -> Case:
    case = db.session.scalar(select(Case).where(Case.cif == cif))
    if case is None:
        abort(404)
    return case


def _case_card(case: Case, *, values: dict | None = None, errors: dict | None = None,
               message: str | None = None, status: int = 200):
    """The case's assignment history, and (supervisor.assign) the reassignment form."""
    may_assign = can("supervisor.assign")
    agents = assignment.assignable_agents(db.session, current_user) if may_assign else []
    return current_app.make_response((render_template(
        "assignment/_case_card.html", case=case,
        history=assignment.history_rows(db.session, case.id), may_assign=may_assign,
        agents=agents, holders={"agent": case.assigned_agent_id,
                                "field_agent": case.assigned_field_agent_id},
        values=values or {}, errors=errors or {}, message=message), status))


@bp.get("/cases/<cif>")
@permission_required("cases.view")
def case_card(cif: str):
    return _case_card(_case(cif))


@bp.post("/cases/<cif>")
@permission_required("supervisor.assign")
def reassign_case(cif: str):
    case = _case(cif)
    form = CaseReassignForm()
    values = {name: field.raw_data[0] for name, field in (("agent", form.agent),
                                                          ("reason", form.reason))
              if field.raw_data}
    if not form.validate():
        return _case_card(case, values=values, errors=form.field_errors(), status=422)
    try:
        result = assignment.reassign_case(db.session, current_user, case.id, form.agent.data,
                                          form.reason.data)
        db.session.commit()
    except AssignmentError as exc:
        db.session.rollback()
        return _case_card(_case(cif), values=values, errors={"agent": str(exc)}, status=422)
    db.session.refresh(case)
    response = _case_card(case, message=_("Case reassigned.") if result.changed
                          else _("Nothing changed: the case is already with this agent."))
    if result.changed:
        response.headers["HX-Trigger"] = "case-updated"  # the header shows the new agent
    return response
