"""Forwarding stored positions to the GPS tracking system, in order, in batches.

The backlog is simply the positions whose ``forwarded_at`` is empty (a partial index keeps that
cheap). One forwarder at a time (a Redis lock) takes the oldest rows by id — the order they were
received — posts them, and stamps them forwarded in the same transaction as nothing else; a
batch the GPS system does not take stays in the backlog and the run stops there, so nothing is
sent out of order or lost while the system is down. Each run that has work is an
``integration_runs`` row (GPS / forward) for the ops page; so is a run ops asked for (``manual``
or ``retry``) that had nothing to do, as ``skipped`` with the reason (the scheduled and
after-post runs every minute that find nothing leave no row: the backlog on the card says it).

- :func:`backlog` — the number of positions waiting (what the ops page shows);
- :func:`backlog_status` — that count, the oldest waiting point and the circuit state;
- :func:`forward_pending` — the job body (workers/jobs/field.py);
- :func:`request_forward` — enqueue a forward soon after new points (debounced).

Implausible positions (``implausible_reason``: outside the service area, too fast; see
portal/field/plausibility.py) are never sent: the GPS system verifies visits on the track it
holds. The forwarder takes them from the backlog with the rest and holds them back, each a
quarantined record of its run with the reason. A run's counts follow portal.run_counts:
``extracted`` = positions taken from the backlog, ``quarantined`` = held back as implausible,
``loaded`` = sent, ``failed`` = taken but not taken by the GPS system (they stay waiting).
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
from integrations.runs import record_skipped
from portal import clock
from portal.extensions import db, get_redis
from portal.models.integrations import IntegrationRun, QuarantinedRecord
from portal.queues import enqueue
from portal.run_counts import RunCounts
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


class BatchFailed(Exception):
    """The GPS system did not take a batch of ``taken`` positions (nothing was stamped)."""

    def __init__(self, error: ApiError, taken: int):
        super().__init__(str(error))
        self.error = error
        self.taken = taken


def forward_batch(session: Session, client: GpsClient, size: int,
                  run_id: int | None = None) -> tuple[int, int]:
    """Take the oldest ``size`` waiting positions: send the plausible ones, hold back the
    implausible ones (a quarantined record of ``run_id`` each, with the reason); stamps them
    all and commits when the GPS system took the batch. Returns (sent, held back); (0, 0):
    nothing waiting. Raises BatchFailed (nothing stamped, nothing quarantined)."""
    rows = session.execute(text("""
        SELECT l.id, l.agent_id, u.username, l.lat, l.lon, l.accuracy_m, l.speed, l.heading,
               l.battery, l.recorded_at, l.flag, l.implausible_reason
        FROM agent_locations l JOIN users u ON u.id = l.agent_id
        WHERE l.forwarded_at IS NULL ORDER BY l.id LIMIT :n"""), {"n": size}).all()
    if not rows:
        session.rollback()
        return 0, 0
    send = [r for r in rows if r.implausible_reason is None]
    held = [r for r in rows if r.implausible_reason is not None]
    if send:
        try:
            client.send_positions(_positions(send))
        except ApiError as exc:
            session.rollback()
            raise BatchFailed(exc, len(rows)) from exc
    session.add_all(QuarantinedRecord(
        integration="GPS", run_id=run_id, entity="position", record_key=str(r.id),
        reason=f"not forwarded: implausible position ({r.implausible_reason.replace('_', ' ')})",
        payload={**position, "implausible_reason": r.implausible_reason})
        for r, position in zip(held, _positions(held), strict=True))
    session.execute(text("UPDATE agent_locations SET forwarded_at = :now WHERE id = ANY(:ids)"),
                    {"now": clock.now(), "ids": [r.id for r in rows]})
    session.commit()
    return len(send), len(held)


def forward_pending(session: Session | None = None, *, client: GpsClient | None = None,
                    batch_size: int | None = None, max_batches: int = MAX_BATCHES_PER_RUN,
                    trigger: str = "schedule") -> dict:
    """Drain the backlog, oldest first, until it is empty, the GPS system fails, or
    ``max_batches`` were sent. Returns what happened."""

    session = _session(session)
    client = client or GpsClient.from_config()
    if client is None:
        return _nothing(session, trigger, "disabled", "No GPS system is configured "
                        "(GPS_API_URL): positions are kept.")
    batch_size = batch_size or current_app.config.get("GPS_FORWARD_BATCH", 500)
    if circuit.is_open():
        return _nothing(session, trigger, "circuit_open", "The GPS system's circuit breaker "
                        "is open: positions wait.")
    lock = get_redis().lock(LOCK_KEY, timeout=600, blocking=False)
    if not lock.acquire(blocking=False):
        return _nothing(session, trigger, "busy", "Another forwarding run is in progress.")
    try:
        waiting = backlog(session)
        session.commit()
        if waiting == 0:
            return _nothing(session, trigger, "idle",
                            "Nothing to do: no position waiting to be forwarded.", waiting=0)
        started = clock.now()
        t0 = time.monotonic()
        run = IntegrationRun(integration="GPS", kind="forward", trigger=trigger,
                             status="running", started_at=started)
        session.add(run)
        session.commit()
        run_id = run.id
        sent, held, failed, error = 0, 0, 0, None
        for _ in range(max_batches):
            try:
                n, h = forward_batch(session, client, batch_size, run_id)
            except BatchFailed as exc:
                circuit.record_failure()
                error, failed = str(exc), exc.taken
                break
            if n:
                circuit.record_success()
            if n + h == 0:
                break
            sent, held = sent + n, held + h
        left = backlog(session)
        run = session.get(IntegrationRun, run_id)
        run.finished_at = clock.now()
        run.duration_ms = int((time.monotonic() - t0) * 1000)
        counts = RunCounts(extracted=sent + held + failed, quarantined=held, loaded=sent,
                           failed=failed)
        for name, value in counts.columns().items():
            setattr(run, name, value)
        # held-back implausible positions are not a forwarding failure (their count says it)
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
            "error": error, "run_id": run_id, **({"held_back": held} if held else {})}


def _nothing(session: Session, trigger: str, status: str, reason: str, *,
             waiting: int | None = None) -> dict:
    """A run that did not forward anything: recorded as skipped when ops asked for it."""
    result = {"status": status, "sent": 0,
              "backlog": backlog(session) if waiting is None else waiting}
    if trigger in ("manual", "retry"):
        result["run_id"] = record_skipped(session, "GPS", "forward", reason, trigger=trigger).id
        result["reason"] = reason
        session.commit()
    return result


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
