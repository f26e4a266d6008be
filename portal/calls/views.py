"""Thin views over portal/calls/operations.py and agent_status.py."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from flask import Blueprint, abort, current_app, render_template, request
from flask_login import current_user
from sqlalchemy import select

from integrations.callcentre.client import from_config
from portal import clock
from portal.calls import agent_status
from portal.calls import operations as calls
from portal.cases import case_view
from portal.cases.forms import ActionForm
from portal.extensions import db
from portal.models import (
    Action,
    ActionCode,
    AgentStatus,
    CallRecord,
    Customer,
    Phone,
    ReferenceCustomer,
    User,
)
from portal.models.payments import ReconciliationRun
from portal.permissions.decorators import permission_required
from portal.permissions.roles import can
from portal.permissions.scopes import may_access_case
from portal.text import mask_phone

bp = Blueprint("calls", __name__, url_prefix="/calls")



def _customer(cif: str) -> Customer | None:
    return db.session.scalar(select(Customer).where(Customer.cif == cif)) if cif else None


def _workable_customer(cif: str) -> Customer | None:
    """The customer ``cif`` if the current user may work their case (None: answer 404)."""
    if not cif or not may_access_case(db.session, current_user, cif):
        return None
    return _customer(cif)


def _client():
    return from_config(current_app.config)


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
    status = request.form.get("status", "")
    try:
        row = agent_status.set_from_portal(db.session, current_user, status, clock.now())
        db.session.commit()
    except agent_status.StatusError as exc:
        db.session.rollback()
        row = agent_status.current(db.session, current_user.id)
        return render_template("calls/_status_control.html",
                               **_status_context(row, str(exc))), 422
    client = _client()
    try:
        agent_status.push(db.session, row, client)
        db.session.commit()
    finally:
        if client is not None:
            client.close()
    return render_template("calls/_status_control.html", **_status_context(row))


# --- click-to-call, the call widget and its outcome ---------------------------------------------


def _own_call(call_id: str) -> CallRecord:
    record = db.session.scalar(select(CallRecord).where(CallRecord.call_id == call_id))
    if record is None or (record.agent_id != current_user.id and not can("supervisor.board")):
        abort(404)
    return record


def _call_codes(subtype: str | None = None) -> list[ActionCode]:
    codes = list(db.session.scalars(
        select(ActionCode).where(ActionCode.active.is_(True), ActionCode.type == "CALL")
        .order_by(ActionCode.sort_order, ActionCode.id)))
    if subtype:
        chosen = [c for c in codes if c.subtype == subtype]
        return chosen or codes
    return codes


def _widget(record: CallRecord, *, errors=None, values=None, saved=False, message=None,
            status=200, trigger=None):
    action = db.session.get(Action, record.action_id) if record.action_id else None
    customer = _customer(record.cif) if record.cif else None
    html = render_template(
        "calls/_call_widget.html", call=record, action=action, customer=customer,
        state=calls.call_state(record), codes=_call_codes(action.subtype if action else None),
        accounts=case_view.open_accounts(db.session, record.cif) if record.cif else [],
        errors=errors or {}, values=values or {}, saved=saved, message=message, now=clock.now(),
        show_pii=can("customers.view_pii"), mask_phone=mask_phone,
        default_promise_date=clock.add_days(clock.bank_today(), 1).isoformat())
    return _htmx_response(html, status, trigger)


@bp.post("/dial")
@permission_required("cases.work")
def dial():
    cif = request.form.get("cif", "")
    raw_phone = request.form.get("phone_id", "")
    if not raw_phone.isdigit() or _workable_customer(cif) is None:
        abort(404)
    client = _client()
    try:
        record = calls.click_to_call(db.session, client, agent=current_user, cif=cif,
                                     phone_id=int(raw_phone), now=clock.now())
        db.session.commit()
    except calls.ContactRefused as exc:
        db.session.rollback()
        return render_template("calls/_dial_refused.html", refusal=exc, cif=cif,
                               phone_id=raw_phone), 422
    except calls.DialRefused as exc:
        db.session.rollback()
        return render_template("calls/_dial_refused.html", message=str(exc), cif=cif,
                               phone_id=raw_phone), 422
    except calls.CallCentreDown as exc:
        db.session.rollback()
        return _manual_form(cif, int(raw_phone), down=str(exc))
    finally:
        if client is not None:
            client.close()
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
    client = _client()
    message = None
    try:
        if client is not None:
            client.hangup(call_id)
    except Exception as exc:  # noqa: BLE001 - shown to the agent; the call ends on the phone
        message = f"The call centre did not answer: {exc}"
    finally:
        if client is not None:
            client.close()
    return _widget(record, message=message)


@bp.post("/<call_id>/outcome")
@permission_required("cases.work")
def outcome(call_id: str):
    record = _own_call(call_id)
    data, errors = ActionForm().action_input()
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
    return _widget(record, errors=errors, values=request.form, status=422)


# --- manual call logging -----------------------------------------------------------------------


def _phones_of(cif: str) -> list[tuple[Phone, str | None]]:
    own = [(p, None) for p in db.session.scalars(
        select(Phone).where(Phone.cif == cif).order_by(Phone.is_primary.desc(), Phone.id))]
    refs = [(p, name) for p, name in db.session.execute(
        select(Phone, ReferenceCustomer.name)
        .join(ReferenceCustomer, ReferenceCustomer.ref_cif == Phone.ref_cif)
        .where(ReferenceCustomer.primary_cif == cif).order_by(Phone.id))]
    return own + refs


def _manual_form(cif: str, phone_id: int | None, *, errors=None, values=None, down=None,
                 status=200):
    now_local = clock.now().astimezone(clock.bank_zone())
    return render_template(
        "calls/_manual_call.html", cif=cif, phone_id=phone_id, phones=_phones_of(cif),
        codes=_call_codes(), accounts=case_view.open_accounts(db.session, cif), errors=errors or {},
        values=values or {}, down=down, default_time=now_local.strftime("%H:%M"),
        show_pii=can("customers.view_pii"), mask_phone=mask_phone,
        default_promise_date=clock.add_days(clock.bank_today(), 1).isoformat()), status


@bp.get("/manual")
@permission_required("cases.work")
def manual_form():
    cif = request.args.get("cif", "")
    if _workable_customer(cif) is None:
        abort(404)
    raw = request.args.get("phone_id", "")
    return _manual_form(cif, int(raw) if raw.isdigit() else None)


@bp.post("/manual")
@permission_required("cases.work")
def manual_log():
    form = request.form
    cif = form.get("cif", "")
    if _workable_customer(cif) is None:
        abort(404)
    data, errors = ActionForm().action_input()
    raw_phone = form.get("phone_id") or ""
    started = None
    raw_time = (form.get("started_time") or "").strip()
    if raw_time:
        try:
            local = datetime.combine(clock.bank_today(), time.fromisoformat(raw_time),
                                     tzinfo=clock.bank_zone())
            started = local.astimezone(clock.now().tzinfo)
        except ValueError:
            errors["started_at"] = "Enter the time as HH:MM."
    duration = None
    raw_minutes = (form.get("duration_minutes") or "").strip().replace(",", ".")
    if raw_minutes:
        try:
            duration = int(round(float(raw_minutes) * 60))
        except ValueError:
            errors["duration"] = "Enter the length in minutes, e.g. 3 or 2.5."
    phone_id = int(raw_phone) if raw_phone.isdigit() else None
    if not errors:
        try:
            record = calls.log_manual_call(
                db.session, agent=current_user, cif=cif, now=clock.now(),
                call=calls.ManualCall(phone_id=phone_id,
                                      direction=form.get("direction") or "outbound",
                                      started_at=started, duration_s=duration, action=data))
            db.session.commit()
            html = render_template("calls/_manual_saved.html", call=record, cif=cif)
            return _htmx_response(html, 200, "case-updated")
        except calls.ActionValidationError as exc:
            db.session.rollback()
            errors = exc.errors
        except calls.ContactRefused as exc:
            db.session.rollback()
            errors = {"refusal": exc.reason}
    return _manual_form(cif, phone_id, errors=errors, values=form, status=422)


# --- call history per agent and day ------------------------------------------------------------


def _visible_agents() -> list[User]:
    if can("supervisor.board"):
        team_ids = agent_status.supervised_team_ids(db.session, current_user)
        return list(db.session.scalars(select(User).where(
            User.team_id.in_(team_ids), User.role == "agent").order_by(User.full_name)))
    return [current_user]


@bp.get("/")
@permission_required("cases.view")
def history():
    agents = _visible_agents() or [current_user]
    raw_agent = request.args.get("agent", "")
    agent = next((a for a in agents if str(a.id) == raw_agent), agents[0])
    try:
        day = date.fromisoformat(request.args.get("day", "")) if request.args.get("day") \
            else clock.bank_today()
    except ValueError:
        day = clock.bank_today()
    records = calls.agent_calls(db.session, agent.id, day)
    action_ids = [r.action_id for r in records if r.action_id]
    actions_by_id = {a.id: a for a in db.session.scalars(
        select(Action).where(Action.id.in_(action_ids)))} if action_ids else {}
    names = dict(db.session.execute(select(Customer.cif, Customer.name).where(
        Customer.cif.in_({r.cif for r in records if r.cif}))).all()) if records else {}
    run = db.session.scalar(select(ReconciliationRun).where(
        ReconciliationRun.integration == "CTI", ReconciliationRun.business_date == day)
        .order_by(ReconciliationRun.id.desc()).limit(1))
    status_events = agent_status.history(db.session, agent.id, calls.day_bounds(day)[0])
    status_events = [e for e in status_events if e.at < calls.day_bounds(day)[1]]
    answered = [r for r in records if r.answered_at]
    summary = {
        "calls": len(records), "answered": len(answered),
        "talk": sum(r.duration_s or 0 for r in answered),
        "pending": sum(1 for r in records if r.action_id and
                       actions_by_id.get(r.action_id) and
                       actions_by_id[r.action_id].result is None),
        "unmatched": sum(1 for r in records if r.unmatched_reason),
        "manual": sum(1 for r in records if r.source == "manual"),
    }
    return render_template("calls/history.html", agents=agents, agent=agent, day=day,
                           records=records, actions=actions_by_id, names=names, run=run,
                           summary=summary, status_events=status_events,
                           previous_day=day - timedelta(days=1),
                           next_day=day + timedelta(days=1), today=clock.bank_today(),
                           show_pii=can("customers.view_pii"), mask_phone=mask_phone,
                           duration_label=agent_status.duration_label)
