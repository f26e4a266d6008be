"""Thin views over portal/calls/operations.py, agent_status.py and queries.py."""

from __future__ import annotations

from datetime import date, timedelta

from flask import Blueprint, abort, current_app, render_template, request
from flask_login import current_user

from portal import clock
from portal.calls import agent_status, queries
from portal.calls import operations as calls
from portal.calls.forms import DialForm, ManualCallForm, StatusForm
from portal.cases import case_view
from portal.cases.forms import ActionForm
from portal.extensions import db
from portal.models import Action, AgentStatus, CallRecord
from portal.permissions.decorators import permission_required
from portal.permissions.roles import can
from portal.text import mask_phone

bp = Blueprint("calls", __name__, url_prefix="/calls")


def _workable_customer(cif: str):
    customer = queries.workable_customer(db.session, current_user, cif)
    if customer is None:
        abort(404)
    return customer


def _own_call(call_id: str) -> CallRecord:
    record = queries.visible_call(db.session, current_user, call_id)
    if record is None:
        abort(404)
    return record


def _htmx_response(html: str, status: int = 200, trigger: str | None = None):
    response = current_app.make_response((html, status))
    if trigger:
        response.headers["HX-Trigger"] = trigger
    return response


# --- agent status (nav control) ----------------------------------------------------------------


def _status_context(row: AgentStatus | None, message: str | None = None) -> dict:
    return {"status_row": row, "status_loaded": True, "labels": agent_status.STATUS_LABELS,
            "choices": agent_status.PORTAL_STATUSES, "status_message": message,
            "now": clock.now()}


@bp.get("/status")
@permission_required("cases.work")
def status_control():
    row = agent_status.current(db.session, current_user.id)
    return render_template("calls/_status_control.html", **_status_context(row))


@bp.post("/status")
@permission_required("cases.work")
def set_status():
    try:
        row = agent_status.choose(db.session, current_user, StatusForm().status.data or "",
                                  current_app.config, clock.now())
    except agent_status.StatusError as exc:
        db.session.rollback()
        row = agent_status.current(db.session, current_user.id)
        return render_template("calls/_status_control.html",
                               **_status_context(row, str(exc))), 422
    return render_template("calls/_status_control.html", **_status_context(row))


# --- click-to-call, the call widget and its outcome ---------------------------------------------


def _widget(record: CallRecord, *, errors=None, values=None, saved=False, message=None,
            status=200, trigger=None):
    action = db.session.get(Action, record.action_id) if record.action_id else None
    customer = queries.customer(db.session, record.cif) if record.cif else None
    html = render_template(
        "calls/_call_widget.html", call=record, action=action, customer=customer,
        state=calls.call_state(record),
        codes=queries.call_codes(db.session, action.subtype if action else None),
        accounts=case_view.open_accounts(db.session, record.cif) if record.cif else [],
        errors=errors or {}, values=values or {}, saved=saved, message=message, now=clock.now(),
        show_pii=can("customers.view_pii"), mask_phone=mask_phone,
        default_promise_date=clock.add_days(clock.bank_today(), 1).isoformat())
    return _htmx_response(html, status, trigger)


@bp.post("/dial")
@permission_required("cases.work")
def dial():
    form = DialForm()
    cif, phone_id = form.cif.data or "", form.phone_id.data
    if phone_id is None:
        abort(404)
    _workable_customer(cif)
    try:
        record = calls.dial(db.session, current_app.config, agent=current_user, cif=cif,
                            phone_id=phone_id, now=clock.now())
        db.session.commit()
    except calls.ContactRefused as exc:
        db.session.rollback()
        return render_template("calls/_dial_refused.html", refusal=exc, cif=cif,
                               phone_id=phone_id), 422
    except calls.DialRefused as exc:
        db.session.rollback()
        return render_template("calls/_dial_refused.html", message=str(exc), cif=cif,
                               phone_id=phone_id), 422
    except calls.CallCentreRefused as exc:  # it answered no (agent busy, number invalid, ...)
        db.session.rollback()
        return render_template("calls/_dial_refused.html", centre=exc, cif=cif,
                               phone_id=phone_id), 422
    except calls.CallCentreDown as exc:  # it could not be reached: dial by hand, log it here
        db.session.rollback()
        return _manual_form(cif, phone_id, down=exc)
    return _widget(record, trigger="call-event")


