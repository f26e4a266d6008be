"""The dispatcher: send the messages that are due, by channel, under the contact rules.

    counts = dispatch_due(db.session, clock.now(), limit=200)   # commits per batch

Due: ``status = 'queued' AND next_attempt_at <= now``, and messages held for quiet hours whose
hours have opened (``hold_reason = 'quiet_hours' AND next_attempt_at <= now``: asked again).
Rows are taken ``FOR UPDATE SKIP LOCKED`` in batches, so several workers share the work and
never send one message twice. For each: the contact point is chosen when none is set, an empty
body is rendered from the template (a strategy's daily run inserts queued rows with a template
and an empty body), the contact rules are asked (held → status held + reason), then:

- SMS through the gateway (integrations/sms): sent with its provider id; delivery reports
  (portal/webhooks/sms.py) make it delivered or failed;
- e-mail over SMTP (integrations/email): sent;
- letters stay queued for the print batch (portal/messages/letters.py), with no next attempt.

A send that could not reach the system is retried with exponential backoff
(``MESSAGES_RETRY_SECONDS`` × 2^(attempt−1), at most ``MESSAGES_MAX_ATTEMPTS`` attempts), then
the message fails with the reason (shown on the ops page, retried from there). A refusal (a 4xx
from the gateway, a 5xx from SMTP) fails it at once.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from integrations.email.sender import EmailRefused, EmailUnavailable, send_email
from integrations.http import ApiError
from integrations.sms import client as sms_client
from portal.cases.contact_rules import (
    MessageRules,
    get_message_rules,
    message_hold_reason,
)
from portal.messages import operations
from portal.models import Message

log = logging.getLogger(__name__)
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_RETRY_SECONDS = 60


def _config(name: str, default):
    return current_app.config.get(name) or default


def _due(session: Session, now: datetime, limit: int) -> list[Message]:
    return list(session.scalars(
        select(Message)
        .where(Message.next_attempt_at <= now,
               or_(Message.status == "queued",
                   and_(Message.status == "held", Message.hold_reason == "quiet_hours")))
        .order_by(Message.next_attempt_at, Message.id)
        .limit(limit)
        .with_for_update(skip_locked=True)))


def retry_delay(attempts: int) -> timedelta:
    base = float(_config("MESSAGES_RETRY_SECONDS", DEFAULT_RETRY_SECONDS))
    return timedelta(seconds=base * 2 ** max(0, attempts - 1))


def _failed_attempt(message: Message, now: datetime, detail: str, *, final: bool) -> str:
    message.attempts += 1
    message.status_detail = detail[:500]
    attempts = int(_config("MESSAGES_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS))
    if final or message.attempts >= attempts:
        message.status = "failed"
        message.failed_at = now
        message.next_attempt_at = None
        return "failed"
    message.next_attempt_at = now + retry_delay(message.attempts)
    return "retrying"


def _send_sms(client, message: Message, now: datetime) -> str:
    if client is None:
        return _failed_attempt(message, now, "no SMS gateway configured (SMS_GATEWAY_URL)",
                               final=False)
    try:
        accepted = client.send(message.recipient, message.body, reference=f"msg-{message.id}")
    except ApiError as exc:
        return _failed_attempt(message, now, str(exc), final=exc.refused)
    message.attempts += 1
    message.provider_id = accepted.provider_id
    message.status = "sent"
    message.sent_at = now
    message.status_detail = None
    message.next_attempt_at = None
    return "sent"


def _send_email(message: Message, now: datetime) -> str:
    try:
        provider_id = send_email(current_app.config, to=message.recipient,
                                 subject=message.subject or "", body=message.body,
                                 reference=f"msg-{message.id}")
    except EmailRefused as exc:
        return _failed_attempt(message, now, str(exc), final=True)
    except EmailUnavailable as exc:
        return _failed_attempt(message, now, str(exc), final=False)
    message.attempts += 1
    message.provider_id = provider_id[:100]
    message.status = "sent"
    message.sent_at = now
    message.status_detail = None
    message.next_attempt_at = None
    return "sent"


def process(session: Session, message: Message, now: datetime, *, sms=None,
            rules: MessageRules | None = None) -> str:
    """Take one due message one step: held, sent, retrying, failed or (a letter) left for
    the print batch. Returns what happened."""
    rules = rules or get_message_rules(session)
    if message.status == "held":  # quiet hours over: ask the rules again
        message.status, message.hold_reason = "queued", None
    operations.choose_contact_point(session, message)
    operations.render_message(session, message)
    reason = message_hold_reason(session, message, now, rules)
    if reason is not None:
        operations.hold(message, reason, now,
                        operations.hold_until(session, message, reason, now, rules))
        outcome = "held"
    elif message.channel == "letter":
        message.next_attempt_at = None  # the print batch takes it from here
        outcome = "letter"
    elif message.channel == "sms":
        outcome = _send_sms(sms, message, now)
    else:
        outcome = _send_email(message, now)
    operations.ensure_action(session, message, now)
    return outcome


def dispatch_due(session: Session, now: datetime, limit: int = 200) -> dict[str, int]:
    """Send what is due at ``now``, ``limit`` messages per batch until none is left (commits
    per batch). Counts per outcome: sent, held, retrying, failed, letter."""
    counts: Counter[str] = Counter()
    sms = sms_client.from_config(current_app.config)
    rules = get_message_rules(session)
    seen: set[int] = set()
    try:
        while True:
            batch = [m for m in _due(session, now, limit) if m.id not in seen]
            if not batch:
                session.rollback()
                break
            for message in batch:
                seen.add(message.id)
                counts[process(session, message, now, sms=sms, rules=rules)] += 1
            session.commit()
            if len(batch) < limit:
                break
    finally:
        if sms is not None:
            sms.close()
    if counts:
        log.info("messages dispatched", extra={"counts": dict(counts)})
    return dict(counts)


def dispatch_message(session: Session, message_id: int, now: datetime) -> str | None:
    """Send one message now if it is due (the one-off from the case view); commits."""
    message = session.scalar(select(Message).where(Message.id == message_id)
                             .with_for_update(skip_locked=True))
    if message is None or message.status != "queued" or message.next_attempt_at is None \
            or message.next_attempt_at > now:
        session.rollback()
        return None
    sms = sms_client.from_config(current_app.config) if message.channel == "sms" else None
    try:
        outcome = process(session, message, now, sms=sms)
        session.commit()
    finally:
        if sms is not None:
            sms.close()
    return outcome


def reconcile_reports(session: Session, now: datetime, *, older_than: timedelta | None = None,
                      limit: int = 500) -> dict[str, int]:
    """Sent SMS still without a delivery report ``older_than`` after sending (default
    ``MESSAGES_REPORT_WAIT_MINUTES``, 60): ask the gateway for each one's status and apply
    it (a lost report, the portal down when it came). Counts: asked, delivered, failed,
    pending (the gateway has no final word yet), errors. Commits."""
    older_than = older_than or timedelta(
        minutes=int(_config("MESSAGES_REPORT_WAIT_MINUTES", 60)))
    client = sms_client.from_config(current_app.config)
    counts: Counter[str] = Counter()
    if client is None:
        return {}
    rows = list(session.scalars(
        select(Message).where(Message.channel == "sms", Message.status == "sent",
                              Message.provider_id.is_not(None),
                              Message.sent_at <= now - older_than)
        .order_by(Message.sent_at).limit(limit).with_for_update(skip_locked=True)))
    try:
        for message in rows:
            counts["asked"] += 1
            try:
                answer = client.status(message.provider_id)
            except ApiError:
                counts["errors"] += 1
                continue
            status = answer.get("status")
            if status in ("delivered", "failed"):
                operations.apply_report(session, message, status, now,
                                        "the gateway's status: failed" if status == "failed"
                                        else None)
                counts[status] += 1
            else:
                counts["pending"] += 1
        session.commit()
    finally:
        client.close()
    return dict(counts)
