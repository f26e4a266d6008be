"""Contact rules: when and how often a customer may be contacted, configurable per bank.

    decision = check_contact(session, cif=cif, action_type="CALL", phone_id=phone.id, at=now)
    if not decision.allowed:
        ...  # show decision.reason and decision.next_allowed_at to the agent

Rules (stored in ``app_settings`` under ``contact_rules``; defaults below for what is not set).
They limit outbound contact only: a call the customer makes (an inbound call, a result of
subtype ``INBOUND``) and its outcome are recorded at any hour, whatever the rules say.

- outbound calls and visits only inside the contact window, local time in ``BANK_TIMEZONE``
  (default 07:00–21:00; the end is exclusive: 21:00 is already outside);
- at most ``max_call_attempts`` CALL actions per customer in any rolling ``attempt_window_days``
  days (default 7 in 7), counting every CALL action recorded on the customer (any agent, any
  result, answered or not);
- never to a phone marked do-not-contact (any action type that uses a phone).

An outbound call that happened outside the window all the same (the dialler's CTI events, a
call logged by hand) is recorded and flagged as a breach on its call record
(``call_records.window_breach``: the window it broke): ``window_breach`` in Python,
``window_breach_sql`` inside SQL statements, one rule in both.

A refusal says why in plain words and gives the earliest time every rule allows again (the next
window opening, or when enough of the counted attempts have left the rolling window — moved to
the next window opening if that falls outside the window). A do-not-contact number has no next
time: ``next_allowed_at`` is None.

Promise limits live here too (``promise_rules``: ``max_days``, default ``PROMISE_MAX_DAYS`` from
the app config, else 30), edited on the same admin page, and so do the payment plan limits
(``plan_rules``, ``PlanRules``: instalments allowed, plan length, first instalment, smallest
instalment, missed instalments that break a plan).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from flask import current_app, has_app_context
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import audit
from portal.clock import bank_zone
from portal.models import Action, AppSetting, Phone
from portal.models.base import utcnow
from portal.phones import phone_national
from portal.text import mask_phone

CONTACT_RULES_KEY = "contact_rules"
PROMISE_RULES_KEY = "promise_rules"
PLAN_RULES_KEY = "plan_rules"
WINDOW_TYPES = ("CALL", "VISIT")  # action types limited to the contact window
CAPPED_TYPE = "CALL"  # action type counted against the rolling cap
INBOUND_SUBTYPES = ("INBOUND",)  # CALL results of calls the customer made (not limited)
DIRECTIONS = ("inbound", "outbound")


@dataclass(frozen=True)
class ContactRules:
    window_start: time = time(7, 0)
    window_end: time = time(21, 0)
    max_call_attempts: int = 7
    attempt_window_days: int = 7

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["window_start"] = self.window_start.strftime("%H:%M")
        data["window_end"] = self.window_end.strftime("%H:%M")
        return data

    @classmethod
    def from_json(cls, data: dict | None) -> ContactRules:
        data = data or {}
        default = cls()
        return cls(
            window_start=_time(data.get("window_start"), default.window_start),
            window_end=_time(data.get("window_end"), default.window_end),
            max_call_attempts=int(data.get("max_call_attempts", default.max_call_attempts)),
            attempt_window_days=int(data.get("attempt_window_days",
                                             default.attempt_window_days)),
        )


@dataclass(frozen=True)
class PromiseRules:
    max_days: int = 30

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict | None) -> PromiseRules:
        data = data or {}
        return cls(max_days=int(data.get("max_days", cls().max_days)))


@dataclass(frozen=True)
class PlanRules:
    """Limits of a payment plan (portal/cases/plans.py checks a plan against them)."""

    min_instalments: int = 2
    max_instalments: int = 12
    max_days: int = 365  # the last instalment at most this many days from today
    first_within_days: int = 30  # the first instalment at most this many days from today
    min_amount: int = 100_000  # the smallest instalment, in the bank's currency
    break_after_missed: int = 1  # missed instalments that break a plan

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict | None) -> PlanRules:
        data = data or {}
        default = cls()
        return cls(**{name: int(data.get(name, getattr(default, name)))
                      for name in asdict(default)})


@dataclass(frozen=True)
class ContactDecision:
    allowed: bool
    reason: str | None = None
    next_allowed_at: datetime | None = None  # UTC


def _time(value: Any, default: time) -> time:
    if not value:
        return default
    if isinstance(value, time):
        return value
    return time.fromisoformat(str(value))


# -- stored rules --------------------------------------------------------------------------------


def _load(session: Session, key: str) -> dict | None:
    row = session.get(AppSetting, key)
    return None if row is None else row.value


def get_contact_rules(session: Session) -> ContactRules:
    """The bank's current contact rules (defaults for anything never configured)."""
    return ContactRules.from_json(_load(session, CONTACT_RULES_KEY))


