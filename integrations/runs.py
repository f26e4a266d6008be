"""Recording a run that has no loader to record it: a triggered job that had nothing to do
(``skipped``, with the reason in its note), or one that failed before its loader wrote a row.

Every job the scheduler or an ops user triggers leaves an ``integration_runs`` row, so the ops
page never says "enqueued" about work that then left no trace. The loaders and reconciliations
write their own rows while they work; this is the one place for the runs they never started.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from portal import clock
from portal.logging import get_correlation_id
from portal.models.integrations import IntegrationRun


def record_run(session: Session, integration: str, kind: str, *, status: str,
               note: str | None = None, errors: list[str] | None = None,
               trigger: str = "schedule", user_id: int | None = None,
               business_date: date | None = None, attempt: int = 1,
               retry_of_id: int | None = None) -> IntegrationRun:
    """A finished run of ``integration`` with no records (no commit)."""
    now = clock.now()
    run = IntegrationRun(
        integration=integration, kind=kind, trigger=trigger, status=status,
        business_date=business_date, started_at=now, finished_at=now, duration_ms=0,
        triggered_by_id=user_id, attempt=attempt, retry_of_id=retry_of_id,
        correlation_id=get_correlation_id(), note=(note or None) and note[:2000],
        errors=[e[:2000] for e in errors] if errors else None,
    )
    session.add(run)
    session.flush()
    return run


def record_skipped(session: Session, integration: str, kind: str, reason: str,
                   **kwargs) -> IntegrationRun:
    """A run that had nothing to do, and why (no commit)."""
    return record_run(session, integration, kind, status="skipped", note=reason, **kwargs)
