"""Jobs of outbound messages: the dispatcher (every minute by the cron schedule, and at once
after an agent sends a one-off message from the case view)."""

from __future__ import annotations

from portal import clock
from portal.extensions import db
from portal.messages import dispatch
from workers.context import job


@job
def dispatch_messages(limit: int = 200) -> dict:
    """Send the messages that are due (portal/messages/dispatch.py); commits per batch."""
    try:
        return dispatch.dispatch_due(db.session, clock.now(), limit)
    except Exception:
        db.session.rollback()
        raise


@job
def dispatch_message(message_id: int) -> dict:
    """Send one message now (a one-off from the case view) if it is still due; commits."""
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
