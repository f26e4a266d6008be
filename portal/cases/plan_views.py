"""The case view's payment plans: the panel (instalments, paid, status), the form that records
a plan, and cancelling one. Thin: read the form, call cases.plans, render."""

from __future__ import annotations

from flask import abort, current_app, render_template, request
from flask_babel import gettext as _
from flask_login import current_user

from portal import clock
from portal.cases import plans
from portal.cases.contact_rules import get_plan_rules
from portal.cases.forms import PlanCancelForm, PlanForm
from portal.cases.promises import customer_total_due
from portal.cases.views import _context, _load, bp
from portal.extensions import db
from portal.permissions.decorators import permission_required


def _case(cif: str):
    v = _load(cif)
    if v.case is None:
        abort(404)
    return v


def _panel(cif: str, **extra):
    v = _case(cif)
    return render_template("cases/_panel_plans.html", **_context(
        v, plans=plans.case_plans(db.session, cif), **extra))


def _form(v, rows, *, count: int, reason: str = "", errors: dict | None = None,
          status: int = 200):
    today = clock.bank_today()
    return render_template("cases/_plan_form.html", **_context(
        v, rows=rows, count=count, reason=reason, errors=errors or {},
        rules=get_plan_rules(db.session), overdue=customer_total_due(db.session, v.customer.cif),
        open_promises=[p for p in v.promises if p.status in ("pending", "partially_kept")],
        first_day=today)), status


@bp.get("/<cif>/plans")
@permission_required("cases.view")
def plans_panel(cif: str):
    return _panel(cif)


@bp.get("/<cif>/plans/form")
@permission_required("cases.work")
def plan_form(cif: str):
    v = _case(cif)
    rules = get_plan_rules(db.session)
    raw = request.args.get("instalments", "")
    count = int(raw) if raw.isdecimal() and len(raw) < 3 else min(3, rules.max_instalments)
    count = max(rules.min_instalments, min(count, rules.max_instalments))
    rows = plans.suggest(customer_total_due(db.session, cif), count, clock.bank_today(), rules)
    return _form(v, rows, count=count, reason=request.args.get("reason", ""))


@bp.post("/<cif>/plans")
@permission_required("cases.work")
def create_plan(cif: str):
    _case(cif)
    form = PlanForm()
    form.validate()
    dates, amounts = request.form.getlist("due_date"), request.form.getlist("amount")
    rows = [plans.InstalmentInput(d, a) for d, a in zip(dates, amounts, strict=False)]
    if len(dates) != len(amounts):
        rows = []  # a tampered form: refused as a plan without instalments
    try:
        plans.create_plan(db.session, current_user, cif=cif, rows=rows, reason=form.reason.data)
        db.session.commit()
    except plans.PlanValidationError as exc:
        db.session.rollback()
        body, _status = _form(_case(cif), rows, count=len(rows), reason=form.reason.data or "",
                              errors=exc.errors)
        response = current_app.make_response((body, 422))
        response.headers["HX-Retarget"] = "#plan-form-slot"
        response.headers["HX-Reswap"] = "innerHTML"
        return response
    response = current_app.make_response(_panel(cif, message=_("Payment plan saved.")))
    response.headers["HX-Trigger"] = "plan-saved"  # the promises panel: open ones cancelled
    return response


@bp.post("/<cif>/plans/cancel")
@permission_required("cases.work")
def cancel_plan(cif: str):
    _case(cif)
    form = PlanCancelForm()
    form.validate()
    plan = plans.active_plan(db.session, cif, lock=True)
    try:
        if plan is None:  # cancelled or broken meanwhile (another tab, the hourly job)
            raise plans.PlanValidationError({"cancel_reason": _(
                "There is no active plan to cancel any more.")})
        plans.cancel_plan(db.session, current_user, plan, form.cancel_reason.data)
        db.session.commit()
    except plans.PlanValidationError as exc:
        db.session.rollback()
        return current_app.make_response((_panel(
            cif, cancel_errors=exc.errors, cancel_open=True), 422))
    return _panel(cif, message=_("Payment plan cancelled."))
