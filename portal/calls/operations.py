"""Calls: CTI events become call records and actions; click-to-call; manual call logging; the
agent's outcome of a call; the day's reconciliation against the call centre's call list.

One merge rule for every source of call facts (``merge_call``): each fact is combined with what
is stored by an order-free rule (earliest start / answer / end, first non-empty value), so
duplicated and out-of-order events (``call.ended`` before ``call.answered``) end in the same
state. The first time a call is seen ended it becomes a CALL action on the customer's case with
the result still to choose (source ``cti``) and a CALL_LOGGED event; a number that matches no
customer leaves the call record flagged ``unknown_number`` for supervisors, not an error.

An outbound call that started outside the contact window, whatever placed it (click-to-call,
the dialler's CTI events, a call logged by hand), is recorded and flagged: ``window_breach``
holds the window it broke (contact_rules.window_breach, one rule in Python and SQL), My calls
and the supervisor's board show it, the KPIs count it, and the agent's team supervisor is told
(once per agent and day).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from integrations.callcentre.client import call_centre
from integrations.fields import phone_e164
from integrations.http import ApiError, AuthError, Unavailable
from integrations.runs import record_skipped
from portal import clock, run_counts
from portal.calls import agent_status
from portal.calls.agent_status import AGENT_BY_REF_SQL
from portal.calls.cti_events import (
    AGENT_EVENT_TYPES,
    CtiEvent,
    CtiEventError,
    _text,
    parse_time,
)
from portal.cases import actions, contact_rules
from portal.cases.actions import ActionInput, ActionValidationError, ContactRefused
from portal.events import publish
from portal.kpi import operations as kpis
from portal.labels import label
from portal.logging import get_correlation_id
from portal.models import (
    Action,
    ActionCode,
    CallRecord,
    Discrepancy,
    Notification,
    Phone,
    ReconciliationRun,
    ReferenceCustomer,
    Team,
    User,
)
from portal.models.enums import CALL_DIRECTIONS
from portal.models.integrations import IntegrationRun
from portal.notifications import operations as notifications
from portal.notifications.messages import N_, message
from portal.notifications.messages import day as bank_day
from portal.payments.discrepancies import record_gaps

__all__ = ["ActionInput", "ActionValidationError", "ContactRefused"]
MAX_CALL_SECONDS = 24 * 3600  # a call longer than a day is a bad record


def apply_event(session: Session, event: CtiEvent, *, async_commit: bool = False) -> dict:
    """Apply one event (no commit); returns what the webhook answers. ``async_commit``: the
    caller's transaction may commit without waiting for the WAL flush."""
    if event.type in AGENT_EVENT_TYPES:
        return agent_status.apply_cti_event(session, event, async_commit=async_commit)
    return apply_call_event(session, event, async_commit=async_commit)


def apply_call_event(session: Session, event: CtiEvent, *, async_commit: bool = False) -> dict:
    data = event.data
    call_id = _text(data, "call_id", 64, required=True)
    direction = (_text(data, "direction", 8) or "outbound").lower()
    if direction not in CALL_DIRECTIONS:
        raise CtiEventError("bad_field", "data.direction must be inbound or outbound",
                            "data.direction")
    phone = _text(data, "phone", 32, required=True)
    started = parse_time(data.get("started_at"), "data.started_at")
    answered = parse_time(data.get("answered_at"), "data.answered_at")
    ended = parse_time(data.get("ended_at"), "data.ended_at")
    duration = data.get("duration_seconds")
    if duration is not None and (not isinstance(duration, int) or isinstance(duration, bool)
                                 or not 0 <= duration <= MAX_CALL_SECONDS):
        raise CtiEventError("bad_field", "data.duration_seconds must be a whole number from 0 "
                            f"to {MAX_CALL_SECONDS}", "data.duration_seconds")
    if event.type == "call.started":
        started = started or event.occurred_at
    elif event.type == "call.answered":
        answered = answered or event.occurred_at
    else:
        ended = ended or event.occurred_at
        if started is None:  # the start is not in the event: estimate it from the length
            started = ended - timedelta(seconds=duration or 0)
    if started is None:
        started = answered or event.occurred_at
    agent_ref = _text(data, "agent_id", 64)
    extension = _text(data, "extension", 20)
    record, newly_ended = merge_call(
        session, call_id, phone=phone, direction=direction, started_at=started,
        answered_at=answered, ended_at=ended,
        duration_s=duration if event.type == "call.ended" else None,
        disposition=_text(data, "disposition", 32) if event.type == "call.ended" else None,
        recording_ref=_text(data, "recording_ref", 200) if event.type == "call.ended" else None,
        agent_ref=agent_ref, extension=extension, at=event.occurred_at,
        async_commit=async_commit,
    )
    return {"accepted": True, "event_id": event.event_id, "call_id": record.call_id,
            "state": call_state(record), "matched": record.unmatched_reason is None,
            "action_id": record.action_id, "logged": newly_ended}


