"""Recording an action on a case: append-only, checked against the contact rules (outbound
calls and visits; a call the customer made is never limited), capturing a promise to pay
when the result says so, and moving the case on (follow-up, last contact, last action,
status, priority)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.cases import contact_rules, promises, queue, statuses
from portal.cases.promises import PromiseValidationError
from portal.models import Action, ActionCode, Card, Case, Loan, Phone, User
from portal.money import parse_money

CONTACT_CHECKED_TYPES = ("CALL", "VISIT")
NOTES_MAX = 4000


class ActionValidationError(Exception):
    """Field name → message, shown next to the fields of the form."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class ContactRefused(Exception):
    """The contact rules refuse this call or visit now."""

    def __init__(self, reason: str, next_allowed_at: datetime | None):
        super().__init__(reason)
        self.reason = reason
        self.next_allowed_at = next_allowed_at


@dataclass
class ActionInput:
    action_code_id: int | None
    account_number: str | None = None
    phone_id: int | None = None
    notes: str | None = None
    follow_up_date: date | None = None
    promise_amount: Decimal | None = None
    promise_date: date | None = None
    replace_pending: bool = False  # a new promise supersedes the pending one (promises.py)


def parse_decimal(raw: str | None) -> Decimal | None:
    """An amount as a person types it, in the bank's currency and locale ("5.000.000",
    "5 000 000", "5000000"; portal.money.parse_money); "" → None; ambiguous or malformed
    input → ValueError with the message to show."""
    return parse_money(raw)


def parse_date(raw: str | None) -> date | None:
    if raw is None or not str(raw).strip():
        return None
    try:
        return date.fromisoformat(str(raw).strip())
    except ValueError as exc:
        raise ValueError(_("Enter a date as YYYY-MM-DD.")) from exc


def default_follow_up(code: ActionCode, now: datetime | None = None) -> date | None:
    """The follow-up date a result suggests: its offset from today's business date."""
    if code.follow_up_days is None:
        return None
    return clock.add_days(clock.bank_today(now), code.follow_up_days)


def check_contact(session: Session, *, cif: str, action_type: str, phone_id: int | None,
                  at: datetime, direction: str = "outbound", window: bool = True):
    """The contact rules service's decision (imported here so tests can replace it)."""

    return contact_rules.check_contact(session, cif=cif, action_type=action_type,
                                       phone_id=phone_id, at=at, direction=direction,
                                       window=window)


def create_promise(session: Session, **kwargs):
    return promises.create_promise(session, **kwargs)


def promise_validation_error():
    return PromiseValidationError


def _number_of_record(session: Session, phone: Phone | None) -> int | None:
    """The phone row the contact rules should judge: a do-not-contact CRM row for the same
    number (a correction beside a read-only bank row) takes precedence over ``phone``."""
    if phone is None:
        return None
    if phone.number_e164 and not phone.do_not_contact:
        blocked = session.scalar(select(Phone.id).where(
            Phone.cif == phone.cif, Phone.number_e164 == phone.number_e164,
            Phone.do_not_contact.is_(True)).limit(1))
        if blocked is not None:
            return blocked
    return phone.id


def check_input(session: Session, cif: str, data: ActionInput, now: datetime, *,
                code_type: str | None = None,
                code_error: str = _l("Choose a type, a subtype and a result."),
                ) -> tuple[ActionCode | None, Loan | None, str | None, dict[str, str]]:
    """The checks every recorded result shares (the action form, a call's outcome): an active
    result (of ``code_type`` when given), an account of the customer's (a loan, else a card
    contract number), the notes' length and a follow-up date not in the past. Returns the
    code, the loan, the card number and the field errors."""
    errors: dict[str, str] = {}
    code = session.get(ActionCode, data.action_code_id) if data.action_code_id else None
    if code is None or not code.active or (code_type and code.type != code_type):
        errors["action_code_id"] = str(code_error)
    loan = None
    card_number = None
    if data.account_number:
        loan = session.scalar(select(Loan).where(Loan.account_number == data.account_number,
                                                 Loan.cif == cif))
        if loan is None:
            card_number = session.scalar(select(Card.contract_number).where(
                Card.contract_number == data.account_number, Card.cif == cif))
        if loan is None and card_number is None:
            errors["account_number"] = _("This account does not belong to the customer.")
    if data.notes and len(data.notes) > NOTES_MAX:
        errors["notes"] = _("Notes are limited to %(num)d characters.", num=NOTES_MAX)
    if data.follow_up_date is not None and data.follow_up_date < clock.bank_today(now):
        errors["follow_up_date"] = _("The follow-up date cannot be in the past.")
    return code, loan, card_number, errors


