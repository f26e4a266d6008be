"""What the ops pages read: integration runs (filtered, a page at a time), one run with its
quarantined records, retries and captured log lines, and the quarantined records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import clock
from portal.extensions import get_redis
from portal.logging import captured_lines
from portal.models import IntegrationRun, QuarantinedRecord
from portal.models.enums import INTEGRATIONS, RUN_STATUSES

PAGE_SIZE = 50
RUN_QUARANTINED_SHOWN = 200  # a run's page lists this many of its quarantined records
QUARANTINE_STATUSES = ("open", "reprocessed", "discarded")


def _count(session: Session, query) -> int:
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


def runs(session: Session, *, integration: str | None, status: str | None,
         page: int) -> tuple[list[IntegrationRun], int]:
    """One page of runs, newest first, and how many match (an unknown filter is ignored)."""
    query = select(IntegrationRun)
    if integration in INTEGRATIONS:
        query = query.where(IntegrationRun.integration == integration)
    if status in RUN_STATUSES:
        query = query.where(IntegrationRun.status == status)
    rows = session.scalars(
        query.order_by(IntegrationRun.started_at.desc(), IntegrationRun.id.desc())
        .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    return list(rows), _count(session, query)


def run(session: Session, run_id: int) -> IntegrationRun | None:
    return session.get(IntegrationRun, run_id)


@dataclass
class RunDetail:
    run: IntegrationRun
    quarantined: list[QuarantinedRecord]  # the first RUN_QUARANTINED_SHOWN
    quarantined_total: int
    retries: list[IntegrationRun]
    lines: list[dict]  # the run's captured log lines, each with its ``time_local``
    duration: float | None  # ms; measured from its timestamps while it has none recorded


def run_detail(session: Session, run_id: int) -> RunDetail | None:
    found = run(session, run_id)
    if found is None:
        return None
    quarantined = session.scalars(
        select(QuarantinedRecord).where(QuarantinedRecord.run_id == found.id)
        .order_by(QuarantinedRecord.id).limit(RUN_QUARANTINED_SHOWN)).all()
    quarantined_total = session.scalar(
        select(func.count()).select_from(QuarantinedRecord)
        .where(QuarantinedRecord.run_id == found.id)) or 0
    retries = session.scalars(
        select(IntegrationRun).where(IntegrationRun.retry_of_id == found.id)
        .order_by(IntegrationRun.id)).all()
    duration = found.duration_ms
    if duration is None and found.finished_at:
        duration = (found.finished_at - found.started_at).total_seconds() * 1000
    return RunDetail(run=found, quarantined=list(quarantined),
                     quarantined_total=quarantined_total, retries=list(retries),
                     lines=log_lines(found), duration=duration)


def _local_time(ts: str) -> str:
    """The log's UTC time in the bank's zone like the rest of the page, with its milliseconds."""
    at = datetime.fromisoformat(ts)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(clock.bank_zone()).strftime("%H:%M:%S") + ts[19:23]


def log_lines(found: IntegrationRun) -> list[dict]:
    """The lines logged under the run's correlation id (none when Redis is unavailable)."""
    lines = []
    if found.correlation_id:
        try:
            lines = captured_lines(get_redis(), found.correlation_id)
        except Exception:  # noqa: BLE001 - Redis unavailable: the page says there are none
            lines = []
    for line in lines:
        try:
            line["time_local"] = _local_time(line.get("ts", ""))
        except (TypeError, ValueError):
            line["time_local"] = ""
    return lines


def quarantined(session: Session, *, integration: str | None, status: str | None,
                page: int) -> tuple[list[QuarantinedRecord], int]:
    """One page of quarantined records, newest first, and how many match."""
    query = select(QuarantinedRecord)
    if integration in INTEGRATIONS:
        query = query.where(QuarantinedRecord.integration == integration)
    if status in QUARANTINE_STATUSES:
        query = query.where(QuarantinedRecord.status == status)
    rows = session.scalars(query.order_by(QuarantinedRecord.id.desc())
                           .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    return list(rows), _count(session, query)