def call_state(record: CallRecord) -> str:
    if record.ended_at is not None:
        return "ended"
    if record.answered_at is not None:
        return "answered"
    return "ringing"


# -- matching -----------------------------------------------------------------------------------


def normalise_phone(number: str | None) -> str | None:
    if not number:
        return None
    return phone_e164(number) or number.strip()


# -- the merge rule -----------------------------------------------------------------------------


# One statement per event: find the agent (call-centre id or extension) and the customer (the
# number, E.164, of a customer or a reference person; the agent's own case first when several
# share it), create the call or merge the event's facts into it by the order-free rule
# (earliest times, first values; ON CONFLICT DO UPDATE also locks the row to the end of the
# transaction), and follow the agent's current call on the board. Written in SQL because it
# runs for every CTI event (docs/performance.md); ``merge_call`` below is its Python face.
MERGE_CALL_SQL = text(f"""
WITH w AS {contact_rules.WINDOW_SQL},
agent AS (
    SELECT CASE WHEN CAST(:async_commit AS boolean)
                THEN set_config('synchronous_commit', 'off', true) END AS async_commit,
           COALESCE(CAST(:agent_id AS integer), {AGENT_BY_REF_SQL}) AS id
), customer AS (
    SELECT COALESCE(p.cif, r.primary_cif) AS cif, p.ref_cif
    FROM phones p
    LEFT JOIN reference_customers r ON r.ref_cif = p.ref_cif
    LEFT JOIN cases c ON c.cif = COALESCE(p.cif, r.primary_cif)
                     AND c.assigned_agent_id = (SELECT id FROM agent)
    WHERE NOT CAST(:force_cif AS boolean) AND p.number_e164 = CAST(:phone AS varchar)
      AND COALESCE(p.cif, r.primary_cif) IS NOT NULL
    ORDER BY c.id IS NULL, p.cif IS NULL, p.do_not_contact, p.is_primary DESC, p.id
    LIMIT 1
), facts AS (
    SELECT (SELECT id FROM agent) AS agent_id,
           CASE WHEN CAST(:force_cif AS boolean) THEN CAST(:cif AS varchar)
                ELSE (SELECT cif FROM customer) END AS cif,
           CASE WHEN CAST(:force_cif AS boolean) THEN CAST(:ref_cif AS varchar)
                ELSE (SELECT ref_cif FROM customer) END AS ref_cif
), merged AS (
    INSERT INTO call_records AS cr (
        call_id, phone, direction, started_at, answered_at, ended_at, duration_s, disposition,
        recording_ref, agent_id, cti_agent_ref, cif, ref_cif, unmatched_reason, source,
        window_breach, created_at, updated_at)
    SELECT CAST(:call_id AS varchar), CAST(:phone AS varchar), CAST(:direction AS varchar),
           CAST(:started_at AS timestamptz), CAST(:answered_at AS timestamptz),
           CAST(:ended_at AS timestamptz), CAST(:duration_s AS integer),
           CAST(:disposition AS varchar), CAST(:recording_ref AS varchar), f.agent_id,
           CAST(:cti_agent_ref AS varchar), f.cif, f.ref_cif,
           NULLIF(concat_ws('+', CASE WHEN f.cif IS NULL THEN 'unknown_number' END,
                                 CASE WHEN f.agent_id IS NULL THEN 'unknown_agent' END), ''),
           CAST(:source AS varchar),
           {contact_rules.window_breach_sql("CAST(:direction AS varchar)",
                                            "CAST(:started_at AS timestamptz)",
                                            "CAST(:zone AS text)")},
           CAST(:now AS timestamptz), CAST(:now AS timestamptz)
    FROM facts f, w
    ON CONFLICT (call_id) DO UPDATE SET
        started_at = LEAST(cr.started_at, EXCLUDED.started_at),
        -- judged at the merged (earliest) start, as the order-free rule keeps it
        window_breach = CASE WHEN EXCLUDED.started_at < cr.started_at
                             THEN EXCLUDED.window_breach ELSE cr.window_breach END,
        answered_at = LEAST(cr.answered_at, EXCLUDED.answered_at),
        ended_at = LEAST(cr.ended_at, EXCLUDED.ended_at),
        duration_s = COALESCE(cr.duration_s, EXCLUDED.duration_s),
        disposition = COALESCE(cr.disposition, EXCLUDED.disposition),
        recording_ref = COALESCE(cr.recording_ref, EXCLUDED.recording_ref),
        cti_agent_ref = COALESCE(cr.cti_agent_ref, EXCLUDED.cti_agent_ref),
        agent_id = COALESCE(cr.agent_id, EXCLUDED.agent_id),
        cif = CASE WHEN CAST(:force_cif AS boolean) THEN EXCLUDED.cif
                   ELSE COALESCE(cr.cif, EXCLUDED.cif) END,
        ref_cif = CASE WHEN CAST(:force_cif AS boolean) OR cr.cif IS NULL THEN EXCLUDED.ref_cif
                       ELSE cr.ref_cif END,
        unmatched_reason = NULLIF(concat_ws('+',
            CASE WHEN (CASE WHEN CAST(:force_cif AS boolean) THEN EXCLUDED.cif
                            ELSE COALESCE(cr.cif, EXCLUDED.cif) END) IS NULL
                 THEN 'unknown_number' END,
            CASE WHEN COALESCE(cr.agent_id, EXCLUDED.agent_id) IS NULL
                 THEN 'unknown_agent' END), ''),
        updated_at = EXCLUDED.updated_at
    RETURNING cr.id, cr.call_id, cr.cif, cr.ref_cif, cr.agent_id, cr.phone, cr.direction,
              cr.started_at, cr.answered_at, cr.ended_at, cr.duration_s, cr.disposition,
              cr.source, cr.action_id, cr.logged_at, cr.unmatched_reason, cr.window_breach
), follow AS (
    UPDATE agent_status s
    SET current_call_id = CASE WHEN m.ended_at IS NULL THEN m.call_id END,
        current_cif = CASE WHEN m.ended_at IS NULL THEN m.cif END
    FROM merged m
    WHERE s.agent_id = m.agent_id
      AND (m.ended_at IS NULL OR s.current_call_id = m.call_id)
    RETURNING s.agent_id
)
SELECT m.*, (SELECT count(*) FROM follow) AS followed FROM merged m
""")