def get_promise_rules(session: Session) -> PromiseRules:
    """Stored by the admin page; until then ``PROMISE_MAX_DAYS`` from the app config (default
    30)."""
    stored = _load(session, PROMISE_RULES_KEY)
    if stored is None and has_app_context() and current_app.config.get("PROMISE_MAX_DAYS"):
        return PromiseRules(max_days=int(current_app.config["PROMISE_MAX_DAYS"]))
    return PromiseRules.from_json(stored)


def get_plan_rules(session: Session) -> PlanRules:
    """The payment plan limits (defaults for anything never configured)."""
    return PlanRules.from_json(_load(session, PLAN_RULES_KEY))


def _save(session: Session, key: str, value: dict, actor: Any) -> AppSetting:
    row = session.get(AppSetting, key, with_for_update=True)
    before = None if row is None else dict(row.value)
    if row is None:
        row = AppSetting(key=key, value=value)
        session.add(row)
    row.value = value
    row.updated_by_id = getattr(actor, "id", None)
    row.updated_at = utcnow()
    if before != value:
        audit.record(session, actor, "settings.update", "app_setting", key, before=before,
                     after=value)
    return row


def save_contact_rules(session: Session, rules: ContactRules, actor: Any) -> ContactRules:
    """Store ``rules`` (validated by the caller: window_start < window_end, positive counts);
    audited. No commit."""
    if rules.window_start >= rules.window_end:
        raise ValueError("the contact window must start before it ends")
    if rules.max_call_attempts < 1 or rules.attempt_window_days < 1:
        raise ValueError("attempts and days must be at least 1")
    _save(session, CONTACT_RULES_KEY, rules.as_json(), actor)
    return rules


def save_promise_rules(session: Session, rules: PromiseRules, actor: Any) -> PromiseRules:
    if rules.max_days < 0:
        raise ValueError("max_days must not be negative")
    _save(session, PROMISE_RULES_KEY, rules.as_json(), actor)
    return rules


def save_plan_rules(session: Session, rules: PlanRules, actor: Any) -> PlanRules:
    """Store the payment plan limits (validated by the caller); audited. No commit."""
    if not 1 <= rules.min_instalments <= rules.max_instalments:
        raise ValueError("instalments: 1 <= min <= max")
    if rules.first_within_days < 0 or rules.max_days < rules.first_within_days:
        raise ValueError("days: 0 <= first instalment <= plan length")
    if rules.min_amount < 1 or rules.break_after_missed < 1:
        raise ValueError("smallest instalment and missed instalments must be at least 1")
    _save(session, PLAN_RULES_KEY, rules.as_json(), actor)
    return rules


# -- the check -----------------------------------------------------------------------------------


def _local_label(moment: datetime) -> str:
    return moment.astimezone(bank_zone()).strftime("%d/%m/%Y %H:%M")


def _window_label(rules: ContactRules) -> str:
    return f"{rules.window_start:%H:%M}–{rules.window_end:%H:%M}"


def in_bank_hours(at: datetime, start: time, end: time) -> bool:
    """Whether ``at`` falls within [start, end) on the bank's clock."""
    return start <= at.astimezone(bank_zone()).time() < end


def in_window(rules: ContactRules, at: datetime) -> bool:
    return in_bank_hours(at, rules.window_start, rules.window_end)


def code_direction(action_type: str | None, subtype: str | None) -> str:
    """``inbound`` for a CALL result of an inbound subtype (the customer called), else
    ``outbound`` (the bank contacts the customer: calls, visits, messages)."""
    inbound = (action_type or "").upper() == "CALL" and \
        (subtype or "").upper() in INBOUND_SUBTYPES
    return "inbound" if inbound else "outbound"


