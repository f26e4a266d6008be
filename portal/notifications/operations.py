"""The per-user inbox: add a notification, count and list unread ones, mark them read.

Kinds in use: ``promise_broken``, ``payment_received``, ``customer_changed``, ``info``,
``window_breach`` (to a supervisor: an agent's outbound call outside the contact window),
``account_moved`` (a bank sync gave a loan or card to another customer), ``owner_moves_held``
(to ops: a run's moves wait for a decision). Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from portal import clock
from portal.models import Notification

KIND_LABELS = {
    "promise_broken": "Promise broken",
    "payment_received": "Payment received",
    "customer_changed": "Customer data changed",
    "account_moved": "Account moved to another customer",
    "owner_moves_held": "Account moves held",
    "window_breach": "Call outside the contact window",
    "info": "Information",
}


def notify(session: Session, user_id: int, kind: str, title: str, body: str | None = None,
           link: str | None = None, cif: str | None = None,
           event_id: str | None = None) -> Notification:
    """Add a notification to ``user_id``'s inbox (no commit)."""
    row = Notification(user_id=user_id, kind=kind[:40], title=title[:200], body=body,
                       link=(link or None) and link[:300], cif=cif,
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