def merge_call(session: Session, call_id: str, *, phone: str, direction: str,
               started_at: datetime, at: datetime | None = None,
               answered_at: datetime | None = None, ended_at: datetime | None = None,
               duration_s: int | None = None, disposition: str | None = None,
               recording_ref: str | None = None, agent_id: int | None = None,
               agent_ref: str | None = None, extension: str | None = None,
               cif: str | None = None, ref_cif: str | None = None,
               source: str = "cti", async_commit: bool = False) -> tuple[Any, bool]:
    """Combine facts about ``call_id`` with the stored record (created if new; the row stays
    locked to the end of the transaction); returns (the merged record, whether the call was
    seen ended for the first time). No commit.

    The agent is ``agent_id``, else found by the call centre's ``agent_ref`` / ``extension``;
    ``cif`` given (a click-to-call from a case) overrides matching by number.
    ``async_commit``: the transaction will commit without waiting for the WAL flush (see
    portal/webhooks/cti.py), set inside the same statement to save a round trip."""
    number = normalise_phone(phone) or phone
    now = clock.now()
    row = session.execute(MERGE_CALL_SQL, {
        "call_id": call_id, "phone": number, "direction": direction, "started_at": started_at,
        "answered_at": answered_at, "ended_at": ended_at, "duration_s": duration_s,
        "disposition": disposition, "recording_ref": recording_ref, "agent_id": agent_id,
        "agent_ref": agent_ref, "extension": extension,
        "cti_agent_ref": agent_ref or extension, "cif": cif, "ref_cif": ref_cif,
        "force_cif": cif is not None, "source": source, "now": now,
        "async_commit": async_commit, "zone": str(clock.bank_zone()),
    }).one()
    record = SimpleNamespace(**row._mapping)
    if record.ended_at is None and record.agent_id is not None and not record.followed:
        agent_status.set_current_call(session, record.agent_id, record.call_id, record.cif,
                                      at or started_at)
    newly_ended = record.ended_at is not None and record.logged_at is None
    if newly_ended:
        record.action_id = _log_call(session, record, now)
        record.logged_at = now
        if record.window_breach:
            tell_supervisor_of_breach(session, record)
    elif record.action_id is not None and cif is not None:
        # a click-to-call's facts arrived after the events: the pending action follows
        actions_table = Action.__table__
        session.execute(update(actions_table).where(actions_table.c.id == record.action_id,
                                                    actions_table.c.result.is_(None))
                        .values(cif=record.cif))
    return record, newly_ended


