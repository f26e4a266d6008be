"""Messages: queue one (one-off from the case view, or a strategy's), choose its contact
point, hold it when a contact rule says no, put it on the case timeline, retry a failed one.

    message = queue_message(db.session, cif=cif, account_number=acc, channel="sms",
                            template=template, language="vi", actor=current_user)
    db.session.commit()   # then enqueue the dispatch job (portal/messages/jobs: views do it)

A message is on the timeline as an action (``actions``, type SMS / EMAIL / LETTER) from the
moment it is queued, held or sent; its status lives on the message (``messages.action_id``),
so a delivery report changes what the timeline shows without touching the append-only action.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import audit, clock
from portal.cases.contact_rules import (
    MessageRules,
    get_message_rules,
    message_hold_reason,
    next_send_opening,
)
from portal.messages import vietqr
from portal.messages.rendering import render, template_variables
from portal.models import Action, Address, Case, Email, Message, MessageTemplate, Phone

ACTION_TYPES = {"sms": "SMS", "email": "EMAIL", "letter": "LETTER"}
SMS_PHONE_TYPES = ("MOBILE",)


class MessageError(ValueError):
    """A message that cannot be queued (unknown template, contact point not the customer's)."""


def contact_points(session: Session, cif: str, channel: str) -> list:
    """The customer's own contact points of ``channel`` (phones, e-mail addresses or postal
    addresses), primary first."""
    model = {"sms": Phone, "email": Email, "letter": Address}[channel]
    return list(session.scalars(select(model).where(model.cif == cif)
                                .order_by(model.is_primary.desc(), model.id)))


def default_contact_point(session: Session, cif: str, channel: str):
    """The point a message goes to when none was chosen: for SMS the primary verified mobile
    (else any verified mobile, else the primary phone: the rules will then hold it and say
    why), for e-mail the primary address, for a letter the primary postal address."""
    points = contact_points(session, cif, channel)
    if channel == "sms":
        mobiles = [p for p in points if p.type in SMS_PHONE_TYPES] or points
        usable = [p for p in mobiles if p.is_verified and not p.do_not_contact
                  and not p.messages_opt_out]
        return (usable or mobiles or [None])[0]
    return (points or [None])[0]


def recipient_of(point, channel: str) -> str | None:
    if point is None:
        return None
    if channel == "sms":
        return point.number_e164 or point.number
    if channel == "email":
        return point.address
    parts = [point.line1, point.line2, point.ward, point.district, point.city, point.province]
    return ", ".join(p for p in parts if p)[:320]


def set_contact_point(message: Message, point) -> None:
    message.phone_id = point.id if message.channel == "sms" and point is not None else None
    message.email_id = point.id if message.channel == "email" and point is not None else None
    message.address_id = point.id if message.channel == "letter" and point is not None else None
    message.recipient = recipient_of(point, message.channel)


def choose_contact_point(session: Session, message: Message) -> None:
    """Fill the message's contact point when none is set (``default_contact_point``)."""
    if message.phone_id or message.email_id or message.address_id:
        return
    set_contact_point(message, default_contact_point(session, message.cif, message.channel))


def render_message(session: Session, message: Message, *,
                   extra: dict[str, str] | None = None) -> None:
    """Fill an empty body (and subject) from the message's template and its account."""
    if message.body or message.template is None:
        return
    variables = template_variables(session, message.cif, message.account_number,
                                   message.language, extra=extra)
    message.subject, message.body = render(message.template, variables, message.language)
    if variables["pay_link"] and variables["pay_link"] in message.body:
        # what the customer's transfer from the pay page will carry (payments match it)
        message.payment_reference = vietqr.payment_reference(variables["account_number"])


def ensure_action(session: Session, message: Message, at: datetime) -> Action:
    """The message's timeline entry (made once)."""
    if message.action_id is not None:
        return session.get(Action, message.action_id)
    action = Action(cif=message.cif, account_number=message.account_number,
                    agent_id=message.created_by_id, type=ACTION_TYPES[message.channel],
                    at=at, notes=(message.subject + "\n" if message.subject else "")
                    + (message.body or "") or None,
                    source="manual" if message.source == "manual" else "system")
    session.add(action)
    session.flush()
    message.action_id = action.id
    return action


def hold(message: Message, reason: str, at: datetime, until: datetime | None = None) -> None:
    message.status = "held"
    message.hold_reason = reason
    message.next_attempt_at = until


def hold_until(session: Session, message: Message, reason: str, at: datetime,
               rules: MessageRules | None = None) -> datetime | None:
    """When a held message is looked at again: the channel's next sending hour for quiet
    hours; never (None) for the other reasons."""
    if reason != "quiet_hours":
        return None
    return next_send_opening(rules or get_message_rules(session), message.channel, at)


def queue_message(session: Session, *, cif: str, account_number: str | None, channel: str,
                  template: MessageTemplate | None, language: str, actor: Any,
                  source: str = "manual", contact_point_id: int | None = None,
                  body: str | None = None, subject: str | None = None,
                  at: datetime | None = None, extra: dict[str, str] | None = None,
                  check_rules: bool = True) -> Message:
    """Queue one message to customer ``cif`` about ``account_number``; its contact point is
    ``contact_point_id`` (a phone, e-mail or address id of ``channel``) or the default one.
    The body is rendered now from ``template`` unless given. With ``check_rules`` the
    contact rules are asked at once: a message they stop is held (with its reason) and never
    queued. On the timeline at once; audited. No commit."""
    if channel not in ACTION_TYPES:
        raise MessageError(f"unknown channel {channel!r}")
    if template is not None and template.channel != channel:
        raise MessageError("the template is for another channel")
    at = at or clock.now()
    case = session.scalar(select(Case).where(Case.cif == cif))
    message = Message(cif=cif, case_id=case.id if case else None, account_number=account_number,
                      channel=channel, template=template, language=language,
                      business_date=clock.bank_today(at), source=source, status="queued",
                      next_attempt_at=at, attempts=0, created_by_id=getattr(actor, "id", None),
                      body=body or "", subject=subject)
    if contact_point_id is not None:
        point = next((p for p in contact_points(session, cif, channel)
                      if p.id == contact_point_id), None)
        if point is None:
            raise MessageError("the contact point is not one of this customer's")
        set_contact_point(message, point)
    else:
        choose_contact_point(session, message)
    render_message(session, message, extra=extra)
    session.add(message)
    session.flush()
    if check_rules:
        reason = message_hold_reason(session, message, at)
        if reason is not None:

            hold(message, reason, at, hold_until(session, message, reason, at))
    ensure_action(session, message, at)
    audit.record(session, actor, "message.queue", "message", message.id,
                 after={"cif": cif, "channel": channel, "status": message.status,
                        "hold_reason": message.hold_reason,
                        "template": template.code if template else None,
                        "recipient": message.recipient})
    return message


def apply_report(session: Session, message: Message, status: str, at: datetime,
                 detail: str | None) -> bool:
    """The gateway's word on a sent SMS (a delivery report, or its answer when asked):
    ``delivered`` or ``failed``. False when it changes nothing (a repeat, or a message
    already delivered or failed). No commit."""
    if message.status != "sent" or status not in ("delivered", "failed"):
        return False
    message.status = status
    if status == "delivered":
        message.delivered_at = at
    else:
        message.failed_at = at
        message.status_detail = (detail or "the gateway reported the SMS undelivered")[:500]
    return True


def retry_failed(session: Session, message_id: int, actor: Any,
                 at: datetime | None = None) -> Message | None:
    """Put a failed message back in the queue with its attempts reset (ops' retry button);
    audited. None when it is not failed. No commit."""
    message = session.get(Message, message_id, with_for_update=True)
    if message is None or message.status != "failed":
        return None
    before = {"status": message.status, "attempts": message.attempts,
              "status_detail": message.status_detail}
    message.status = "queued"
    message.attempts = 0
    message.failed_at = None
    message.next_attempt_at = at or clock.now()
    audit.record(session, actor, "message.retry", "message", message.id, before=before,
                 after={"status": "queued", "attempts": 0})
    return message


# -- ops --------------------------------------------------------------------------------------


def channel_health(session: Session, since: datetime) -> list[dict]:
    """Per channel (SMS gateway, SMTP, letters): messages by status since ``since``, the
    queue waiting now, the last failure (when, why) and the breaker's state."""
    from sqlalchemy import func

    from integrations.control import breaker

    counts: dict[str, dict[str, int]] = {c: {} for c in ACTION_TYPES}
    for channel, status, count in session.execute(
            select(Message.channel, Message.status, func.count())
            .where(Message.created_at >= since).group_by(Message.channel, Message.status)):
        counts[channel][status] = count
    waiting = dict(session.execute(
        select(Message.channel, func.count()).where(Message.status == "queued")
        .group_by(Message.channel)).all())
    rows = []
    for channel, system in (("sms", "SMS"), ("email", "EMAIL"), ("letter", None)):
        last = session.scalar(
            select(Message).where(Message.channel == channel,
                                  Message.status_detail.is_not(None))
            .order_by(func.coalesce(Message.failed_at, Message.updated_at).desc()).limit(1))
        rows.append({"channel": channel, "system": system, "counts": counts[channel],
                     "waiting": waiting.get(channel, 0),
                     "last_error": last.status_detail if last else None,
                     "last_error_at": (last.failed_at or last.updated_at) if last else None,
                     "breaker": breaker(system).state() if system else None})
    return rows


def failed_messages(session: Session, limit: int = 50) -> list[Message]:
    return list(session.scalars(select(Message).where(Message.status == "failed")
                                .order_by(Message.failed_at.desc().nulls_last(),
                                          Message.id.desc()).limit(limit)))
