"""Worker health for the ops page and ``flask workers status``: plain dicts, nothing rendered.

``collect_health()`` returns::

    {"checked_at": iso, "ok": bool, "problems": [str],
     "workers": [{"name", "hostname", "pid", "state", "queues", "current_job_id",
                  "last_heartbeat", "heartbeat_age_s", "alive", "birth", "successful_jobs",
                  "failed_jobs", "total_working_time_s"}],
     "queues": [{"name", "description", "timeout", "depth", "started", "failed", "scheduled",
                 "deferred", "finished", "workers", "oldest_queued_age_s",
                 "retry_scheduler": name of the RQ scheduler holding the queue's lock or None}],
     "cron_schedulers": [{"name", "hostname", "pid", "last_heartbeat", "heartbeat_age_s",
                          "alive", "holds_lock", "jobs": [{"name", "queue", "cron",
                          "interval", "latest_enqueue_time", "next_enqueue_time"}]}],
     "schedules": [Schedule.as_dict()],
     "events": {"unrelayed": n, "oldest_unrelayed_age_s": s, "deliveries": {status: n}}
               (only with an app context; None if the database cannot be read)}
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import has_app_context
from redis import Redis
from rq import Worker
from rq.cron import CronScheduler
from rq.job import Job
from rq.scheduler import RQScheduler
from sqlalchemy import func, select

from portal import clock
from portal.extensions import db
from portal.models.events import Event, EventDelivery
from portal.ops.words import N_, said
from portal.queues import QUEUES, all_queues, get_connection
from portal.schedules import CRON_LOCK_KEY, SCHEDULES

# the queues' descriptions (portal/queues.py), for the catalogue: the page translates them
QUEUE_WORDS = (N_("event relay and subscriber deliveries"),
               N_("notifications, exports, housekeeping"),
               N_("bank sync, reconciliation, forwarding"))

log = logging.getLogger(__name__)

# a worker heartbeats at least every worker_ttl seconds (default 420) and every 30 s while busy;
# one not heard of for longer than this is reported dead
WORKER_STALE_AFTER = 480
CRON_STALE_AFTER = 180


def _age(moment: datetime | None, now: datetime) -> float | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round((now - moment).total_seconds(), 1)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def worker_rows(connection: Redis, now: datetime) -> list[dict]:
    rows = []
    for worker in Worker.all(connection=connection):
        age = _age(worker.last_heartbeat, now)
        try:
            current = worker.get_current_job_id()
        except Exception:
            current = None
        rows.append({
            "name": worker.name,
            "hostname": worker.hostname,
            "pid": worker.pid,
            "state": worker.get_state(),
            "queues": worker.queue_names(),
            "current_job_id": current,
            "last_heartbeat": _iso(worker.last_heartbeat),
            "heartbeat_age_s": age,
            "alive": age is not None and age < WORKER_STALE_AFTER,
            "birth": _iso(worker.birth_date),
            "successful_jobs": worker.successful_job_count,
            "failed_jobs": worker.failed_job_count,
            "total_working_time_s": round(worker.total_working_time or 0, 1),
        })
    return sorted(rows, key=lambda r: r["name"])


def queue_rows(connection: Redis, now: datetime, workers: list[dict]) -> list[dict]:
    rows = []
    for queue in all_queues(connection):
        spec = QUEUES[queue.name]
        oldest_age = None
        first = connection.lindex(queue.key, 0)
        if first is not None:
            job = Job.fetch_many([first.decode()], connection=connection)[0]
            if job is not None:
                oldest_age = _age(job.enqueued_at, now)
        holder = connection.get(RQScheduler.get_locking_key(queue.name))
        rows.append({
            "name": queue.name,
            "description": spec.description,
            "timeout": spec.timeout,
            "depth": queue.count,
            "started": queue.started_job_registry.get_job_count(cleanup=False),
            "failed": queue.failed_job_registry.get_job_count(cleanup=False),
            "scheduled": queue.scheduled_job_registry.get_job_count(cleanup=False),
            "deferred": queue.deferred_job_registry.get_job_count(cleanup=False),
            "finished": queue.finished_job_registry.get_job_count(cleanup=False),
            "workers": sum(1 for w in workers if w["alive"] and queue.name in w["queues"]),
            "oldest_queued_age_s": oldest_age,
            "retry_scheduler": holder.decode() if holder else None,
        })
    return rows


def cron_rows(connection: Redis, now: datetime) -> list[dict]:
    holder = connection.get(CRON_LOCK_KEY)
    holder = holder.decode() if holder else None
    rows = []
    for cron in CronScheduler.all(connection, cleanup=False):
        heartbeat = cron.last_heartbeat
        age = _age(heartbeat, now)
        rows.append({
            "name": cron.name,
            "hostname": cron.hostname,
            "pid": cron.pid,
            "last_heartbeat": _iso(heartbeat),
            "heartbeat_age_s": age,
            "alive": age is not None and age < CRON_STALE_AFTER,
            "holds_lock": cron.name == holder,
            "jobs": [
                {"name": j.name, "queue": j.queue_name, "cron": j.cron, "interval": j.interval,
                 "latest_enqueue_time": _iso(j.latest_enqueue_time),
                 "next_enqueue_time": _iso(j.next_enqueue_time)}
                for j in cron.get_jobs()
            ],
        })
    return sorted(rows, key=lambda r: r["name"])


def event_summary(now: datetime) -> dict | None:
    if not has_app_context():
        return None

    try:  # a connection of its own: never touches the caller's session or transaction
        with db.engine.connect() as conn:
            unrelayed, oldest = conn.execute(
                select(func.count(), func.min(Event.occurred_at))
                .where(Event.relayed_at.is_(None))
            ).one()
            deliveries = dict(conn.execute(
                select(EventDelivery.status, func.count()).group_by(EventDelivery.status)
            ).all())
    except Exception:
        log.warning("health: cannot read the outbox", exc_info=True)
        return None
    return {
        "unrelayed": unrelayed,
        "oldest_unrelayed_age_s": _age(oldest, now),
        "deliveries": {s: deliveries.get(s, 0) for s in ("pending", "failed", "dead",
                                                          "delivered")},
    }


def collect_health(connection: Redis | None = None) -> dict:
    """The state of workers, queues, schedulers and the outbox (see the module docstring)."""
    connection = connection or get_connection()
    now = datetime.now(UTC)  # RQ's heartbeats and registries are stamped by the system clock
    workers = worker_rows(connection, now)
    queues = queue_rows(connection, now, workers)
    crons = cron_rows(connection, now)
    events = event_summary(clock.running_now())  # the outbox by the product's clock
    problems = []
    if not any(w["alive"] for w in workers):
        problems.append(said(N_("no live worker")))
    for q in queues:
        if q["depth"] and not q["workers"]:
            problems.append(said(N_("queue %(name)s has %(num)s jobs and no worker"),
                                 name=q["name"], num=q["depth"]))
    if not any(c["alive"] for c in crons):
        problems.append(said(N_("no live cron scheduler")))
    if events and events["deliveries"]["dead"]:
        problems.append(said(N_("%(num)s dead event deliveries"),
                             num=events["deliveries"]["dead"]))
    return {
        "checked_at": now.isoformat(),
        "ok": not problems,
        "problems": problems,
        "workers": workers,
        "queues": queues,
        "cron_schedulers": crons,
        "schedules": [s.as_dict() for s in SCHEDULES],
        "events": events,
    }
