"""The relay: turns new outbox events into one delivery row and one RQ job per subscriber.

    SELECT … FROM events WHERE relayed_at IS NULL ORDER BY seq LIMIT n FOR UPDATE SKIP LOCKED

so several relays can run at once without ever taking the same event. For each event and each of
its subscribers a ``pending`` delivery row is inserted (``ON CONFLICT DO NOTHING``: the unique
``(event, subscriber)`` means a row is created once), the events are marked relayed, the
transaction commits, and only then is one job enqueued per *new* row, with a job id derived from
the event id and the subscriber (so a duplicated enqueue overwrites instead of adding a job).

If the process dies between the commit and the enqueue, or a worker is killed in the middle of a
delivery, the row stays ``pending``: ``sweep_stale`` (in the schedule) re-enqueues such rows once
they are older than EVENTS_STALE_AFTER and their job is not queued, scheduled or running.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import Flask, current_app, has_request_context
from redis import Redis
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from portal.events import settings
from portal.events.subscribers import subscribers_for
from portal.extensions import get_redis
from portal.models.base import utcnow
from portal.models.events import Event, EventDelivery
from portal.queues import JobRequest, enqueue, enqueue_many, make_retry
from portal.schedules import Jobs
from portal.tracing import TRACEPARENT

log = logging.getLogger(__name__)

EVENTS_QUEUE = "events"
RELAY_JOB = Jobs.RELAY_EVENTS
DELIVER_JOB = Jobs.DELIVER_EVENT
RELAY_REQUESTED_KEY = "portal:events:relay-requested"
RELAY_REQUEST_TTL = 60


def delivery_job_id(event_id, subscriber: str) -> str:
    """The RQ job id of a delivery: the same event and subscriber always give the same id."""
    digest = hashlib.sha1(subscriber.encode()).hexdigest()[:12]
    return f"ev-{uuid.UUID(str(event_id)).hex}-{digest}"


def _redis() -> Redis:
    return get_redis()


# -- the after-commit trigger -------------------------------------------------------------------


def request_relay(connection: Redis | None = None) -> bool:
    """Enqueue one relay job unless one is already waiting (cheap; called after each commit that
    published events). Returns whether a job was enqueued."""

    connection = connection or _redis()
    if not connection.set(RELAY_REQUESTED_KEY, "1", nx=True, ex=RELAY_REQUEST_TTL):
        return False  # a relay job is queued and has not started: it will see our events
    try:
        enqueue(EVENTS_QUEUE, RELAY_JOB, connection=connection)
    except Exception:
        connection.delete(RELAY_REQUESTED_KEY)
        raise
    return True


class RelayNudger:
    """Makes the relay requests of one process from a background thread, so a web request does
    not wait for Redis after its commit and concurrent commits share one request.

    ``nudge()`` (after a commit) sets a flag; the thread waits ``gather`` seconds for other
    commits, clears the flag and calls ``request_relay`` — which therefore always starts after
    every commit that set the flag before it was cleared. A nudge lost with its process (killed
    before the thread ran) delays those events until the scheduled relay, never loses them."""

    def __init__(self, app: Flask, gather: float = 0.005):
        self.app, self.gather = app, gather
        self._wanted = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    def nudge(self) -> None:
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            self._start()
        if not self._wanted.is_set():  # already wanted: the coming request covers this commit
            self._wanted.set()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
                return
            self._wanted = threading.Event()  # a forked child does not inherit a waiter
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="relay-nudger", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        wanted = self._wanted
        while True:
            wanted.wait()
            time.sleep(self.gather)
            wanted.clear()
            try:
                with self.app.app_context():
                    request_relay()
            except Exception:
                log.warning("could not request an event relay; the scheduled relay will",
                            exc_info=True)


def request_relay_after_commit() -> None:
    """After a commit that published events: ask for a relay — in a web request through the
    process's ``RelayNudger`` (``EVENTS_RELAY_REQUEST_BACKGROUND``), elsewhere at once. Never
    raises: the data is committed, and the scheduled relay catches up if Redis is away."""

    try:
        if has_request_context() and settings.relay_request_in_background():
            nudger().nudge()
        else:
            request_relay()
    except Exception:  # noqa: BLE001 - the commit has happened: never let the trigger fail it
        log.warning("could not request an event relay after commit; the periodic relay will",
                    exc_info=True)


def nudger() -> RelayNudger:
    """The current app's ``RelayNudger`` (one per app and process)."""
    app = current_app._get_current_object()
    found = app.extensions.get("relay_nudger")
    if found is None:
        found = app.extensions.setdefault("relay_nudger", RelayNudger(app))
    return found