def _duration_label(seconds: int | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds // 60}:{seconds % 60:02d}"


def _subtype(record) -> str:
    if record.ref_cif:
        return "REFERENCE"
    return "INBOUND" if record.direction == "inbound" else "OUTBOUND"


LOG_CALL_SQL = text("""
WITH action AS (
    INSERT INTO actions (cif, agent_id, type, subtype, result, at, notes, call_id, source,
                         created_at)
    SELECT CAST(:cif AS varchar), CAST(:agent_id AS integer), 'CALL', CAST(:subtype AS varchar),
           NULL, CAST(:at AS timestamptz), CAST(:notes AS text), CAST(:call_id AS varchar),
           'cti', CAST(:now AS timestamptz)
    WHERE CAST(:cif AS varchar) IS NOT NULL AND CAST(:action_id AS bigint) IS NULL
    RETURNING id
)
UPDATE call_records
SET action_id = COALESCE(CAST(:action_id AS bigint), (SELECT id FROM action)),
    logged_at = CAST(:now AS timestamptz)
WHERE id = CAST(:id AS bigint)
RETURNING action_id
""")


def _log_call(session: Session, record, now: datetime) -> int | None:
    """A call just ended: a CALL action with its result to choose (when the customer is
    known), the record marked logged, and the CALL_LOGGED event. Returns the action id."""
    # the timeline's note, in the deployment's language (or the request's, for a dial)
    answered = record.disposition or ("answered" if record.duration_s else "no_answer")
    note = _("%(direction)s call · %(length)s · %(disposition)s — outcome to record",
             direction=label(record.direction), length=_duration_label(record.duration_s),
             disposition=label(answered).lower())
    record.action_id = session.execute(LOG_CALL_SQL, {
        "cif": record.cif, "agent_id": record.agent_id, "subtype": _subtype(record),
        "at": record.ended_at, "call_id": record.call_id, "now": now, "id": record.id,
        "action_id": record.action_id, "notes": note,
    }).scalar()
    publish("CALL_LOGGED", call_logged_payload(record), session=session,
            occurred_at=record.ended_at)
    return record.action_id


BREACH_KIND = "window_breach"  # the supervisor's notification (portal/notifications)


def tell_supervisor_of_breach(session: Session, record) -> Notification | None:
    """Tell the supervisor of the agent's team that ``record`` (an outbound call outside the
    contact window) happened: once per agent and bank day, linking to the agent's calls of
    that day, where every breach of the day is listed. No commit."""
    if record.agent_id is None or not record.window_breach:
        return None
    found = session.execute(
        select(Team.supervisor_id, User.full_name)
        .select_from(User).join(Team, Team.id == User.team_id)
        .where(User.id == record.agent_id)).first()
    if found is None or found.supervisor_id is None:
        return None
    day = clock.bank_today(record.started_at)
    link = f"/calls/?agent={record.agent_id}&day={day.isoformat()}"
    told = session.scalar(select(Notification.id).where(
        Notification.user_id == found.supervisor_id, Notification.kind == BREACH_KIND,
        Notification.link == link).limit(1))
    if told is not None:
        return None
    at = record.started_at.astimezone(clock.bank_zone())
    return notifications.notify(
        session, found.supervisor_id, BREACH_KIND,
        message(N_("%(name)s: outbound call outside the contact window"), name=found.full_name),
        message(N_("Call at %(time)s on %(date)s, outside %(window)s. Every breach of the day "
                   "is flagged in the agent's calls."), time=f"{at:%H:%M}",
                date=bank_day(at.date()), window=record.window_breach), link=link, cif=record.cif)


def call_logged_payload(record) -> dict:
    def iso(moment: datetime | None) -> str | None:
        return moment.astimezone(UTC).isoformat() if moment else None

    return {
        "call_id": record.call_id, "direction": record.direction,
        "started_at": iso(record.started_at), "cif": record.cif, "agent_id": record.agent_id,
        "phone": record.phone, "answered_at": iso(record.answered_at),
        "ended_at": iso(record.ended_at), "duration_seconds": record.duration_s,
        "disposition": record.disposition, "action_id": record.action_id,
        "source": "manual" if record.source == "manual" else "cti",
    }


# -- click-to-call ------------------------------------------------------------------------------


class CallCentreDown(Exception):
    """The call centre could not be used (no answer: connection, timeout, 5xx, breaker open;
    or it refused the portal's key): the agent is offered manual call logging. ``headline``
    says which, ``detail`` what the portal saw."""

    def __init__(self, detail: str, *, headline: str | None = None):
        super().__init__(detail)
        self.headline = headline or _("The call centre cannot be reached.")
        self.detail = detail


class CallCentreRefused(Exception):
    """The call centre answered and refused this dial (4xx): its status, code and message,
    shown as it said them, with the portal's plain words for the codes it knows."""

    def __init__(self, status: int | None, code: str | None, message: str | None):
        self.status = status
        self.code = code
        self.remote_message = message or ""
        self.reason = REFUSAL_REASONS.get(code or "") or \
            (_("It said: %(message)s.", message=message) if message else _("It gave no reason."))
        super().__init__(self.reason)


# the call centre's refusal codes (docs/integrations.md, "Call centre") in the agent's words
REFUSAL_REASONS = {
    "agent_busy": _l("You are already on a call. Finish it, then call again."),
    "unknown_agent": _l("The call centre does not know your agent id or extension: ask an "
                        "administrator."),
    "invalid_number": _l("The call centre says this number cannot be dialled."),
    "bad_request": _l("The call centre could not dial this number."),
}


class DialRefused(Exception):
    """The dial cannot be asked for (no extension, number not the customer's, ...)."""


def callable_phone(session: Session, cif: str, phone_id: int) -> Phone:
    """A phone of the customer, or of one of the customer's reference persons."""
    phone = session.get(Phone, phone_id)
    if phone is None:
        raise DialRefused(_("This number is not on file."))
    if phone.cif == cif:
        return phone
    if phone.ref_cif and session.scalar(select(ReferenceCustomer.primary_cif).where(
            ReferenceCustomer.ref_cif == phone.ref_cif)) == cif:
        return phone
    raise DialRefused(_("This number does not belong to the customer."))


def check_dial(session: Session, cif: str, phone: Phone, at: datetime):
    """The contact rules' decision (window, attempts, do-not-contact) for calling ``phone``."""
    return actions.check_contact(session, cif=cif, action_type="CALL",
                                 phone_id=actions._number_of_record(session, phone), at=at)


def click_to_call(session: Session, client, *, agent: User, cif: str, phone_id: int,
                  now: datetime | None = None) -> CallRecord:
    """Check the contact rules, ask the call centre to dial, record the call as ringing (no
    commit). Raises ContactRefused, DialRefused, CallCentreRefused (it answered no) or
    CallCentreDown (it could not be reached, or refused the portal's key)."""

    now = now or clock.now()
    phone = callable_phone(session, cif, phone_id)
    decision = check_dial(session, cif, phone, now)
    if not decision.allowed:
        raise ContactRefused(decision.reason or _("The contact rules do not allow this call now."),
                             decision.next_allowed_at)
    agent_ref = agent.cti_agent_id or agent.phone_extension
    if not agent_ref:
        raise DialRefused(_("You have no call-centre extension: ask an administrator."))
    if client is None:
        raise CallCentreDown(_("No call centre is configured."))
    number = phone.number_e164 or normalise_phone(phone.number) or phone.number
    try:
        answer = client.dial(agent_ref, number, reference=cif, request_id=str(uuid.uuid4()))
    except Unavailable as exc:  # no answer: connection, timeout, 5xx/429, breaker open
        raise CallCentreDown(str(exc)) from exc
    except AuthError as exc:  # it answered, but not to the portal: nobody can dial
        raise CallCentreDown(
            _("It answered %(status)s: %(message)s. Ask ops to check the call-centre API key.",
              status=exc.status, message=exc.remote_message or _("credentials refused")),
            headline=_("The call centre refused the portal's key.")) from exc
    except ApiError as exc:
        if exc.refused:  # it answered and said no to this dial
            raise CallCentreRefused(exc.status, exc.code, exc.remote_message) from exc
        raise CallCentreDown(str(exc),  # it answered something the portal cannot read
                             headline=_("The call centre's answer could not be read.")) from exc
    call_id = str(answer.get("call_id") or "")
    if not call_id:
        raise CallCentreDown(_("The call centre did not return a call id."))
    ref_cif = phone.ref_cif if phone.cif is None else None
    row, _ended = merge_call(session, call_id, phone=number, direction="outbound", started_at=now,
                        agent_id=agent.id, agent_ref=agent_ref, cif=cif, ref_cif=ref_cif)
    return session.get(CallRecord, row.id)


def dial(session: Session, config, *, agent: User, cif: str, phone_id: int,
         now: datetime | None = None) -> CallRecord:
    """``click_to_call`` through the configured call centre. No commit."""
    with call_centre(config) as client:
        return click_to_call(session, client, agent=agent, cif=cif, phone_id=phone_id, now=now)


def hang_up(config, call_id: str) -> str | None:
    """Ask the call centre to end the call; the message to show when it did not answer (the
    call still ends on the phone)."""
    with call_centre(config) as client:
        if client is None:
            return None
        try:
            client.hangup(call_id)
        except ApiError as exc:
            if exc.refused:
                return _("The call centre refused to hang up (%(status)s %(code)s): %(message)s.",
                         status=exc.status, code=exc.code or "",
                         message=exc.remote_message or _("no reason given"))
            return _("The call centre cannot be reached: %(error)s", error=exc)
        except Exception as exc:  # noqa: BLE001 - shown to the agent
            return _("The call centre did not answer: %(error)s", error=exc)
    return None


# -- the agent's outcome of a CTI call ----------------------------------------------------------


class OutcomeError(Exception):
    pass


def record_outcome(session: Session, *, agent: User, call_id: str, data: ActionInput,
                   now: datetime | None = None) -> Action:
    """Complete a CTI call's action with the agent's result (once), capture the promise the
    result carries and move the case on, as recording any action does. No commit. Raises
    ActionValidationError (field errors) or OutcomeError."""
    now = now or clock.now()
    record = session.scalar(select(CallRecord).where(CallRecord.call_id == call_id)
                            .with_for_update())
    if record is None or record.action_id is None:
        raise OutcomeError(_("This call has no action to complete."))
    action = session.scalar(select(Action).where(Action.id == record.action_id)
                            .with_for_update())
    if action is None or action.result is not None:
        raise OutcomeError(_("The outcome of this call has already been recorded."))
    code, loan, card_number, errors = actions.check_input(
        session, action.cif, data, now, code_type="CALL",
        code_error=_("Choose the result of the call."))
    account_number = loan.account_number if loan else card_number
    today = clock.bank_today(now)
    if errors:
        raise ActionValidationError(errors)

    follow_up = data.follow_up_date if data.follow_up_date is not None \
        else actions.default_follow_up(code, now)
    action.action_code_id, action.subtype, action.result = code.id, code.subtype, code.result
    action.account_number = account_number
    action.agent_id = action.agent_id or agent.id
    action.follow_up_date = follow_up
    note = (data.notes or "").strip()
    action.notes = note or None
    record.outcome_recorded_at = now
    session.flush()
    kpis.refresh_stored_day(session, action.agent_id, action.at)  # the attempt counts now
    if code.is_promise:
        try:
            actions.create_promise(session, agent_id=agent.id, cif=action.cif,
                                   account_number=loan.account_number if loan else None,
                                   amount=data.promise_amount,
                                   promised_date=data.promise_date, action_id=action.id,
                                   today=today, replace_pending=data.replace_pending)
        except actions.promise_validation_error() as exc:
            raise ActionValidationError(dict(exc.errors)) from exc
    actions.move_case_on(session, action.cif, code, agent, action.at, follow_up, now)
    return action


# -- manual call logging (the call centre is down) -----------------------------------------------


@dataclass
class ManualCall:
    phone_id: int | None
    direction: str
    started_at: datetime | None
    duration_s: int | None
    action: ActionInput


def log_manual_call(session: Session, *, agent: User, cif: str, call: ManualCall,
                    now: datetime | None = None) -> CallRecord:
    """A call the agent made or took outside the call centre: the action with its result (as
    the action form records it), a call record with source ``manual`` and CALL_LOGGED. No
    commit. Raises ActionValidationError or ContactRefused.

    The call has happened: an inbound one is recorded at any hour; an outbound one that
    started outside the contact window is recorded and flagged (``window_breach``, the
    supervisor told), not refused. Do-not-contact and the attempts cap still refuse."""
    now = now or clock.now()
    errors: dict[str, str] = {}
    if call.direction not in CALL_DIRECTIONS:
        errors["direction"] = _("Choose inbound or outbound.")
    code = session.get(ActionCode, call.action.action_code_id) \
        if call.action.action_code_id else None
    if code is not None and code.type == "CALL" and call.direction in CALL_DIRECTIONS:
        if contact_rules.code_direction(code.type, code.subtype) == "inbound" and \
                call.direction == "outbound":
            errors["direction"] = _("This result is for a call the customer made: choose "
                                   "inbound.")
        elif call.direction == "inbound" and (code.subtype or "").upper() == "OUTBOUND":
            errors["direction"] = _("This result is for a call to the customer: choose "
                                   "outbound.")
    if call.phone_id is None:
        errors["phone_id"] = _("Choose the number called.")
    if call.started_at is not None and call.started_at > now + timedelta(minutes=1):
        errors["started_at"] = _("The call cannot start in the future.")
    if call.duration_s is not None and not 0 <= call.duration_s <= 4 * 3600:
        errors["duration"] = _("Enter the length of the call in minutes (up to 4 hours).")
    phone = None
    if call.phone_id is not None:
        try:
            phone = callable_phone(session, cif, call.phone_id)
        except DialRefused as exc:
            errors["phone_id"] = str(exc)
    if errors:
        raise ActionValidationError(errors)
    data = call.action
    data.phone_id = phone.id if phone.cif == cif else None
    action = actions.record_action(session, agent=agent, cif=cif, data=data, now=now,
                                   direction=call.direction, window=False)
    started = call.started_at or now
    duration = call.duration_s or 0
    answered = started if duration else None
    breach = contact_rules.window_breach(contact_rules.get_contact_rules(session),
                                         call.direction, started)
    record = CallRecord(
        call_id=f"MAN-{uuid.uuid4().hex[:20]}", agent_id=agent.id, cif=cif,
        ref_cif=phone.ref_cif if phone.cif is None else None,
        phone=phone.number_e164 or phone.number, direction=call.direction, started_at=started,
        answered_at=answered, ended_at=started + timedelta(seconds=duration),
        duration_s=duration, disposition=action.result, action_id=action.id, source="manual",
        outcome_recorded_at=now, logged_at=now, window_breach=breach,
    )
    session.add(record)
    session.flush()
    action.call_id = record.call_id
    publish("CALL_LOGGED", call_logged_payload(record), session=session,
            occurred_at=record.ended_at)
    if breach:
        tell_supervisor_of_breach(session, record)
    return record


# -- history and reconciliation -----------------------------------------------------------------


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, datetime.min.time(), tzinfo=clock.bank_zone()).astimezone(UTC)
    return start, start + timedelta(days=1)


