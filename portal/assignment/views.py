"""Assignment pages: parse the form, call portal.assignment.operations, render (errors → 422)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.assignment import operations as assignment
from portal.assignment.operations import AssignmentError, CaseFilter
from portal.extensions import db
from portal.models import Customer, Team, User
from portal.models.enums import BUCKET_NAMES
from portal.permissions.decorators import permission_required

bp = Blueprint("assignment", __name__, url_prefix="/supervisor/assignment")

PAGE_SIZE = 50
MAX_UPLOAD_BYTES = 2 * 1024 * 1024


def _int(value) -> int | None:
    return int(value) if value and str(value).isdigit() else None


def _filter(source) -> CaseFilter:
    role = source.get("role") if source.get("role") in assignment.ROLE_COLUMNS else "agent"
    raw_agent = source.get("agent", "")
    return CaseFilter(role=role, agent_id=0 if raw_agent == "none" else _int(raw_agent),
                      team_id=_int(source.get("team")),
                      bucket=source.get("bucket") if source.get("bucket") in BUCKET_NAMES
                      else None)


def _context(case_filter: CaseFilter, **extra):
    teams = assignment.team_ids_for(db.session, current_user)
    agents = assignment.assignable_agents(db.session, current_user)
    cases, total = assignment.find_cases(db.session, current_user, case_filter,
                                         limit=PAGE_SIZE)
    names = {u.id: u.full_name for u in db.session.query(User).filter(User.id.in_(
        {c.assigned_agent_id for c in cases} | {c.assigned_field_agent_id for c in cases}
        | {-1}))}
    loads = assignment.queue_counts(db.session, [a.id for a in agents if a.role == "agent"])
    loads.update(assignment.queue_counts(
        db.session, [a.id for a in agents if a.role == "field_agent"], role="field_agent"))
    customers = dict(db.session.execute(select(Customer.cif, Customer.name).where(
        Customer.cif.in_([c.cif for c in cases] or [""]))).all())
    team_rows = db.session.query(Team).order_by(Team.name)
    if teams is not None:
        team_rows = team_rows.filter(Team.id.in_(teams or [-1]))
    return {"filter": case_filter, "cases": cases, "total": total, "agents": agents,
            "names": names, "customers": customers, "loads": loads, "teams": team_rows.all(),
            "buckets": BUCKET_NAMES,
            "strategies": assignment.STRATEGIES, **extra}


@bp.get("/")
@permission_required("supervisor.assign")
def index():
    return render_template("assignment/index.html", **_context(_filter(request.args)))


@bp.post("/bulk")
@permission_required("supervisor.assign")
def bulk():
    case_filter = _filter(request.form)
    target = request.form.get("target", "")
    case_ids = [int(i) for i in request.form.getlist("case_id") if i.isdigit()]
    scope_all = request.form.get("scope") == "all"
    try:
        if not target or (target != "none" and _int(target) is None):
            raise AssignmentError("Choose the agent who takes the cases.")
        if not scope_all and not case_ids:
            raise AssignmentError("Tick the cases to reassign, or choose all matching cases.")
        result = assignment.assign_filtered(
            db.session, current_user, case_filter,
            None if target == "none" else _int(target),
            reason=(request.form.get("reason") or "").strip() or None,
            case_ids=None if scope_all else case_ids)
        db.session.commit()
    except AssignmentError as exc:
        db.session.rollback()
        return render_template("assignment/index.html",
                               **_context(case_filter, error=str(exc))), 422
    flash(result.summary() + ".", "success")
    return redirect(url_for("assignment.index", role=case_filter.role,
                            team=case_filter.team_id or "",
                            agent=("none" if case_filter.agent_id == 0
                                   else case_filter.agent_id or ""),
                            bucket=case_filter.bucket or ""))


@bp.post("/auto")
@permission_required("supervisor.assign")
def auto():
    team_id = _int(request.form.get("team"))
    role = request.form.get("role") if request.form.get("role") in assignment.ROLE_COLUMNS \
        else "agent"
    try:
        if team_id is None:
            raise AssignmentError("Choose the team to distribute to.")
        if team_id not in (assignment.team_ids_for(db.session, current_user) or [team_id]):
            raise AssignmentError("That team is not one of yours.")
        plan, result = assignment.distribute(
            db.session, current_user, team_id=team_id, role=role,
            strategy=request.form.get("strategy", "balance"),
            limit=_int(request.form.get("limit")))
        db.session.commit()
    except AssignmentError as exc:
        db.session.rollback()
        return render_template("assignment/index.html",
                               **_context(CaseFilter(role=role), error=str(exc))), 422
    flash(f"Automatic distribution ({plan.strategy.replace('_', ' ')}): {result.summary()}.",
          "success")
    return redirect(url_for("assignment.index", role=role, team=team_id))


def _uploaded_text() -> str:
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        data = upload.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise AssignmentError("The file is larger than 2 MB.")
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise AssignmentError("The file is not UTF-8 text.") from None
    return request.form.get("content", "")


@bp.post("/upload")
@permission_required("supervisor.assign")
def upload():
    try:
        content = _uploaded_text()
    except AssignmentError as exc:
        return render_template("assignment/upload.html", preview=None, content="",
                               error=str(exc)), 422
    if not content.strip():
        return render_template("assignment/upload.html", preview=None, content="",
                               error="Choose a CSV file (columns cif,agent)."), 422
    preview = assignment.preview_csv(db.session, current_user, content)
    status = 200 if preview.ok else 422
    return render_template("assignment/upload.html", preview=preview, content=content,
                           error=preview.fatal), status


@bp.get("/upload")
@permission_required("supervisor.assign")
def upload_form():
    return render_template("assignment/upload.html", preview=None, content="", error=None)


@bp.post("/upload/apply")
@permission_required("supervisor.assign")
def apply_upload():
    content = request.form.get("content", "")
    skip = request.form.get("skip_invalid") == "1"
    try:
        preview, results = assignment.apply_csv(db.session, current_user, content,
                                                skip_invalid=skip)
        db.session.commit()
    except AssignmentError as exc:
        db.session.rollback()
        preview = assignment.preview_csv(db.session, current_user, content)
        return render_template("assignment/upload.html", preview=preview, content=content,
                               error=str(exc)), 422
    changed = sum(r.changed for r in results)
    skipped = f", {len(preview.errors)} line(s) with errors skipped" if preview.errors else ""
    flash(f"CSV applied: {changed} case{'s' if changed != 1 else ''} assigned{skipped}.",
          "success")
    return redirect(url_for("assignment.index"))
