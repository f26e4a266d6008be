"""Job of the payments area: the daily reconciliation with the payment system's report
(scheduled in workers/schedule.py; on demand from the ops page or
``flask payments reconcile --date``).

Idempotent: a second run of the same date finds everything matched (what the first run ingested
is stored once) and records its own run row.
"""

from __future__ import annotations

import logging
from datetime import date

from flask import current_app

from portal.extensions import db
from portal.payments.effects import release_held_payments
from portal.payments.reconcile import reconcile_business_date
from workers.context import job

log = logging.getLogger(__name__)


@job
def run_payments_reconciliation(business_date: str | date | None = None,
                                trigger: str = "schedule", user_id: int | None = None) -> dict:
    """Reconcile ``business_date`` (ISO date; default yesterday, bank zone); commits."""
    return reconcile_business_date(db.session, current_app.config, business_date,
                                   trigger=trigger, user_id=user_id)


@job
def release_held(limit: int = 10_000) -> dict:
    """Apply the payments held while ops had paused payments (after a resume)."""

    applied = release_held_payments(db.session, limit=limit)
    db.session.commit()
    log.info("held payments released", extra={"events": applied})
    return {"applied": applied}
