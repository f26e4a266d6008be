"""Placements: the case view's placement card (place, recall), the placements page (what each
agency collected, the cases placed now, the agency's file) and the agencies (admins).
Thin: parse the form, call portal.placements.operations, render."""

from __future__ import annotations

from types import SimpleNamespace

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from portal import clock
from portal.extensions import db
from portal.models import Case, Customer
from portal.models.placements import AGENCY_KINDS, Agency
from portal.permissions import scopes
from portal.permissions.decorators import permission_required
from portal.permissions.roles import can
from portal.placements import operations
from portal.placements.forms import AgencyForm, EndForm, PlaceForm

bp = Blueprint("placements", __name__, url_prefix="/placements")



def kind_name(kind: str) -> str:
    return _("Legal team") if kind == "legal" else _("Collection agency")


def _case(cif: str) -> tuple[Case, Customer]:
    found = db.session.execute(select(Case, Customer).join(Customer, Customer.cif == Case.cif)
                               .where(Case.cif == cif)).first()
    if found is None:
        abort(404)
    return found


def _card(cif: str, **extra) -> str:
    case, customer = _case(cif)
    return render_template(
        "placements/_case_card.html", case=case, customer=customer,
        current=operations.active_placement(db.session, case.id),
        history=operations.history(db.session, case.id), can_manage=can("placements.manage"),
        today=clock.bank_today(), kind_name=kind_name, **extra)


def _form_response(template: str, status: int, slot: str, **context):
    response = current_app.make_response((render_template(template, **context), status))
    response.headers["HX-Retarget"] = slot
    response.headers["HX-Reswap"] = "innerHTML"
    return response


# --- the case view's card --------------------------------------------------------------------


@bp.get("/cases/<cif>/card")
@permission_required("cases.view")
def case_card(cif: str):
    """The placement card of the case view, loaded into it (nothing for an agent when the case
    was never placed)."""
    return _card(cif)


def _place_context(cif: str, values: dict, errors: dict | None = None) -> dict:
    case, customer = _case(cif)
    return {"case": case, "customer": customer, "input": values, "errors": errors or {},
            "agencies": operations.agencies(db.session, active_only=True),
            "today": clock.bank_today(), "kind_name": kind_name}


@bp.get("/cases/<cif>/place")
@permission_required("placements.manage")
def place_form(cif: str):
    return render_template("placements/_place_form.html", **_place_context(cif, {}))


@bp.post("/cases/<cif>/place")
@permission_required("placements.manage")
def place(cif: str):
    case, _customer = _case(cif)
    form = PlaceForm()
    form.validate()
    errors = {name: messages[0] for name, messages in form.errors.items() if messages}
    try:
        if errors:
            raise operations.PlacementError(errors)
        placement = operations.place(db.session, current_user, case, form.agency_id.data,
                                     form.expected_return_on.data, form.reason.data,
                                     clock.now())
        db.session.commit()
    except operations.PlacementError as exc:
        db.session.rollback()
        return _form_response("placements/_place_form.html", exc.status,
                              "#placement-form-slot",
                              **_place_context(cif, form.submitted(), exc.errors))
    response = current_app.make_response(_card(cif, message=_(
        "Placed with %(agency)s.", agency=placement.agency.name)))
    response.headers["HX-Trigger"] = "case-updated"
    return response


def _end_context(cif: str, values: dict, errors: dict | None = None) -> dict:
    case, customer = _case(cif)
    current = operations.active_placement(db.session, case.id)
    return {"case": case, "customer": customer, "current": current, "input": values,
            "errors": errors or {}}


@bp.get("/cases/<cif>/recall")
@permission_required("placements.manage")
def recall_form(cif: str):
    context = _end_context(cif, {})
    if context["current"] is None:
        return _card(cif)
    return render_template("placements/_recall_form.html", **context)


