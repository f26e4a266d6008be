"""Forwarding stored positions to the GPS tracking system, in order, in batches.

The backlog is simply the positions whose ``forwarded_at`` is empty (a partial index keeps that
cheap). One forwarder at a time (a Redis lock) takes the oldest rows by id — the order they were
received — posts them, and stamps them forwarded in the same transaction as nothing else; a
batch the GPS system does not take stays in the backlog and the run stops there, so nothing is
sent out of order or lost while the system is down. Each run that has work is an
``integration_runs`` row (GPS / forward) for the ops page.

- :func:`backlog` — the number of positions waiting (what the ops page shows);
- :func:`backlog_status` — that count, the oldest waiting point and the circuit state;
- :func:`forward_pending` — the job body (workers/jobs/field.py);
- :func:`request_forward` — enqueue a forward soon after new points (debounced).
"""

from __future__ import annotations

import contextlib
import logging
import time

from flask import current_app
from sqlalchemy import text
from sqlalchemy.orm import Session

from integrations.gps import circuit
from integrations.gps.client import GpsClient
from integrations.http import ApiError
from portal import clock
from portal.extensions import db, get_redis
from portal.models.integrations import IntegrationRun
from portal.queues import enqueue
from portal.schedules import Jobs

log = logging.getLogger(__name__)

LOCK_KEY = "gps:forward:lock"
DEBOUNCE_KEY = "gps:forward:requested"
DEBOUNCE_SECONDS = 5
MAX_BATCHES_PER_RUN = 200


def _session(session: Session | None) -> Session:
    if session is not None:
        return session

    return db.session


def backlog(session: Session | None = None) -> int:
    """Positions stored but not yet forwarded to the GPS system."""
    return int(_session(session).scalar(text(
        "SELECT count(*) FROM agent_locations WHERE forwarded_at IS NULL")))


def backlog_status(session: Session | None = None) -> dict:
    row = _session(session).execute(text("""
        SELECT count(*) AS waiting, min(received_at) AS oldest_received_at
        FROM agent_locations WHERE forwarded_at IS NULL""")).one()
    return {"backlog": int(row.waiting), "oldest_received_at": row.oldest_received_at,
            "circuit": circuit.state()}


def _positions(rows) -> list[dict]:
    def num(value):
        return None if value is None else float(value)

    return [{
        "id": r.id, "agent": r.username, "agent_id": r.agent_id,
        "lat": float(r.lat), "lon": float(r.lon), "accuracy_m": num(r.accuracy_m),
        "speed": num(r.speed), "heading": num(r.heading), "battery": num(r.battery),
        "recorded_at": r.recorded_at.isoformat(), "flag": r.flag,
    } for r in rows]


def forward_batch(session: Session, client: GpsClient, size: int) -> int:
    """Send the oldest ``size`` waiting positions; stamps and commits them when the GPS system
    took them. Returns how many were sent (0: nothing waiting). Raises ApiError."""
    rows = session.execute(text("""
        SELECT l.id, l.agent_id, u.username, l.lat, l.lon, l.accuracy_m, l.speed, l.heading,
               l.battery, l.recorded_at, l.flag
        FROM agent_locations l JOIN users u ON u.id = l.agent_id
        WHERE l.forwarded_at IS NULL ORDER BY l.id LIMIT :n"""), {"n": size}).all()
    if not rows:
        session.rollback()
        return 0
    client.send_positions(_positions(rows))
    session.execute(text("UPDATE agent_locations SET forwarded_at = :now WHERE id = ANY(:ids)"),
                    {"now": clock.now(), "ids": [r.id for r in rows]})
    session.commit()
    return len(rows)


def forward_pending(session: Session | None = None, *, client: GpsClient | None = None,
                    batch_size: int | None = None, max_batches: int = MAX_BATCHES_PER_RUN,
                    trigger: str = "schedule") -> dict:
    """Drain the backlog, oldest first, until it is empty, the GPS system fails, or
    ``max_batches`` were sent. Returns what happened."""

    session = _session(session)
    client = client or GpsClient.from_config()
    if client is None:
        return {"status": "disabled", "sent": 0, "backlog": backlog(session)}
    batch_size = batch_size or current_app.config.get("GPS_FORWARD_BATCH", 500)
    if circuit.is_open():
        return {"status": "circuit_open", "sent": 0, "backlog": backlog(session)}
    lock = get_redis().lock(LOCK_KEY, timeout=600, blocking=False)
    if not lock.acquire(blocking=False):
        return {"status": "busy", "sent": 0, "backlog": backlog(session)}
    try:
        waiting = backlog(session)
        session.commit()
        if waiting == 0:
            return {"status": "idle", "sent": 0, "backlog": 0}
        started = clock.now()
        t0 = time.monotonic()
        run = IntegrationRun(integration="GPS", kind="forward", trigger=trigger,
                             status="running", started_at=started, extracted=waiting)
        session.add(run)
        session.commit()
        run_id = run.id
        sent, error = 0, None
        for _ in range(max_batches):
            try:
                n = forward_batch(session, client, batch_size)
            except ApiError as exc:
                session.rollback()
                circuit.record_failure()
                error = str(exc)
                break
            circuit.record_success()
            if n == 0:
                break
            sent += n
        left = backlog(session)
        run = session.get(IntegrationRun, run_id)
        run.finished_at = clock.now()
        run.duration_ms = int((time.monotonic() - t0) * 1000)
        run.loaded = sent
        run.status = "failed" if error and not sent else "partial" if error else "succeeded"
        run.errors = [error] if error else None
        run.control_totals = {"backlog_before": waiting, "backlog_after": left}
        session.commit()
    finally:
        with contextlib.suppress(Exception):  # expired lock: another run may hold it now
            lock.release()
    level = logging.WARNING if error else logging.INFO
    log.log(level, "GPS forward", extra={"sent": sent, "backlog": left, "error": error})
    return {"status": "failed" if error else "ok", "sent": sent, "backlog": left,
            "error": error, "run_id": run_id}


def request_forward(delay_seconds: int = DEBOUNCE_SECONDS) -> bool:
    """Enqueue a forward run unless one was requested in the last few seconds (so a burst of
    phone posts makes one job). Never raises: the cron schedule catches up anyway."""
    try:
        if not get_redis().set(DEBOUNCE_KEY, clock.running_now().isoformat(), nx=True,
                               ex=delay_seconds):
            return False
        enqueue("integrations", Jobs.FORWARD_LOCATIONS, trigger="system")
        return True
    except Exception:  # noqa: BLE001
        log.warning("could not enqueue the GPS forward", exc_info=True)
        return False
