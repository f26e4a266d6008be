"""Pages: reconciliation runs and discrepancies (resolve with a note, audited), refused webhook
notifications (ops), camt.053/054 file imports and each one's transactions (ops), and the
case's live payments partial (agents; polled by HTMX)."""

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
from flask_babel import gettext as _
from flask_login import current_user

from integrations.payments.camt import CamtError
from portal import clock
from portal.extensions import db
from portal.i18n import format_date
from portal.labels import label
from portal.models import CamtImport
from portal.models.enums import DISCREPANCY_KINDS, DISCREPANCY_STATUSES
from portal.money import format_money
from portal.notifications import operations as inbox
from portal.payments import camt_import, discrepancies, live, queries
from portal.payments.forms import (
    DATE_MESSAGE,
    CamtUploadForm,
    ReconciliationForm,
    ResolutionForm,
    camt_upload_limit,
)
from portal.permissions.decorators import permission_required

bp = Blueprint("payments", __name__, url_prefix="/payments")


def _page() -> int:
    return max(1, request.args.get("page", 1, type=int) or 1)


def _pages(total: int) -> int:
    return max(1, -(-total // queries.PAGE_SIZE))


# -- ops: reconciliation -------------------------------------------------------------------------


@bp.get("/reconciliation")
@permission_required("ops.integrations")
def reconciliation():
    status = request.args.get("status", "open")
    kind = request.args.get("kind") or None
    day = request.args.get("business_date") or None
    business_date = None
    if day:
        try:
            business_date = date.fromisoformat(day)
        except ValueError:
            flash(str(DATE_MESSAGE), "error")
    page = _page()
    rows, total = queries.discrepancies(db.session, status=status, kind=kind,
                                        business_date=business_date, page=page)
    return render_template(
        "payments/reconciliation.html", rows=rows, runs=queries.recent_runs(db.session),
        total=total, page=page, pages=_pages(total), status=status, kind=kind,
        business_date=day, kinds=DISCREPANCY_KINDS, statuses=DISCREPANCY_STATUSES,
        yesterday=clock.add_days(clock.bank_today(), -1), money=format_money,
    )


@bp.post("/discrepancies/<int:discrepancy_id>/resolve")
@permission_required("ops.actions")
def resolve_discrepancy(discrepancy_id: int):
    row = discrepancies.locked(db.session, discrepancy_id) or abort(404)
    form = ResolutionForm()
    if not form.validate():
        flash(form.first_error(), "error")
        return redirect(request.referrer or url_for("payments.reconciliation"))
    try:
        discrepancies.resolve(db.session, row, current_user, outcome=form.outcome.data,
                              note=form.note.data)
    except discrepancies.NotOpen:
        db.session.rollback()
        flash(_("Discrepancy %(key)s is %(status)s already.", key=row.key,
                status=label(row.status).lower()), "error")
        return redirect(request.referrer or url_for("payments.reconciliation"))
    db.session.commit()
    if form.outcome.data == "ignored":
        flash(_("Discrepancy %(key)s marked ignored.", key=row.key), "success")
    else:
        flash(_("Discrepancy %(key)s marked resolved.", key=row.key), "success")
    return redirect(request.referrer or url_for("payments.reconciliation"))


@bp.post("/reconciliation/run")
@permission_required("ops.actions")
def run_reconciliation():
    form = ReconciliationForm()
    if not form.validate():
        flash(form.first_error(), "error")
        return redirect(url_for("payments.reconciliation"))
    business_date = form.business_date.data
    try:
        discrepancies.queue_reconciliation(db.session, current_user, business_date)
    except discrepancies.QueueUnavailable:
        flash(_("The job queue is unavailable; try again in a moment."), "error")
        return redirect(url_for("payments.reconciliation"))
    db.session.commit()
    flash(_("Reconciliation of %(day)s queued.", day=format_date(business_date)), "success")
    return redirect(url_for("payments.reconciliation", status="all"))


# -- ops: refused notifications ------------------------------------------------------------------


def _refused_json(r) -> dict:
    return {"id": r.id, "received_at": r.received_at.isoformat(), "status": r.status_code,
            "code": r.code, "message": r.message, "field": r.field, "event_id": r.event_id,
            "reference_number": r.reference_number, "headers": r.headers, "body": r.body,
            "body_size": r.body_size, "remote_addr": r.remote_addr}


@bp.get("/rejected")
@permission_required("ops.integrations")
def rejected():
    code = request.args.get("code") or None
    page = _page()
    rows, total = queries.refused(db.session, code=code, page=page)
    if request.accept_mimetypes.best == "application/json":
        return {"total": total, "data": [_refused_json(r) for r in rows]}
    return render_template("payments/rejected.html", rows=rows, total=total, page=page,
                           pages=_pages(total), code=code, codes=queries.refused_codes(db.session))


# -- ops: camt.053/054 files -------------------------------------------------------------------


def _camt_page(form: CamtUploadForm, error: str | None = None):
    return render_template("payments/camt_imports.html", form=form, error=error,
                           imports=queries.recent_camt_imports(db.session),
                           limit=camt_upload_limit())


@bp.get("/camt")
@permission_required("ops.integrations")
def camt_imports():
    return _camt_page(CamtUploadForm())


@bp.post("/camt")
@permission_required("ops.actions")
def upload_camt():
    form = CamtUploadForm()
    if not form.validate():
        return _camt_page(form, form.first_error()), 422
    upload = form.file.data
    try:
        result = camt_import.import_camt(db.session, upload.read(), filename=upload.filename,
                                         source="upload", user_id=current_user.id)
    except CamtError as exc:
        db.session.rollback()
        return _camt_page(form, _("The file cannot be imported: %(why)s", why=str(exc))), 422
    db.session.commit()
    return redirect(url_for("payments.camt_import_result", import_id=result.id), code=303)


@bp.get("/camt/<int:import_id>")
@permission_required("ops.integrations")
def camt_import_result(import_id: int):
    result = db.session.get(CamtImport, import_id) or abort(404)
    outcome = request.args.get("outcome")
    rows = [r for r in result.rows if r.outcome == outcome] \
        if outcome in camt_import.OUTCOME_WORDS else result.rows
    return render_template(
        "payments/camt_import.html", result=result, rows=rows, outcome=outcome,
        totals=camt_import.outcome_totals(result), reasons=camt_import.reason_words,
        outcome_words=camt_import.OUTCOME_WORDS, matched_by=camt_import.MATCHED_BY,
        checks=[camt_import.check_words(c) for c in result.checks or []], money=format_money)


# -- agents: the live payments partial of a case --------------------------------------------------


@bp.get("/live/<cif>")
@permission_required("cases.view")
def case_live(cif: str):
    """The case's latest payments; polled. When they changed since ``seen``, the answer carries
    ``HX-Trigger: case-updated`` (the case view's panels reload) and the bell counter."""
    if not queries.known_cif(db.session, cif):
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