@bp.get("/<call_id>/widget")
@permission_required("cases.work")
def widget(call_id: str):
    record = _own_call(call_id)
    # the call has just ended: the case's timeline shows its action, awaiting the outcome
    ended = record.ended_at is not None and record.outcome_recorded_at is None
    return _widget(record, trigger="case-updated, call-event" if ended else None)


@bp.post("/<call_id>/hangup")
@permission_required("cases.work")
def hangup(call_id: str):
    record = _own_call(call_id)
    return _widget(record, message=calls.hang_up(current_app.config, call_id))


@bp.post("/<call_id>/outcome")
@permission_required("cases.work")
def outcome(call_id: str):
    record = _own_call(call_id)
    form = ActionForm()
    data, errors = form.action_input()
    if not errors:
        try:
            calls.record_outcome(db.session, agent=current_user, call_id=call_id, data=data,
                                 now=clock.now())
            db.session.commit()
            return _widget(record, saved=True, trigger="case-updated, call-event")
        except calls.ActionValidationError as exc:
            db.session.rollback()
            errors = exc.errors
        except calls.OutcomeError as exc:
            db.session.rollback()
            return _widget(record, message=str(exc), status=409)
    return _widget(record, errors=errors, values=form.submitted(), status=422)


# --- manual call logging -----------------------------------------------------------------------


def _manual_form(cif: str, phone_id: int | None, *, errors=None, values=None, down=None,
                 status=200):
    now_local = clock.now().astimezone(clock.bank_zone())
    return render_template(
        "calls/_manual_call.html", cif=cif, phone_id=phone_id,
        phones=queries.phones_of(db.session, cif), codes=queries.call_codes(db.session),
        accounts=case_view.open_accounts(db.session, cif), errors=errors or {},
        values=values or {}, down=down, default_time=now_local.strftime("%H:%M"),
        show_pii=can("customers.view_pii"), mask_phone=mask_phone,
        default_promise_date=clock.add_days(clock.bank_today(), 1).isoformat()), status


@bp.get("/manual")
@permission_required("cases.work")
def manual_form():
    cif = request.args.get("cif", "")
    _workable_customer(cif)
    raw = request.args.get("phone_id", "")
    return _manual_form(cif, int(raw) if raw.isdigit() else None)


@bp.post("/manual")
@permission_required("cases.work")
def manual_log():
    form = ManualCallForm()
    cif = form.cif.data or ""
    _workable_customer(cif)
    call, errors = form.manual_call()
    if not errors:
        try:
            record = calls.log_manual_call(db.session, agent=current_user, cif=cif,
                                           call=call, now=clock.now())
            db.session.commit()
            html = render_template("calls/_manual_saved.html", call=record, cif=cif)
            return _htmx_response(html, 200, "case-updated")
        except calls.ActionValidationError as exc:
            db.session.rollback()
            errors = exc.errors
        except calls.ContactRefused as exc:
            db.session.rollback()
            errors = {"refusal": exc.reason}
    return _manual_form(cif, call.phone_id, errors=errors, values=form.submitted(), status=422)


# --- call history per agent and day ------------------------------------------------------------


@bp.get("/")
@permission_required("cases.view")
def history():
    agents = queries.visible_agents(db.session, current_user) or [current_user]
    raw_agent = request.args.get("agent", "")
    agent = next((a for a in agents if str(a.id) == raw_agent), agents[0])
    try:
        day = date.fromisoformat(request.args.get("day", "")) if request.args.get("day") \
            else clock.bank_today()
    except ValueError:
        day = clock.bank_today()
    worked = queries.agent_day(db.session, agent.id, day)
    return render_template("calls/history.html", agents=agents, agent=agent, day=day,
                           records=worked.records, actions=worked.actions, names=worked.names,
                           run=worked.run, summary=worked.summary,
                           status_events=worked.status_events,
                           previous_day=day - timedelta(days=1),
                           next_day=day + timedelta(days=1), today=clock.bank_today(),
                           show_pii=can("customers.view_pii"), mask_phone=mask_phone,
                           duration_label=agent_status.duration_label)
