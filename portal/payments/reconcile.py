"""Reconcile one business date with the payment system's transactions report.

Every transaction of the report is matched to a CRM payment by reference, then compared by
amount and status. The gaps become ``discrepancies`` of a ``reconciliation_runs`` row:

- ``missing_in_crm`` (a webhook dropped or refused): ingested now, through the same rules as
  the webhook (portal.payments.notifications.accept, ``source = reconciliation``) — exactly
  once: a notification arriving later, or a second run, finds it stored — and recorded as
  resolved; one the portal cannot take (unknown loan…) stays open for a person;
- ``missing_in_source`` (a CRM payment of that date the payment system does not know),
  ``amount_mismatch``, ``status_mismatch``: left open for a person (ops page).

Reconciling a date again replaces its open gaps instead of adding to them, and a gap a person
resolved or ignored keeps that resolution (portal.payments.discrepancies.record_gaps).

Payments are ingested before reversals, so a reversal whose payment was dropped too is taken.
Business dates are in the bank's zone (paid_at converted).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal, InvalidOperation

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from integrations.http import ApiError
from integrations.payments.client import PaymentsClient, client_from_config
from integrations.runs import record_skipped
from portal import clock, run_counts
from portal.logging import get_correlation_id
from portal.models import Discrepancy, IntegrationRun, Payment, ReconciliationRun
from portal.payments.discrepancies import record_gaps
from portal.payments.notifications import Refused, accept, parse_notice, with_loan_cif

log = logging.getLogger(__name__)

INTEGRATION = "PAYMENTS"


@dataclass
class Summary:
    run_id: int
    business_date: str
    status: str
    source_count: int = 0
    crm_count: int = 0
    matched: int = 0
    ingested: int = 0
    open: int = 0
    settled: int = 0  # gaps still there that a person resolved or ignored before
    superseded: int = 0  # open gaps of earlier runs of the date replaced by this run
    kinds: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def day_bounds(business_date: date):
    """[start, end) of a business date in the bank's zone, as UTC times."""
    start = clock.bank_datetime(business_date, dtime(0, 0))
    end = clock.bank_datetime(business_date + timedelta(days=1), dtime(0, 0))
    return start, end


def _snapshot(payment: Payment) -> dict:
    return {"reference_number": payment.reference_number, "amount": format(payment.amount, "f"),
            "currency": payment.currency, "status": payment.status,
            "account_number": payment.account_number, "cif": payment.cif,
            "paid_at": payment.paid_at.isoformat(), "source": payment.source,
            "payment_id": payment.id}


def _source_value(record: dict) -> dict:
    keep = ("reference_number", "type", "amount", "currency", "status", "loan_account_number",
            "cif", "paid_at", "original_reference", "event_id")
    return {k: record.get(k) for k in keep if record.get(k) is not None}


def _amount(record: dict) -> Decimal | None:
    try:
        return Decimal(str(record.get("amount")))
    except (InvalidOperation, ValueError):
        return None


