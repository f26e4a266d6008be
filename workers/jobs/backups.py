"""The nightly backup and its retention (portal/schedules.py ``ops.backup``;
portal/vault/backup.py)."""

from __future__ import annotations

import logging

from flask import current_app

from portal.vault import backup
from workers.context import job

log = logging.getLogger(__name__)


@job
def take_backup() -> dict:
    try:
        result = backup.scheduled(current_app)
    except backup.CopyRefused as exc:
        log.error("backup failed", extra={"error": str(exc)})
        raise
    log.info("backup taken and old ones pruned", extra=result)
    return result
