"""What ops do about the payments reconciliation: resolve (or ignore) a discrepancy with a
note, and queue a reconciliation of a business date; both audited."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from portal import audit, clock
from portal.models import Discrepancy
from portal.queues import enqueue
from portal.schedules import Jobs

RESOLUTION_MAX = 2000  # characters of a resolution note
OUTCOMES = ("resolved", "ignored")


class QueueUnavailable(Exception):
    """The reconciliation job could not be queued (Redis down)."""


def locked(session: Session, discrepancy_id: int) -> Discrepancy | None:
    """The discrepancy, locked until the transaction ends (two ops resolving it at once)."""
    return session.get(Discrepancy, discrepancy_id, with_for_update=True)


def resolve(session: Session, row: Discrepancy, user, *, outcome: str, note: str) -> None:
    """Close ``row`` as ``outcome`` with the note saying how; the caller commits."""
    before = {"status": row.status, "resolution": row.resolution}
    row.status, row.resolution = outcome, note
    row.resolved_by_id, row.resolved_at = user.id, clock.now()
    audit.record(session, user, "discrepancy.resolve", "discrepancy", row.id,
                 before=before, after={"status": outcome, "resolution": note,
                                       "kind": row.kind, "key": row.key})


def queue_reconciliation(session: Session, user, business_date: date) -> None:
    """Queue the reconciliation of ``business_date`` for a worker; the caller commits the
    audit row. Raises QueueUnavailable when the job queue cannot be reached."""
    try:
        enqueue("integrations", Jobs.RECONCILE_PAYMENTS,
                business_date.isoformat(), "manual", user.id)
    except Exception as exc:  # Redis down: the page says so instead of failing
        raise QueueUnavailable(str(exc)) from exc
    audit.record(session, user, "payments.reconcile", "integration", "PAYMENTS",
                 after={"business_date": business_date.isoformat()})