def window_breach(rules: ContactRules, direction: str, started_at: datetime) -> str | None:
    """The window (``07:00–21:00``) an outbound call started at ``started_at`` broke, or None
    when the window allows it (inside it, or an inbound call)."""
    if direction != "outbound" or in_window(rules, started_at):
        return None
    return _window_label(rules)


# The stored window inside SQL (one row: opens, closes), for statements that judge calls in
# the database (calls.MERGE_CALL_SQL, the migration's backfill, the invariant): the same
# rules and defaults as ``get_contact_rules``.
_DEFAULT = ContactRules()
WINDOW_SQL = f"""(
    SELECT COALESCE(NULLIF(s.value->>'window_start', ''),
                    '{_DEFAULT.window_start:%H:%M}')::time AS opens,
           COALESCE(NULLIF(s.value->>'window_end', ''),
                    '{_DEFAULT.window_end:%H:%M}')::time AS closes
    FROM (SELECT 1) one LEFT JOIN app_settings s ON s.key = '{CONTACT_RULES_KEY}'
)"""


def window_breach_sql(direction: str, started_at: str, zone: str, window: str = "w") -> str:
    """SQL for ``window_breach``: ``direction`` and ``started_at`` are SQL expressions of a
    call, ``zone`` the bank's zone (a bind such as ``:zone``), ``window`` a row of
    ``WINDOW_SQL``. NULL, or the window broken as '07:00–21:00'."""
    local = f"({started_at} AT TIME ZONE {zone})::time"
    return (f"CASE WHEN {direction} = 'outbound' AND NOT ({local} >= {window}.opens "
            f"AND {local} < {window}.closes) THEN to_char({window}.opens, 'HH24:MI') || '–' "
            f"|| to_char({window}.closes, 'HH24:MI') END")


def next_window_opening(rules: ContactRules, at: datetime) -> datetime:
    """The first moment at or after ``at`` inside the window (``at`` itself when inside)."""
    if in_window(rules, at):
        return at
    zone = bank_zone()
    local = at.astimezone(zone)
    day = local.date()
    if local.time() >= rules.window_end:
        day += timedelta(days=1)
    return datetime.combine(day, rules.window_start, tzinfo=zone).astimezone(UTC)


def _recent_calls(session: Session, cif: str, at: datetime, days: int) -> list[datetime]:
    since = at - timedelta(days=days)
    return [moment.astimezone(UTC) for moment in session.scalars(
        select(Action.at)
        .where(Action.cif == cif, Action.type == CAPPED_TYPE, Action.at > since,
               Action.at <= at)
        .order_by(Action.at)
    )]


def call_attempts(session: Session, cif: str, at: datetime, days: int = 7) -> int:
    """CALL actions on ``cif`` in the ``days`` days up to ``at``."""
    return session.scalar(
        select(func.count()).select_from(Action)
        .where(Action.cif == cif, Action.type == CAPPED_TYPE,
               Action.at > at - timedelta(days=days), Action.at <= at)
    ) or 0


def _cap_release(rules: ContactRules, attempts: list[datetime]) -> datetime | None:
    """When the attempts in the window drop below the cap (None: below already)."""
    over = len(attempts) - rules.max_call_attempts
    if over < 0:
        return None
    # the (over + 1) oldest attempts must leave the window; an attempt at t counts while
    # now - days < t, so it has left at exactly t + days
    return attempts[over] + timedelta(days=rules.attempt_window_days)


