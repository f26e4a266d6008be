"""Job of the payments area: the daily reconciliation with the payment system's report
(scheduled in workers/schedule.py; on demand from the ops page or
``flask payments reconcile --date``).

Idempotent: a second run of the same date finds everything matched (what the first run ingested
is stored once) and records its own run row.
"""

from __future__ import annotations

import logging
from datetime import date, datetime

from flask import current_app

from integrations.payments.client import client_from_config
from integrations.payments.reconcile import reconcile
from portal import clock
from portal.extensions import db
from workers.context import job

log = logging.getLogger(__name__)


def default_business_date(now: datetime | None = None) -> date:
    """Yesterday in the bank's zone: the last complete business date."""
    return clock.add_days(clock.bank_today(now), -1)


@job
def run_payments_reconciliation(business_date: str | date | None = None,
                                trigger: str = "schedule", user_id: int | None = None) -> dict:
    """Reconcile ``business_date`` (ISO date; default yesterday, bank zone); commits."""
    if isinstance(business_date, str):
        business_date = date.fromisoformat(business_date)
    business_date = business_date or default_business_date()
    with client_from_config(current_app.config) as client:
        try:
            summary = reconcile(db.session, client, business_date, trigger=trigger,
                                user_id=user_id)
        except Exception:
            db.session.rollback()
            raise
    return summary.as_dict()


@job
def release_held(limit: int = 10_000) -> dict:
    """Apply the payments held while ops had paused payments (after a resume)."""
    from portal.payments.effects import release_held_payments

    applied = release_held_payments(db.session, limit=limit)
    db.session.commit()
    log.info("held payments released", extra={"events": applied})
    return {"applied": applied}
