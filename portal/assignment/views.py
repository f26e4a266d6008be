"""Assignment pages: parse the form, call portal.assignment.operations, render (errors → 422)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user

from portal.assignment import operations as assignment
from portal.assignment import queries
from portal.assignment.forms import (
    AutoDistributeForm,
    BulkAssignForm,
    CsvApplyForm,
    CsvUploadForm,
    filter_from_query,
)
from portal.assignment.operations import AssignmentError, CaseFilter
from portal.extensions import db
from portal.permissions.decorators import permission_required

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
