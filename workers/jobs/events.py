"""Jobs of the event bus: relay, one delivery, the stale-delivery sweep."""

from __future__ import annotations

import uuid

from rq import get_current_job

from portal.events.relay import run_relay, sweep_stale
from portal.events.subscribers import deliver
from portal.extensions import db
from workers.context import job


@job
def relay_events() -> dict:
    """Relay every unrelayed event (enqueued after commits and by the schedule)."""
    return run_relay(db.session)


@job
def deliver_event(event_id: str, subscriber: str) -> str:
    """Deliver one event to one subscriber, at most once (see portal.events.subscribers)."""
    rq_job = get_current_job()
    last_attempt = rq_job is None or not rq_job.retries_left
    return deliver(db.session, uuid.UUID(event_id), subscriber, last_attempt=last_attempt)


@job
def sweep_deliveries() -> int:
    """Re-enqueue deliveries whose job was lost (worker killed, crash after commit)."""
    return sweep_stale(db.session)


@job
def recover() -> dict:
    """Run at worker start: relay what is pending and sweep what a dead worker left."""
    return {"relay": run_relay(db.session), "swept": sweep_stale(db.session)}