def check_contact(session: Session, *, cif: str, action_type: str, phone_id: int | None,
                  at: datetime, direction: str = "outbound",
                  window: bool = True) -> ContactDecision:
    """Whether an action of ``action_type`` on customer ``cif`` (through phone ``phone_id``,
    if any) is allowed at ``at`` (aware; UTC or any zone). An ``inbound`` call is always
    allowed. ``window=False``: the caller flags a call outside the window instead of refusing
    it (a call that already happened), the other rules still apply."""
    if at.tzinfo is None:
        raise ValueError("check_contact needs an aware datetime")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}")
    if direction == "inbound":
        return ContactDecision(True)
    at = at.astimezone(UTC)
    rules = get_contact_rules(session)
    action_type = (action_type or "").upper()

    if phone_id is not None:
        phone = session.get(Phone, phone_id)
        if phone is None:
            return ContactDecision(False, _("This phone number is not on file."), None)
        if phone.do_not_contact:
            return ContactDecision(
                False,
                _("The number %(number)s is marked do-not-contact. "
                  "Use another number or channel.",
                  number=mask_phone(phone_national(phone.number_e164 or phone.number))),
                None,
            )

    reasons: list[str] = []
    candidate = at
    attempts: list[datetime] = []
    if action_type == CAPPED_TYPE:
        attempts = _recent_calls(session, cif, at, rules.attempt_window_days)
        release = _cap_release(rules, attempts)
        if release is not None:
            reasons.append(ngettext(
                "This customer has already been called %(calls)d times in the last "
                "%(num)d day (the limit is %(limit)d).",
                "This customer has already been called %(calls)d times in the last "
                "%(num)d days (the limit is %(limit)d).",
                rules.attempt_window_days, calls=len(attempts),
                limit=rules.max_call_attempts))
            candidate = max(candidate, release)
    if window and action_type in WINDOW_TYPES and not in_window(rules, at):
        reasons.append(_(
            "It is %(time)s in the bank's time zone, outside the contact window (%(window)s).",
            time=_local_label(at)[-5:], window=_window_label(rules)))
    if not reasons:
        return ContactDecision(True)
    if window and action_type in WINDOW_TYPES:
        candidate = next_window_opening(rules, candidate)
    return ContactDecision(
        False,
        " ".join([*reasons, _("Next allowed: %(time)s.", time=_local_label(candidate))]),
        candidate,
    )




# -- messages (SMS, e-mail, letters) -------------------------------------------------------------
#
# Stored under ``message_rules``, edited on the same admin page. A message the rules stop is
# held with a reason code (``HOLD_REASONS``, labelled in portal/labels.py, kind
# ``hold_reason``): the dispatcher (portal/messages/dispatch.py) asks ``message_hold_reason``
# just before it sends. A message held for quiet hours only waits: the dispatcher looks at it
# again when the channel's hours open (its ``next_attempt_at``).

MESSAGE_RULES_KEY = "message_rules"
QUIET_CHANNELS = ("sms", "email")  # letters go by post: no quiet hours
HOLD_REASONS = ("no_contact_point", "do_not_contact", "opted_out", "unverified", "wrong_party",
                "quiet_hours", "cap_reached")
WRONG_PARTY_RESULTS = ("WRONG_NUMBER",)  # call results that say a number is not the customer's


@dataclass(frozen=True)
class MessageRules:
    """Per channel: the hours messages may go out (bank time; outside them is quiet), and a
    cap of messages per customer per rolling period (0: no cap). ``require_verified_phone``:
    SMS only to numbers someone verified."""

    sms_send_from: time = time(8, 0)
    sms_send_until: time = time(20, 0)
    email_send_from: time = time(7, 0)
    email_send_until: time = time(21, 0)
    sms_cap: int = 2
    sms_cap_days: int = 7
    email_cap: int = 3
    email_cap_days: int = 7
    letter_cap: int = 1
    letter_cap_days: int = 30
    require_verified_phone: bool = True

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for name, value in data.items():
            if isinstance(value, time):
                data[name] = value.strftime("%H:%M")
        return data

    @classmethod
    def from_json(cls, data: dict | None) -> MessageRules:
        data = data or {}
        default = cls()
        values: dict[str, Any] = {}
        for name, value in asdict(default).items():
            raw = data.get(name)
            if isinstance(value, time):
                values[name] = _time(raw, value)
            elif isinstance(value, bool):
                values[name] = value if raw is None else bool(raw)
            else:
                values[name] = value if raw is None else int(raw)
        return cls(**values)

    def hours(self, channel: str) -> tuple[time, time] | None:
        if channel not in QUIET_CHANNELS:
            return None
        return getattr(self, f"{channel}_send_from"), getattr(self, f"{channel}_send_until")

    def cap(self, channel: str) -> tuple[int, int]:
        return getattr(self, f"{channel}_cap"), getattr(self, f"{channel}_cap_days")