# -- relaying -----------------------------------------------------------------------------------


@dataclass
class PendingJob:
    event_id: uuid.UUID
    subscriber: str
    job_id: str
    correlation_id: str | None
    traceparent: str | None = None  # the event's: the delivery continues the publisher's trace


def relay_once(session: Session, limit: int | None = None) -> tuple[int, int]:
    """Relay up to ``limit`` unrelayed events in one transaction, then enqueue their jobs.
    Returns (events relayed, jobs enqueued)."""
    limit = limit or settings.relay_batch()
    rows = session.execute(
        select(Event.id, Event.type, Event.correlation_id, Event.traceparent)
        .where(Event.relayed_at.is_(None))
        .order_by(Event.seq)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not rows:
        session.rollback()
        return 0, 0
    now = utcnow()
    values = []
    correlation = {}
    for event_id, event_type, correlation_id, traceparent in rows:
        correlation[event_id] = (correlation_id, traceparent)
        for sub in subscribers_for(event_type):
            values.append({
                "event_id": event_id, "subscriber": sub.name, "status": "pending",
                "attempts": 0, "job_id": delivery_job_id(event_id, sub.name),
                "enqueued_at": now, "updated_at": now,
            })
    created = []
    if values:
        # executemany with RETURNING (SQLAlchemy batches it into multi-row INSERTs; the statement
        # is compiled once, whatever the batch size)
        created = session.connection().execute(
            insert(EventDelivery)
            .on_conflict_do_nothing(index_elements=["event_id", "subscriber"])
            .returning(EventDelivery.event_id, EventDelivery.subscriber, EventDelivery.job_id),
            values,
        ).all()
    session.execute(
        update(Event).where(Event.id.in_([r[0] for r in rows])).values(relayed_at=now)
    )
    session.commit()
    jobs = [PendingJob(e, s, j, *correlation.get(e, (None, None))) for e, s, j in created]
    enqueue_deliveries(jobs)
    return len(rows), len(jobs)


def relay_pending(session: Session, *, limit: int | None = None,
                  max_batches: int = 1000) -> tuple[int, int]:
    """Relay until no unrelayed event is left (or ``max_batches``). Returns totals."""
    events = jobs = 0
    for _ in range(max_batches):
        n_events, n_jobs = relay_once(session, limit)
        events += n_events
        jobs += n_jobs
        if not n_events:
            break
    return events, jobs


def run_relay(session: Session) -> dict:
    """The relay job's body: clear the request flag first (a later commit then enqueues a new
    relay), and relay everything pending."""
    try:
        _redis().delete(RELAY_REQUESTED_KEY)
    except Exception:
        log.warning("could not clear the relay request flag", exc_info=True)
    events, jobs = relay_pending(session)
    if events:
        log.info("relayed events", extra={"events": events, "jobs": jobs})
    return {"events": events, "jobs": jobs}


def _delivery_meta(job: PendingJob) -> dict | None:
    meta = {}
    if job.correlation_id:
        meta["correlation_id"] = job.correlation_id
    if job.traceparent:
        meta[TRACEPARENT] = job.traceparent
    return meta or None


def enqueue_deliveries(jobs: list[PendingJob]) -> None:
    if not jobs:
        return

    enqueue_many(
        EVENTS_QUEUE,
        [
            JobRequest(DELIVER_JOB, args=(str(j.event_id), j.subscriber), job_id=j.job_id,
                       meta=_delivery_meta(j))
            for j in jobs
        ],
        retry=make_retry(settings.retry_intervals()),
        # the outcome is in event_deliveries: RQ need not keep finished delivery jobs
        result_ttl=0,
    )


# -- recovery: stale deliveries, replay, dead letters --------------------------------------------

_WAITING = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while number:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
    return out or "0"


def _fresh_job_id(row: EventDelivery, tag: str) -> str:
    """A new job id for a delivery that needs another job (≤ 64 characters)."""
    stamp = _base36(time.time_ns() // 1000)
    return f"{delivery_job_id(row.event_id, row.subscriber)}-{tag}{stamp}"


def _job_state(job_id: str | None, connection: Redis) -> tuple[str | None, datetime | None]:
    if not job_id:
        return None, None
    try:
        job = Job.fetch(job_id, connection=connection)
        return job.get_status(refresh=False), job.started_at
    except NoSuchJobError:
        return None, None


def _requeue(session: Session, rows: list[EventDelivery], tag: str) -> int:
    now = utcnow()
    pending = []
    for row in rows:
        row.job_id = _fresh_job_id(row, tag)
        row.enqueued_at = now
        row.updated_at = now
        if row.status == "dead":
            row.status = "pending"
        pending.append(PendingJob(row.event_id, row.subscriber, row.job_id, None))
    ids = {p.event_id for p in pending}
    correlation = {row[0]: row[1:] for row in session.execute(
        select(Event.id, Event.correlation_id, Event.traceparent).where(Event.id.in_(ids)))
    } if ids else {}
    for p in pending:
        p.correlation_id, p.traceparent = correlation.get(p.event_id, (None, None))
    session.commit()
    enqueue_deliveries(pending)
    return len(pending)


def sweep_stale(session: Session, *, older_than: float | None = None, limit: int = 500) -> int:
    """Re-enqueue pending/failed deliveries older than ``older_than`` seconds (default
    EVENTS_STALE_AFTER) whose job is gone: never enqueued (crash after commit), lost, failed
    without the row being updated, or started longer ago than that (its worker died).

    Handling stays exactly-once: the delivery row is locked and checked by the job itself.
    """
    older_than = settings.stale_after() if older_than is None else older_than
    cutoff = utcnow() - timedelta(seconds=older_than)
    system_cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
    rows = session.execute(
        select(EventDelivery)
        .where(EventDelivery.status.in_(("pending", "failed")),
               func.coalesce(EventDelivery.enqueued_at, EventDelivery.updated_at) < cutoff)
        .order_by(EventDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).scalars().all()
    if not rows:
        session.rollback()
        return 0
    connection = _redis()
    stale = []
    for row in rows:
        status, started_at = _job_state(row.job_id, connection)
        if status in _WAITING:
            continue
        # RQ stamps jobs by the system clock, not the product's (portal.clock)
        if status == JobStatus.STARTED and started_at and started_at.replace(
                tzinfo=started_at.tzinfo or UTC) > system_cutoff:
            continue
        stale.append(row)
    if not stale:
        session.rollback()
        return 0
    count = _requeue(session, stale, "s")
    log.warning("re-enqueued stale deliveries", extra={"count": count})
    return count


def retry_dead(session: Session, *, subscriber: str | None = None, event_type: str | None = None,
               delivery_ids: list[int] | None = None, limit: int = 10000) -> int:
    """Give dead deliveries a new job (status back to pending, attempts kept)."""
    query = select(EventDelivery).where(EventDelivery.status == "dead")
    if subscriber:
        query = query.where(EventDelivery.subscriber == subscriber)
    if event_type:
        query = query.join(Event, Event.id == EventDelivery.event_id).where(
            Event.type == event_type)
    if delivery_ids:
        query = query.where(EventDelivery.id.in_(delivery_ids))
    rows = session.execute(
        query.order_by(EventDelivery.id).limit(limit).with_for_update(
            of=EventDelivery, skip_locked=True)
    ).scalars().all()
    if not rows:
        session.rollback()
        return 0
    return _requeue(session, list(rows), "d")


def replay(session: Session, since: datetime, *, event_type: str | None = None) -> dict:
    """Relay again the events that occurred since ``since``: subscribers without a delivery row
    (e.g. added after the event) get one; pending or failed deliveries get a new job. Delivered
    and dead deliveries are left alone (dead ones: ``retry_dead``)."""
    where = [Event.occurred_at >= since]
    if event_type:
        where.append(Event.type == event_type)
    reset = session.execute(update(Event).where(*where).values(relayed_at=None)).rowcount
    rows = session.execute(
        select(EventDelivery)
        .join(Event, Event.id == EventDelivery.event_id)
        .where(*where, EventDelivery.status.in_(("pending", "failed")))
        .with_for_update(of=EventDelivery, skip_locked=True)
    ).scalars().all()
    requeued = _requeue(session, list(rows), "p") if rows else 0
    session.commit()
    events, jobs = relay_pending(session)
    return {"events": reset, "requeued": requeued, "new_deliveries": jobs}
