"""The alert evaluator, every minute (workers/schedule.py ``ops.alerts``)."""

from __future__ import annotations

import logging

from portal.extensions import db
from portal.ops import alerts
from workers.context import job

log = logging.getLogger(__name__)


@job
def evaluate_alerts() -> dict:
    """Raise new alerts, clear ended ones, deliver pending webhooks (portal/ops/alerts.py)."""

    outcome = alerts.evaluate(db.session)
    result = {"raised": [a.key for a in outcome.raised],
              "cleared": [a.key for a in outcome.cleared],
              "holding": outcome.holding, "skipped": outcome.skipped}
    if outcome.raised or outcome.cleared:
        log.info("alerts evaluated", extra=result)
    return result
