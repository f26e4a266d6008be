"""Jobs of outbound messages: the dispatcher (every minute by the cron schedule, and at once
after an agent sends a one-off message from the case view)."""

from __future__ import annotations

import logging

from portal import clock
from portal.extensions import db
from portal.flags import operations as flags
from portal.messages import dispatch
from workers.context import job

log = logging.getLogger(__name__)


def _switched_off() -> bool:
    """The feature flag ``messages`` off for everyone: queued messages wait (none is lost or
    failed) until it is on again; on for chosen teams, what their users queued is sent."""
    if flags.job_enabled("messages", db.session):
        return False
    log.info("messages dispatch skipped: feature flag messages is off for everyone")
    return True


@job
def dispatch_messages(limit: int = 200) -> dict:
    """Send the messages that are due (portal/messages/dispatch.py); commits per batch."""
    if _switched_off():
        return {"skipped": "feature flag messages is off"}
    try:
        return dispatch.dispatch_due(db.session, clock.now(), limit)
    except Exception:
        db.session.rollback()
        raise


@job
def dispatch_message(message_id: int) -> dict:
    """Send one message now (a one-off from the case view) if it is still due; commits."""
    if _switched_off():
        return {"outcome": None, "skipped": "feature flag messages is off"}
    try:
        return {"outcome": dispatch.dispatch_message(db.session, message_id, clock.now())}
    except Exception:
        db.session.rollback()
        raise


@job
def reconcile_reports() -> dict:
    """Ask the SMS gateway about sent SMS whose delivery report never came; commits."""
    try:
        return dispatch.reconcile_reports(db.session, clock.now())
    except Exception:
        db.session.rollback()
        raise
