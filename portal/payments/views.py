"""Pages: reconciliation runs and discrepancies (resolve with a note, audited), refused webhook
notifications (ops), and the case's live payments partial (agents; polled by HTMX)."""

from __future__ import annotations

from datetime import date

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import func, select

from portal import audit, clock
from portal.extensions import db
from portal.models import Case, Customer, Discrepancy, ReconciliationRun
from portal.models.enums import DISCREPANCY_KINDS, DISCREPANCY_STATUSES
from portal.models.payments import RejectedNotification
from portal.notifications import operations as inbox
from portal.payments import live
from portal.permissions.decorators import permission_required
from portal.queues import enqueue

bp = Blueprint("payments", __name__, url_prefix="/payments")

PAGE_SIZE = 50
RESOLUTION_MAX = 2000


def _page() -> int:
    return max(1, request.args.get("page", 1, type=int) or 1)


# -- ops: reconciliation -------------------------------------------------------------------------


@bp.get("/reconciliation")
@permission_required("ops.integrations")
def reconciliation():
    status = request.args.get("status", "open")
    kind = request.args.get("kind") or None
    day = request.args.get("business_date") or None
    query = select(Discrepancy, ReconciliationRun.business_date).join(
        ReconciliationRun, ReconciliationRun.id == Discrepancy.run_id
    ).where(ReconciliationRun.integration == "PAYMENTS")
    if status in DISCREPANCY_STATUSES:
        query = query.where(Discrepancy.status == status)
    if kind in DISCREPANCY_KINDS:
        query = query.where(Discrepancy.kind == kind)
    business_date = None
    if day:
        try:
            business_date = date.fromisoformat(day)
            query = query.where(ReconciliationRun.business_date == business_date)
        except ValueError:
            flash("The business date must be YYYY-MM-DD.", "error")
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    page = _page()
    rows = db.session.execute(
        query.order_by(Discrepancy.created_at.desc(), Discrepancy.id.desc())
        .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    ).all()
    runs = db.session.scalars(
        select(ReconciliationRun).where(ReconciliationRun.integration == "PAYMENTS")
        .order_by(ReconciliationRun.started_at.desc()).limit(10)
    ).all()
    return render_template(
        "payments/reconciliation.html", rows=rows, runs=runs, total=total, page=page,
        pages=max(1, -(-total // PAGE_SIZE)), status=status, kind=kind, business_date=day,
        kinds=DISCREPANCY_KINDS, statuses=DISCREPANCY_STATUSES,
        yesterday=clock.add_days(clock.bank_today(), -1),
    )


@bp.post("/discrepancies/<int:discrepancy_id>/resolve")
@permission_required("ops.actions")
def resolve_discrepancy(discrepancy_id: int):
    row = db.session.get(Discrepancy, discrepancy_id, with_for_update=True)
    if row is None:
        abort(404)
    note = (request.form.get("note") or "").strip()
    outcome = request.form.get("outcome", "resolved")
    if outcome not in ("resolved", "ignored"):
        outcome = "resolved"
    if not note or len(note) > RESOLUTION_MAX:
        flash(f"Write a note (at most {RESOLUTION_MAX} characters) saying how it was resolved.",
              "error")
        return redirect(request.referrer or url_for("payments.reconciliation"))
    before = {"status": row.status, "resolution": row.resolution}
    row.status, row.resolution = outcome, note
    row.resolved_by_id, row.resolved_at = current_user.id, clock.now()
    audit.record(db.session, current_user, "discrepancy.resolve", "discrepancy", row.id,
                 before=before, after={"status": outcome, "resolution": note,
                                       "kind": row.kind, "key": row.key})
    db.session.commit()
    flash(f"Discrepancy {row.key} marked {outcome}.", "success")
    return redirect(request.referrer or url_for("payments.reconciliation"))


@bp.post("/reconciliation/run")
@permission_required("ops.actions")
def run_reconciliation():
    day = request.form.get("business_date") or ""
    try:
        business_date = date.fromisoformat(day)
    except ValueError:
        flash("The business date must be YYYY-MM-DD.", "error")
        return redirect(url_for("payments.reconciliation"))

    try:
        enqueue("integrations", "workers.jobs.payments.run_payments_reconciliation",
                business_date.isoformat(), "manual", current_user.id)
    except Exception:  # Redis down: say so instead of failing the page
        flash("The job queue is unavailable; try again in a moment.", "error")
        return redirect(url_for("payments.reconciliation"))
    audit.record(db.session, current_user, "payments.reconcile", "integration", "PAYMENTS",
                 after={"business_date": business_date.isoformat()})
    db.session.commit()
    flash(f"Reconciliation of {business_date:%d/%m/%Y} queued.", "success")
    return redirect(url_for("payments.reconciliation", status="all"))


# -- ops: refused notifications ------------------------------------------------------------------


@bp.get("/rejected")
@permission_required("ops.integrations")
def rejected():
    code = request.args.get("code") or None
    query = select(RejectedNotification).where(RejectedNotification.integration == "PAYMENTS")
    if code:
        query = query.where(RejectedNotification.code == code)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    page = _page()
    rows = db.session.scalars(
        query.order_by(RejectedNotification.received_at.desc(), RejectedNotification.id.desc())
        .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    ).all()
    codes = db.session.execute(
        select(RejectedNotification.code, func.count())
        .where(RejectedNotification.integration == "PAYMENTS")
        .group_by(RejectedNotification.code).order_by(func.count().desc())
    ).all()
    if request.accept_mimetypes.best == "application/json":
        return {"total": total, "data": [{
            "id": r.id, "received_at": r.received_at.isoformat(), "status": r.status_code,
            "code": r.code, "message": r.message, "field": r.field, "event_id": r.event_id,
            "reference_number": r.reference_number, "headers": r.headers, "body": r.body,
            "body_size": r.body_size, "remote_addr": r.remote_addr} for r in rows]}
    return render_template("payments/rejected.html", rows=rows, total=total, page=page,
                           pages=max(1, -(-total // PAGE_SIZE)), code=code, codes=codes)


# -- agents: the live payments partial of a case --------------------------------------------------


@bp.get("/live/<cif>")
@permission_required("cases.view")
def case_live(cif: str):
    """The case's latest payments; polled. When they changed since ``seen``, the answer carries
    ``HX-Trigger: case-updated`` (the case view's panels reload) and the bell counter."""
    if db.session.scalar(select(Case.id).where(Case.cif == cif)) is None and \
            db.session.scalar(select(Customer.id).where(Customer.cif == cif)) is None:
        abort(404)
    state = live.case_state(db.session, cif)
    seen = request.args.get("seen")
    changed = seen is not None and seen != state.fingerprint
    response = make_response(render_template(
        "payments/_case_payments_live.html", cif=cif, state=state, changed=changed,
        unread=inbox.unread_count(db.session, current_user.id) if changed else None,
    ))
    if changed:
        response.headers["HX-Trigger"] = "case-updated"
    return response

