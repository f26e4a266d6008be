"""Jobs of the bank synchronisation (integrations queue): on demand (``integrations.sync.trigger``)
and daily (``workers/schedule.py``, cron per integration from ``SYNC_<NAME>_CRON``)."""

from __future__ import annotations

import logging

from sqlalchemy import select

from integrations.sync import AlreadyRunning, record_attempt, run_sync
from portal.extensions import db
from portal.models.integrations import IntegrationSetting
from workers.context import get_app, job

log = logging.getLogger(__name__)


@job
def run_sync_job(integration: str, full: bool = False, business_date: str | None = None,
                 trigger: str = "manual", user_id: int | None = None) -> dict:
    """One sync with its retries (``integrations.sync.run_sync``). A failed sync fails the job
    (ops have been notified); a sync already running elsewhere is skipped."""
    try:
        outcome = run_sync(integration, full=full, business_date=business_date,
                           trigger=trigger, user_id=user_id, app=get_app())
    except AlreadyRunning as exc:
        log.info("sync skipped: %s", exc)
        run_id = record_attempt(get_app(), integration.upper(), status="skipped",
                                note=f"Skipped: {exc}.", trigger=trigger, user_id=user_id)
        return {"integration": integration, "status": "skipped", "reason": str(exc),
                "run_ids": [run_id] if run_id else []}
    return outcome.as_dict()


@job
def run_scheduled_sync(integration: str) -> dict:
    """The daily run: skipped while the integration is switched off
    (``integration_settings.enabled``)."""

    enabled = db.session.scalar(select(IntegrationSetting.enabled).where(
        IntegrationSetting.integration == integration.upper()))
    if enabled is False:
        log.info("scheduled sync skipped: integration disabled",
                 extra={"integration": integration})
        run_id = record_attempt(get_app(), integration.upper(), status="skipped",
                                note="Skipped: the integration is paused by ops.",
                                trigger="schedule")
        return {"integration": integration, "status": "disabled",
                "run_ids": [run_id] if run_id else []}
    return run_sync_job.__wrapped__(integration, trigger="schedule")