def reconcile(session: Session, client: PaymentsClient, business_date: date, *,
              trigger: str = "schedule", user_id: int | None = None) -> Summary:
    """Run the reconciliation of ``business_date``; commits as it goes. Raises ``ApiError``
    (after recording the run as failed) when the report cannot be read."""
    started = clock.now()
    clock_start = time.monotonic()
    integration_run = IntegrationRun(
        integration=INTEGRATION, kind="reconcile", trigger=trigger, status="running",
        business_date=business_date, started_at=started, triggered_by_id=user_id,
        correlation_id=get_correlation_id(),
    )
    session.add(integration_run)
    session.flush()
    run = ReconciliationRun(integration=INTEGRATION, business_date=business_date,
                            integration_run_id=integration_run.id, status="running",
                            started_at=started)
    session.add(run)
    session.commit()
    summary = Summary(run.id, business_date.isoformat(), "running")

    try:
        source = [r for r in client.transactions(business_date) if isinstance(r, dict)]
    except ApiError as exc:
        session.rollback()
        run.status = integration_run.status = "failed"
        run.finished_at = integration_run.finished_at = clock.now()
        integration_run.errors = [str(exc)[:500]]
        integration_run.duration_ms = int((time.monotonic() - clock_start) * 1000)
        session.commit()
        log.warning("payments reconciliation: report unavailable",
                    extra={"business_date": summary.business_date, "error": str(exc)})
        raise

    start, end = day_bounds(business_date)
    references = [str(r.get("reference_number")) for r in source if r.get("reference_number")]

    def crm_payments() -> dict[str, Payment]:
        found: dict[str, Payment] = {}
        for chunk in range(0, max(1, len(references)), 5000):
            keys = references[chunk:chunk + 5000]
            query = select(Payment).where(or_(
                (Payment.paid_at >= start) & (Payment.paid_at < end),
                Payment.reference_number.in_(keys)))
            for payment in session.scalars(query.execution_options(populate_existing=True)):
                found[payment.reference_number] = payment
        return found

    crm = crm_payments()
    found: list[Discrepancy] = []

    # 1. what the CRM lacks: ingest it (payments first, then reversals)
    missing = [r for r in source if str(r.get("reference_number")) not in crm]
    missing.sort(key=lambda r: (r.get("type") == "payment.reversed", str(r.get("paid_at"))))
    for record in missing:
        key = str(record.get("reference_number") or "?")[:64]
        try:
            with session.begin_nested():
                notice = with_loan_cif(session, parse_notice(record, require_event_id=False))
                outcome = accept(session, notice, source="reconciliation")
        except Refused as refusal:
            found.append(Discrepancy(
                run_id=run.id, kind="missing_in_crm", entity="payment", key=key,
                source_value=_source_value(record), status="open",
                crm_value={"error": refusal.code, "message": refusal.message,
                           "field": refusal.field}))
            continue
        summary.ingested += 0 if outcome.duplicate else 1
        found.append(Discrepancy(
            run_id=run.id, kind="missing_in_crm", entity="payment", key=key,
            source_value=_source_value(record), crm_value={"payment_id": outcome.payment_id},
            status="resolved", resolved_at=clock.now(),
            resolution=("Ingested automatically from the payment system's report"
                        if not outcome.duplicate else "Arrived meanwhile (duplicate)")
            + f" as payment {outcome.payment_id}."))
    session.commit()

    # 2. compare what both hold
    crm = crm_payments()
    source_refs = set()
    source_total = Decimal(0)
    for record in source:
        ref = str(record.get("reference_number"))
        source_refs.add(ref)
        amount = _amount(record)
        if record.get("status") == "received" and amount is not None:
            source_total += amount
        payment = crm.get(ref)
        if payment is None:
            continue  # recorded above as missing_in_crm (open)
        if amount is None or payment.amount != amount:
            found.append(Discrepancy(run_id=run.id, kind="amount_mismatch", entity="payment",
                                     key=ref[:64], source_value=_source_value(record),
                                     crm_value=_snapshot(payment)))
        elif record.get("status") != payment.status:
            found.append(Discrepancy(run_id=run.id, kind="status_mismatch", entity="payment",
                                     key=ref[:64], source_value=_source_value(record),
                                     crm_value=_snapshot(payment)))
        else:
            summary.matched += 1

    # 3. what the payment system does not know
    crm_of_day = [p for p in crm.values() if start <= p.paid_at < end]
    for payment in crm_of_day:
        if payment.reference_number not in source_refs:
            found.append(Discrepancy(run_id=run.id, kind="missing_in_source", entity="payment",
                                     key=payment.reference_number[:64],
                                     crm_value=_snapshot(payment)))

    gaps = record_gaps(session, run, found)
    found = gaps.stored
    summary.source_count = len(source)
    summary.crm_count = len(crm_of_day)
    summary.open, summary.settled, summary.superseded = gaps.open, gaps.settled, gaps.superseded
    summary.kinds = gaps.kinds()
    summary.status = "succeeded" if summary.open == 0 else "partial"
    finished = clock.now()
    run.status, run.finished_at = summary.status, finished
    run.source_count, run.crm_count = summary.source_count, summary.crm_count
    run.matched_count, run.discrepancy_count = summary.matched, len(found)
    run.source_total = source_total
    run.crm_total = sum((p.amount for p in crm_of_day if p.status == "received"), Decimal(0))
    integration_run.status, integration_run.finished_at = summary.status, finished
    for name, value in run_counts.of_reconciliation(len(source), summary.ingested,
                                                     found).columns().items():
        setattr(integration_run, name, value)
    integration_run.total_amount = source_total
    integration_run.control_totals = {"matched": summary.matched, "discrepancies": len(found),
                                      "by_kind": summary.kinds,
                                      "already_resolved": summary.settled,
                                      "superseded": summary.superseded}
    integration_run.duration_ms = int((time.monotonic() - clock_start) * 1000)
    session.commit()
    log.info("payments reconciliation finished", extra=summary.as_dict())
    return summary


def default_business_date(now: datetime | None = None) -> date:
    """Yesterday in the bank's zone: the last complete business date."""
    return clock.add_days(clock.bank_today(now), -1)


def reconcile_business_date(session: Session, config, business_date: str | date | None = None,
                            *, trigger: str = "schedule", user_id: int | None = None) -> dict:
    """Reconcile ``business_date`` (ISO date; default yesterday, bank zone) with the payment
    system's report, through the client ``config`` describes; commits. What the daily job and
    ``flask payments reconcile`` run."""
    if isinstance(business_date, str):
        business_date = date.fromisoformat(business_date)
    business_date = business_date or default_business_date()
    if not config.get("PAYMENTS_API_URL"):
        skipped = record_skipped(session, INTEGRATION, "reconcile",
                                 "No payment system report is configured (PAYMENTS_API_URL).",
                                 trigger=trigger, user_id=user_id, business_date=business_date)
        session.commit()
        return {"run_id": None, "integration_run_id": skipped.id, "status": "skipped",
                "business_date": business_date.isoformat(), "reason": skipped.note}
    with client_from_config(config) as client:
        try:
            summary = reconcile(session, client, business_date, trigger=trigger, user_id=user_id)
        except Exception:
            session.rollback()
            raise
    return summary.as_dict()
