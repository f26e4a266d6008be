"""Jobs of the work queue: keep stored case priorities in step with time passing."""

from __future__ import annotations

import logging

from portal.cases.queue import recompute_case_totals, recompute_priorities
from portal.extensions import db
from workers.context import job

log = logging.getLogger(__name__)


@job
def run_recompute_priorities() -> dict:
    """Recompute every case's totals from its products, then ``cases.priority`` of every open
    case (follow-ups and promise dates come due and days since last contact grow without any
    write to the case); commits."""
    try:
        totals = recompute_case_totals(db.session)
        changed = recompute_priorities(db.session)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    log.info("case totals and priorities recomputed",
             extra={"totals_changed": totals, "priorities_changed": changed})
    return {"totals_changed": totals, "priorities_changed": changed}
