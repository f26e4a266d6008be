"""What the payments pages read: the reconciliation discrepancies and recent runs, the refused
webhook notifications and their codes, the camt file imports, and whether a CIF is known (the
live partial's 404)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.models import CamtImport, Case, Customer, Discrepancy, ReconciliationRun
from portal.models.enums import DISCREPANCY_KINDS, DISCREPANCY_STATUSES
from portal.models.payments import RejectedNotification

PAGE_SIZE = 50
RECENT_RUNS = 10  # reconciliation runs listed above the discrepancies
RECENT_CAMT_IMPORTS = 20


def _count(session: Session, query) -> int:
    return session.scalar(select(func.count()).select_from(query.subquery()))


def discrepancies(session: Session, *, status: str | None, kind: str | None,
                  business_date: date | None, page: int) -> tuple[list, int]:
    """One page of the payments discrepancies, newest first, as (discrepancy, business date)
    rows, and how many match (an unknown kind is not a filter). Without a known status, the
    current rows: every status but ``superseded`` (gaps a later run of their date replaced),
    which shows only when asked for."""
    query = select(Discrepancy, ReconciliationRun.business_date).join(
        ReconciliationRun, ReconciliationRun.id == Discrepancy.run_id
    ).where(ReconciliationRun.integration == "PAYMENTS")
    if status in DISCREPANCY_STATUSES:
        query = query.where(Discrepancy.status == status)
    else:
        query = query.where(Discrepancy.status != "superseded")
    if kind in DISCREPANCY_KINDS:
        query = query.where(Discrepancy.kind == kind)
    if business_date is not None:
        query = query.where(ReconciliationRun.business_date == business_date)
    rows = session.execute(
        query.order_by(Discrepancy.created_at.desc(), Discrepancy.id.desc())
        .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    ).all()
    return list(rows), _count(session, query)


def recent_runs(session: Session) -> list[ReconciliationRun]:
    return list(session.scalars(
        select(ReconciliationRun).where(ReconciliationRun.integration == "PAYMENTS")
        .order_by(ReconciliationRun.started_at.desc()).limit(RECENT_RUNS)
    ).all())


def refused(session: Session, *, code: str | None,
            page: int) -> tuple[list[RejectedNotification], int]:
    """One page of the refused payments notifications, newest first, and how many match."""
    query = select(RejectedNotification).where(RejectedNotification.integration == "PAYMENTS")
    if code:
        query = query.where(RejectedNotification.code == code)
    rows = session.scalars(
        query.order_by(RejectedNotification.received_at.desc(), RejectedNotification.id.desc())
        .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    ).all()
    return list(rows), _count(session, query)


def refused_codes(session: Session) -> list:
    """(code, count) of every refusal code seen, the most frequent first."""
    return list(session.execute(
        select(RejectedNotification.code, func.count())
        .where(RejectedNotification.integration == "PAYMENTS")
        .group_by(RejectedNotification.code).order_by(func.count().desc())
    ).all())


def known_cif(session: Session, cif: str) -> bool:
    """A case or a customer has this CIF."""
    return session.scalar(select(Case.id).where(Case.cif == cif)) is not None or \
        session.scalar(select(Customer.id).where(Customer.cif == cif)) is not None


def recent_camt_imports(session: Session) -> list[CamtImport]:
    return list(session.scalars(
        select(CamtImport).order_by(CamtImport.imported_at.desc(), CamtImport.id.desc())
        .limit(RECENT_CAMT_IMPORTS)
    ).all())
