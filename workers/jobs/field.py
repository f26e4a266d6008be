"""Jobs of field work: forward stored GPS positions to the GPS tracking system (queued after
new points arrive, and every minute by the cron schedule, so a backlog left while the system
was down drains by itself), and mark yesterday's unvisited visits missed."""

from __future__ import annotations

import logging

from integrations.gps import forward
from portal.extensions import db
from portal.field import visits
from workers.context import job

log = logging.getLogger(__name__)


@job
def forward_locations(trigger: str = "schedule") -> dict:
    """Drain the forwarding backlog in order (integrations/gps/forward.py); commits per batch."""
    try:
        return forward.forward_pending(db.session, trigger=trigger)
    except Exception:
        db.session.rollback()
        raise


@job
def mark_missed_visits() -> dict:
    """Planned visits whose day has passed without a check-in become ``missed``; commits."""
    try:
        count = visits.mark_missed(db.session)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    log.info("missed visits marked", extra={"missed": count})
    return {"missed": count}