def record_action(session: Session, *, agent: User, cif: str, data: ActionInput,
                  now: datetime | None = None, direction: str | None = None,
                  window: bool = True) -> Action:
    """Record an action on ``cif``'s case; no commit.

    The contact rules judge an outbound call or a visit (``direction``: the call's, else the
    result's subtype says; an inbound call is never refused); ``window=False``: a call that
    already happened outside the window is not refused for it (the caller flags it).
    Raises ``ActionValidationError`` (field errors, promise fields included) or
    ``ContactRefused``. The caller rolls back on either.
    """
    now = now or clock.now()
    code, account, card_number, errors = check_input(session, cif, data, now)
    phone = None
    if data.phone_id is not None:
        phone = session.get(Phone, data.phone_id)
        if phone is None or phone.cif != cif:
            errors["phone_id"] = _("This number does not belong to the customer.")
    if errors:
        raise ActionValidationError(errors)

    if code.type in CONTACT_CHECKED_TYPES:
        decision = check_contact(session, cif=cif, action_type=code.type,
                                 phone_id=_number_of_record(session, phone), at=now,
                                 direction=direction or contact_rules.code_direction(
                                     code.type, code.subtype), window=window)
        if not decision.allowed:
            raise ContactRefused(decision.reason or _("The contact rules do not allow this now."),
                                 decision.next_allowed_at)

    follow_up = data.follow_up_date if data.follow_up_date is not None \
        else default_follow_up(code, now)
    action = Action(
        cif=cif, account_number=account.account_number if account else card_number,
        agent_id=agent.id, action_code_id=code.id, type=code.type, subtype=code.subtype,
        result=code.result, at=now, notes=(data.notes or "").strip() or None,
        follow_up_date=follow_up, source="manual",
    )
    session.add(action)
    session.flush()

    if code.is_promise:
        try:
            create_promise(
                session, agent_id=agent.id, cif=cif,
                # promises are tracked per loan; one made on a card counts for the customer
                account_number=account.account_number if account else None,
                amount=data.promise_amount, promised_date=data.promise_date,
                action_id=action.id, today=clock.bank_today(now),
                replace_pending=data.replace_pending,
            )
        except promise_validation_error() as exc:
            raise ActionValidationError(dict(exc.errors)) from exc

    move_case_on(session, cif, code, agent, now, follow_up, now)
    return action


def move_case_on(session: Session, cif: str, code: ActionCode, agent: User, at: datetime,
                 follow_up: date | None, now: datetime) -> None:
    """The case moves on after an action taken ``at`` (a recorded action, or a call's outcome):
    last action and contact, follow-up, status, processing state, the agent's lock released,
    its priority recomputed and the cached queue counts forgotten."""
    case = session.scalar(select(Case).where(Case.cif == cif).with_for_update())
    if case is None:
        return
    case.last_action_at = max(case.last_action_at or at, at)
    if code.is_contact:
        case.last_contact_at = max(case.last_contact_at or at, at)
    if follow_up is not None:
        case.next_action_at = clock.bank_datetime(follow_up)
    if code.is_promise and case.status in ("open", "in_progress"):
        case.status = "promised"
    elif case.status == "open":
        case.status = "in_progress"
    # the processing state the system moves to (a person may have set another: cases.statuses)
    if code.is_promise:
        statuses.system_processing_state(session, case, "monitoring", now)
    elif case.processing_state == "new":
        statuses.system_processing_state(session, case, "contacting", now)
    if case.locked_by_id == agent.id:
        case.locked_by_id = None
        case.locked_until = None
    session.flush()
    queue.recompute_priorities(session, [case.id], now=now)
    queue.forget_queue_counts(case.assigned_agent_id, case.assigned_field_agent_id, agent.id)
