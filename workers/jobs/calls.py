"""Jobs of the call centre: push agent statuses the call centre has not confirmed (every 30 s),
and the daily reconciliation of calls against the call centre's call list."""

from __future__ import annotations

import logging
from datetime import date, timedelta

from flask import current_app

from integrations.callcentre.client import from_config
from portal import clock
from portal.calls import agent_status
from portal.calls import operations as calls
from portal.extensions import db
from workers.context import job

log = logging.getLogger(__name__)


@job
def sync_agent_statuses() -> dict:
    """Retry every unsynced agent status (kept while the call centre was unreachable)."""
    client = from_config(current_app.config)
    try:
        result = agent_status.sync_pending(db.session, client)
    finally:
        if client is not None:
            client.close()
    if result["pending"]:
        log.info("agent statuses pushed to the call centre", extra=result)
    return result


@job
def reconcile_calls(day: str | None = None, trigger: str = "schedule",
                    user_id: int | None = None) -> dict:
    """Match the call centre's calls of ``day`` (ISO date; default: the bank's yesterday)
    against call records; commits the run (skipped, saying why, without a call centre) and its
    discrepancies."""
    business_date = date.fromisoformat(day) if day else \
        clock.bank_today() - timedelta(days=1)
    result = calls.reconcile_calls(db.session, current_app.config, business_date,
                                   trigger=trigger, user_id=user_id)
    log.info("calls reconciled", extra=result)
    return result
