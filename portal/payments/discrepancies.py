"""Reconciliation gaps: how a run stores the gaps it found (``record_gaps``, the one rule for
every integration's reconciliation: payments, calls), and what ops do about them: resolve (or
ignore) a discrepancy with a note, and queue a reconciliation of a business date; both audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from portal import audit, clock
from portal.models import Discrepancy, ReconciliationRun
from portal.queues import enqueue
from portal.schedules import Jobs

RESOLUTION_MAX = 2000  # characters of a resolution note
OUTCOMES = ("resolved", "ignored")
SETTLED = ("resolved", "ignored")  # a person (or the run itself) dealt with the gap
GAPS_LOCK = 7_300_016  # pg_advisory_xact_lock class: one writer of a business date's gaps


class QueueUnavailable(Exception):
    """The reconciliation job could not be queued (Redis down)."""


class NotOpen(Exception):
    """The discrepancy is no longer open (resolved meanwhile, or superseded by a later run)."""


@dataclass
class Gaps:
    stored: list[Discrepancy]  # this run's rows
    settled: int  # gaps still there that were resolved or ignored before: not opened again
    superseded: int  # open gaps of earlier runs of the date that this run replaced

    @property
    def open(self) -> int:
        return sum(1 for d in self.stored if d.status == "open")

    def kinds(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for d in self.stored:
            counts[d.kind] = counts.get(d.kind, 0) + 1
        return counts


def record_gaps(session: Session, run: ReconciliationRun, gaps: list[Discrepancy]) -> Gaps:
    """Store the gaps ``run`` found for its integration and business date (no commit).

    A business date has one current set of gaps, however often it is reconciled: the open gaps
    of the earlier runs of the date are marked ``superseded`` by this run (what is still there
    is open again below, once); a gap still there that was resolved or ignored before keeps
    that resolution and is not opened again. Two runs of one date write one after the other
    (a transaction-level advisory lock)."""
    session.execute(select(func.pg_advisory_xact_lock(
        GAPS_LOCK, func.hashtext(f"{run.integration}:{run.business_date.isoformat()}"))))
    earlier = select(ReconciliationRun.id).where(
        ReconciliationRun.integration == run.integration,
        ReconciliationRun.business_date == run.business_date, ReconciliationRun.id != run.id)
    settled = set(session.execute(
        select(Discrepancy.kind, Discrepancy.key).where(Discrepancy.run_id.in_(earlier),
                                                        Discrepancy.status.in_(SETTLED))).all())
    superseded = session.execute(
        update(Discrepancy).where(Discrepancy.run_id.in_(earlier), Discrepancy.status == "open")
        .values(status="superseded", superseded_by_run_id=run.id,
                updated_at=clock.running_now())
        .execution_options(synchronize_session=False)).rowcount
    stored, known = [], 0
    for gap in gaps:
        gap.run_id = run.id
        if gap.status in (None, "open") and (gap.kind, gap.key) in settled:
            known += 1
            continue
        stored.append(gap)
    session.add_all(stored)
    session.flush()
    return Gaps(stored, known, superseded)


def locked(session: Session, discrepancy_id: int) -> Discrepancy | None:
    """The discrepancy, locked until the transaction ends (two ops resolving it at once)."""
    return session.get(Discrepancy, discrepancy_id, with_for_update=True)


def resolve(session: Session, row: Discrepancy, user, *, outcome: str, note: str) -> None:
    """Close ``row`` as ``outcome`` with the note saying how; the caller commits. Raises
    NotOpen when it is not open any more."""
    if row.status != "open":
        raise NotOpen(f"Discrepancy {row.key} is {row.status} already.")
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