def agent_calls(session: Session, agent_id: int, day: date) -> list[CallRecord]:
    start, end = day_bounds(day)
    return list(session.scalars(
        select(CallRecord).where(CallRecord.agent_id == agent_id,
                                 CallRecord.started_at >= start, CallRecord.started_at < end)
        .order_by(CallRecord.started_at)))


def unmatched_calls(session: Session, since: datetime, limit: int = 50) -> list[CallRecord]:
    return list(session.scalars(
        select(CallRecord).where(CallRecord.unmatched_reason.is_not(None),
                                 CallRecord.started_at >= since)
        .order_by(CallRecord.started_at.desc()).limit(limit)))


def count_unmatched(session: Session, since: datetime) -> int:
    return session.scalar(select(func.count()).select_from(CallRecord).where(
        CallRecord.unmatched_reason.is_not(None), CallRecord.started_at >= since)) or 0


def reconcile_day(session: Session, client, day: date, *, trigger: str = "schedule",
                  user_id: int | None = None, now: datetime | None = None):
    """Match the call centre's calls of ``day`` against call records by call id: a call the
    portal missed is added (as if its events had arrived; gap ``missing_in_crm``), a CTI record
    the call centre does not list is ``missing_in_source``, a different length is
    ``status_mismatch``. Manual calls are the portal's own and not compared.

    The run is an ``integration_runs`` row (CTI, reconcile: the ops card and run pages) with its
    ``reconciliation_runs`` row; a date reconciled again replaces its open gaps
    (portal.payments.discrepancies.record_gaps). No commit, except when the call list cannot be
    read: the failed run is committed, then the ``ApiError`` raised."""

    now = now or clock.now()
    t0 = time.monotonic()
    integration_run = IntegrationRun(
        integration="CTI", kind="reconcile", trigger=trigger, status="running",
        business_date=day, started_at=now, triggered_by_id=user_id,
        correlation_id=get_correlation_id())
    session.add(integration_run)
    session.flush()
    run = ReconciliationRun(integration="CTI", business_date=day, status="running",
                            started_at=now, integration_run_id=integration_run.id)
    session.add(run)
    session.flush()
    try:
        listed = list(client.calls_of_day(day))
    except ApiError as exc:
        run.status = integration_run.status = "failed"
        run.finished_at = integration_run.finished_at = clock.now()
        integration_run.errors = [str(exc)[:500]]
        integration_run.duration_ms = int((time.monotonic() - t0) * 1000)
        session.commit()
        raise
    start, end = day_bounds(day)
    ours = {c.call_id: c for c in session.scalars(
        select(CallRecord).where(CallRecord.started_at >= start, CallRecord.started_at < end,
                                 CallRecord.source == "cti"))}
    seen: set[str] = set()
    found: list[Discrepancy] = []
    added = 0
    for item in listed:
        call_id = str(item.get("call_id") or "")
        if not call_id:
            continue
        seen.add(call_id)
        mine = ours.get(call_id)
        if mine is None:
            mine = session.scalar(select(CallRecord).where(CallRecord.call_id == call_id))
        if mine is None:
            event = CtiEvent(f"reconcile-{call_id}", "call.ended",
                             parse_time(item.get("ended_at") or item.get("started_at"),
                                        "ended_at", required=True), item)
            apply_call_event(session, event)
            added += 1
            found.append(Discrepancy(run_id=run.id, kind="missing_in_crm", entity="call",
                                     key=call_id, source_value=item, crm_value=None,
                                     status="resolved", resolution="added from the call list",
                                     resolved_at=now))
        elif item.get("duration_seconds") is not None and mine.ended_at is not None and \
                mine.duration_s != item.get("duration_seconds"):
            found.append(Discrepancy(run_id=run.id, kind="status_mismatch", entity="call",
                                     key=call_id, source_value=item,
                                     crm_value={"duration_seconds": mine.duration_s}))
    for call_id, mine in ours.items():
        if call_id not in seen:
            found.append(Discrepancy(run_id=run.id, kind="missing_in_source", entity="call",
                                     key=call_id, source_value=None,
                                     crm_value={"started_at": mine.started_at.isoformat(),
                                                "agent_id": mine.agent_id}))
    gaps = record_gaps(session, run, found)
    finished = clock.now()
    run.source_count = len(listed)
    run.crm_count = len(ours)
    run.discrepancy_count = len(gaps.stored)
    run.matched_count = len(seen & set(ours))
    run.status = integration_run.status = "succeeded" if not gaps.open else "partial"
    run.finished_at = integration_run.finished_at = finished
    for name, value in run_counts.of_reconciliation(len(listed), added,
                                                     gaps.stored).columns().items():
        setattr(integration_run, name, value)
    integration_run.control_totals = {
        "matched": run.matched_count, "discrepancies": len(gaps.stored),
        "by_kind": gaps.kinds(), "already_resolved": gaps.settled,
        "superseded": gaps.superseded}
    integration_run.duration_ms = int((time.monotonic() - t0) * 1000)
    session.flush()
    return run


def reconcile_calls(session: Session, config, day: date, *, trigger: str = "schedule",
                    user_id: int | None = None) -> dict:
    """The call reconciliation of ``day`` through the configured call centre; commits. Without
    a call centre the run is recorded as skipped, saying so."""
    with call_centre(config) as client:
        if client is None:
            skipped = record_skipped(session, "CTI", "reconcile",
                                     "No call centre is configured (CALLCENTRE_URL).",
                                     trigger=trigger, user_id=user_id, business_date=day)
            session.commit()
            return {"business_date": day.isoformat(), "status": "skipped",
                    "run_id": skipped.id, "reason": skipped.note}
        try:
            run = reconcile_day(session, client, day, trigger=trigger, user_id=user_id)
            session.commit()
        except Exception:
            session.rollback()
            raise
    return {"business_date": day.isoformat(), "status": run.status,
            "run_id": run.integration_run_id, "source": run.source_count,
            "crm": run.crm_count, "matched": run.matched_count,
            "discrepancies": run.discrepancy_count}
