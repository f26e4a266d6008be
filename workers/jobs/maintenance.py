"""Housekeeping jobs, and the small ones used for health checks and the throughput benchmark."""

from __future__ import annotations

import logging

from flask import current_app

from portal import webhook_receipts
from portal.extensions import db
from workers.context import job

log = logging.getLogger(__name__)


def noop(*args, **kwargs) -> None:
    """Does nothing (bare RQ cost: no app context, no database)."""
    return None


@job
def prune_webhook_receipts() -> dict:
    """Drop the webhook receipts past their keeping time (portal/webhook_receipts.py)."""
    dropped = webhook_receipts.prune(
        db.session, keep_days=int(current_app.config["WEBHOOK_RECEIPT_DAYS"]))
    db.session.commit()
    log.info("webhook receipts pruned", extra={"dropped": dropped})
    return {"dropped": dropped}