def get_message_rules(session: Session) -> MessageRules:
    """The bank's message rules (defaults for anything never configured)."""
    return MessageRules.from_json(_load(session, MESSAGE_RULES_KEY))


def save_message_rules(session: Session, rules: MessageRules, actor: Any) -> MessageRules:
    """Store ``rules`` (each channel's hours start before they end, caps not negative, periods
    at least a day); audited. No commit."""
    for channel in QUIET_CHANNELS:
        start, end = rules.hours(channel)
        if start >= end:
            raise ValueError(f"{channel}: the sending hours must start before they end")
    for channel in ("sms", "email", "letter"):
        count, days = rules.cap(channel)
        if count < 0 or days < 1:
            raise ValueError(f"{channel}: cap >= 0 and period >= 1 day")
    _save(session, MESSAGE_RULES_KEY, rules.as_json(), actor)
    return rules


def in_send_hours(rules: MessageRules, channel: str, at: datetime) -> bool:
    hours = rules.hours(channel)
    return hours is None or in_bank_hours(at, *hours)


def next_send_opening(rules: MessageRules, channel: str, at: datetime) -> datetime:
    """The first moment at or after ``at`` inside ``channel``'s sending hours (UTC)."""
    if in_send_hours(rules, channel, at):
        return at
    start, end = rules.hours(channel)
    zone = bank_zone()
    local = at.astimezone(zone)
    day = local.date()
    if local.time() >= end:
        day += timedelta(days=1)
    return datetime.combine(day, start, tzinfo=zone).astimezone(UTC)


def messages_sent(session: Session, cif: str, channel: str, at: datetime, days: int) -> int:
    """Messages of ``channel`` that went to customer ``cif`` (sent or delivered) in the
    ``days`` days up to ``at``."""
    from portal.models import Message

    return session.scalar(
        select(func.count()).select_from(Message)
        .where(Message.cif == cif, Message.channel == channel,
               Message.status.in_(("sent", "delivered")),
               Message.sent_at > at - timedelta(days=days), Message.sent_at <= at)
    ) or 0


def phone_is_wrong_party(session: Session, phone: Phone) -> bool:
    """A call through ``phone`` ended with a wrong-number result after the number was last
    verified (the call record's number against the phone's)."""
    from portal.models import CallRecord

    numbers = [n for n in (phone.number, phone.number_e164) if n]
    query = (select(func.count()).select_from(Action)
             .join(CallRecord, CallRecord.action_id == Action.id)
             .where(CallRecord.phone.in_(numbers), Action.result.in_(WRONG_PARTY_RESULTS)))
    if phone.verified_at is not None:
        query = query.where(Action.at > phone.verified_at)
    return bool(session.scalar(query))


def message_hold_reason(session: Session, message: Any, at: datetime,
                        rules: MessageRules | None = None) -> str | None:
    """Why ``message`` (a portal.models.Message with its contact point chosen) must not go out
    at ``at``, as a code of ``HOLD_REASONS``; None when every rule lets it go. The contact
    point's own rules come first (no point, do-not-contact, opted out, unverified, wrong
    party), then the channel's quiet hours, then its cap. ``rules``: the stored ones when
    not given (a batch reads them once)."""
    from portal.models import Address, Email

    if at.tzinfo is None:
        raise ValueError("message_hold_reason needs an aware datetime")
    at = at.astimezone(UTC)
    rules = rules or get_message_rules(session)
    channel = message.channel
    if channel == "sms":
        point = session.get(Phone, message.phone_id) if message.phone_id else None
    elif channel == "email":
        point = session.get(Email, message.email_id) if message.email_id else None
    else:
        point = session.get(Address, message.address_id) if message.address_id else None
    if point is None or (point.cif is not None and point.cif != message.cif):
        return "no_contact_point"
    if point.do_not_contact:
        return "do_not_contact"
    if getattr(point, "messages_opt_out", False):
        return "opted_out"
    if channel == "sms":
        if rules.require_verified_phone and not point.is_verified:
            return "unverified"
        if phone_is_wrong_party(session, point):
            return "wrong_party"
    if not in_send_hours(rules, channel, at):
        return "quiet_hours"
    count, days = rules.cap(channel)
    if count and messages_sent(session, message.cif, channel, at, days) >= count:
        return "cap_reached"
    return None
