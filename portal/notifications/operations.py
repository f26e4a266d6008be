"""The per-user inbox: add a notification, count and list unread ones, mark them read.

Kinds in use: ``promise_broken``, ``payment_received``, ``customer_changed``, ``info``,
``window_breach`` (to a supervisor: an agent's outbound call outside the contact window),
``account_moved`` (a bank sync gave a loan or card to another customer), ``owner_moves_held``
(to ops: a run's moves wait for a decision). Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from portal import clock
from portal.models import Notification
from portal.notifications.messages import Message, stored

KIND_LABELS = {
    "promise_broken": _l("Promise broken"),
    "payment_received": _l("Payment received"),
    "payment_reversed": _l("Payment reversed"),
    "customer_changed": _l("Customer data changed"),
    "contact_changed": _l("Contact details changed"),
    "account_moved": _l("Account moved to another customer"),
    "owner_moves_held": _l("Account moves held"),
    "window_breach": _l("Call outside the contact window"),
    "assignment": _l("Assignment"),
    "ops_alert": _l("Alert"),
    "ops_alert_cleared": _l("Alert cleared"),
    "sync_failed": _l("Sync failed"),
    "info": _l("Information"),
}


def notify(session: Session, user_id: int, kind: str, title: str | Message,
           body: str | Message | None = None, link: str | None = None, cif: str | None = None,
           event_id: str | None = None) -> Notification:
    """Add a notification to ``user_id``'s inbox (no commit). ``title`` and ``body`` are
    messages (portal/notifications/messages.py: shown in the reader's language) or plain
    text (shown as written)."""
    title, body, words = stored(title, body)
    row = Notification(user_id=user_id, kind=kind[:40], title=title[:200], body=body,
                       message=words, link=(link or None) and link[:300], cif=cif,
                       event_id=None if event_id is None else str(event_id)[:64],
                       created_at=clock.now())
    session.add(row)
    return row


def unread_count(session: Session, user_id: int) -> int:
    return session.scalar(
        select(func.count()).select_from(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
    ) or 0


def list_notifications(session: Session, user_id: int, *, unread_only: bool = False,
                       limit: int = 50, offset: int = 0) -> list[Notification]:
    query = select(Notification).where(Notification.user_id == user_id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    return list(session.scalars(
        query.order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(limit).offset(offset)
    ))


def count_notifications(session: Session, user_id: int, *, unread_only: bool = False) -> int:
    query = select(func.count()).select_from(Notification).where(Notification.user_id == user_id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    return session.scalar(query) or 0


def mark_read(session: Session, user_id: int, notification_ids: Iterable[int] | None = None) -> int:
    """Mark ``user_id``'s notifications read: the given ids (others' ids are ignored), or all
    of them when ``notification_ids`` is None. Returns how many changed."""
    query = (update(Notification)
             .where(Notification.user_id == user_id, Notification.read_at.is_(None))
             .values(read_at=clock.now()))
    if notification_ids is not None:
        ids = [int(i) for i in notification_ids]
        if not ids:
            return 0
        query = query.where(Notification.id.in_(ids))
    return session.execute(query.execution_options(synchronize_session=False)).rowcount or 0