@bp.post("/cases/<cif>/recall")
@permission_required("placements.manage")
def recall(cif: str):
    case, _customer = _case(cif)
    form = EndForm()
    form.validate()
    try:
        placement = operations.end(db.session, current_user, case, form.placement_id.data,
                                   form.outcome.data or "recalled", form.end_reason.data,
                                   clock.now())
        db.session.commit()
    except operations.PlacementError as exc:
        db.session.rollback()
        return _form_response("placements/_recall_form.html", exc.status,
                              "#placement-form-slot",
                              **_end_context(cif, form.submitted(), exc.errors))
    message = _("Recalled from %(agency)s: the case is back in the work queue.",
                agency=placement.agency.name) if placement.status == "recalled" else _(
        "Returned by %(agency)s: the case is back in the work queue.",
        agency=placement.agency.name)
    response = current_app.make_response(_card(cif, message=message))
    response.headers["HX-Trigger"] = "case-updated"
    return response


# --- the placements page ---------------------------------------------------------------------


@bp.get("/")
@permission_required("placements.view")
def index():
    scope = scopes.case_scope(db.session, current_user)
    figures = operations.collected_by_agency(db.session, scope)
    chart_rows = [SimpleNamespace(name=f.agency.name, values={"collected": f.collected,
                                                              "rate": f.recovery_rate})
                  for f in figures if f.placed]  # the rows kpi/_macros.html's bar_chart draws
    return render_template(
        "placements/index.html", figures=figures, chart_rows=chart_rows,
        placed=operations.placed_cases(db.session, scope), kind_name=kind_name,
        totals={"placed": sum(f.placed for f in figures),
                "active": sum(f.active for f in figures),
                "amount_active": sum(f.amount_active for f in figures),
                "amount_placed": sum(f.amount_placed for f in figures),
                "collected": sum(f.collected for f in figures)})


@bp.get("/file.csv")
@permission_required("placements.manage")
def placement_file():
    """The agency's placement file (``?agency=<id>``): the cases it holds now that the user's
    teams placed."""
    raw = request.args.get("agency") or ""
    agency = db.session.get(Agency, int(raw)) if raw.isdecimal() and len(raw) < 10 else None
    if agency is None:
        abort(404)
    body, _rows = operations.placement_file(
        db.session, current_user, agency, scopes.case_scope(db.session, current_user),
        clock.now())
    db.session.commit()  # the export's audit row
    name = f"placements-{agency.code}-{clock.bank_today().isoformat()}.csv"
    return Response(body.encode("utf-8"), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "Cache-Control": "no-store"})


# --- agencies (admins) -----------------------------------------------------------------------


def _agencies_page(values: dict, errors: dict | None = None, status: int = 200):
    return render_template("placements/agencies.html",
                           agencies=operations.agencies(db.session), input=values,
                           errors=errors or {}, kinds=AGENCY_KINDS, kind_name=kind_name), status


@bp.get("/agencies")
@permission_required("admin.workflow")
def agencies():
    return _agencies_page({"kind": "agency"})


@bp.post("/agencies")
@permission_required("admin.workflow")
def create_agency():
    form = AgencyForm()
    form.validate()
    try:
        agency = operations.save_agency(db.session, current_user, None, form.submitted())
        db.session.commit()
    except operations.PlacementError as exc:
        db.session.rollback()
        return _agencies_page(form.submitted(), exc.errors, 422)
    flash(_("Agency %(name)s added.", name=agency.name), "success")
    return redirect(url_for("placements.agencies"))


@bp.post("/agencies/<int:agency_id>/toggle")
@permission_required("admin.workflow")
def toggle_agency(agency_id: int):
    agency = db.session.get(Agency, agency_id)
    if agency is None:
        abort(404)
    operations.save_agency(db.session, current_user, agency, {
        "name": agency.name, "kind": agency.kind, "contact": agency.contact,
        "active": not agency.active})
    db.session.commit()
    flash(_("%(name)s takes cases again.", name=agency.name) if agency.active
          else _("%(name)s retired: it takes no new cases.", name=agency.name), "success")
    return redirect(url_for("placements.agencies"))
