"""Jobs of the work queue: keep stored case priorities in step with time passing."""

from __future__ import annotations

import logging

from portal.extensions import db
from portal.services.queue import recompute_priorities
from workers.context import job

log = logging.getLogger(__name__)


@job
def run_recompute_priorities() -> dict:
    """Recompute ``cases.priority`` of every open case (follow-ups and promise dates come due
    and days since last contact grow without any write to the case); commits."""
    try:
        changed = recompute_priorities(db.session)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    log.info("case priorities recomputed", extra={"changed": changed})
    return {"changed": changed}
