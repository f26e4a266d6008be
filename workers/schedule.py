"""RQ's cron scheduler over the periodic jobs declared as data in portal/schedules.py.
``flask workers schedules`` lists them; ``flask workers run --with-scheduler`` runs this.

Cron expressions are evaluated in the scheduler host's local time (RQ's rule); run workers with
TZ=UTC in production, or write schedules that do not care. Other areas add their entries to
``SCHEDULES`` (e.g. the daily T24 import on the ``integrations`` queue).

Only one scheduler enqueues at a time, whatever the number of ``--with-scheduler`` processes: they
share a Redis lock, the others stand by and take over when the holder disappears.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from datetime import UTC, datetime

from redis import Redis
from rq.cron import CronScheduler

from portal.queues import get_spec
from portal.schedules import CRON_LOCK_KEY, CRON_LOCK_TTL, SCHEDULES, Schedule

log = logging.getLogger(__name__)

def build_cron_scheduler(connection: Redis,
                         schedules: tuple[Schedule, ...] = SCHEDULES) -> CronScheduler:
    cron = CronScheduler(connection=connection, logging_level=logging.INFO)
    for s in schedules:
        spec = get_spec(s.queue)
        cron.register(
            s.resolve(), s.queue, args=s.args, cron=s.cron, interval=s.interval,
            job_timeout=s.job_timeout, result_ttl=spec.result_ttl, failure_ttl=spec.failure_ttl,
            name=s.name,
        )
    return cron


def _hold_lock(connection: Redis, name: str) -> bool:
    if connection.set(CRON_LOCK_KEY, name, nx=True, ex=CRON_LOCK_TTL):
        return True
    holder = connection.get(CRON_LOCK_KEY)
    if holder is not None and holder.decode() == name:
        connection.expire(CRON_LOCK_KEY, CRON_LOCK_TTL)
        return True
    return False


class _Stop(Exception):
    pass


def run_cron_scheduler(connection: Redis, *, parent_pid: int | None = None,
                       schedules: tuple[Schedule, ...] = SCHEDULES,
                       tick: float = 1.0) -> None:
    """The cron scheduler loop (blocking). Stops on SIGTERM/SIGINT, or when ``parent_pid`` is no
    longer its parent (the worker that started it died)."""
    cron = build_cron_scheduler(connection, schedules)

    def stop(signum, frame):
        raise _Stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    cron.register_birth()
    log.info("cron scheduler started", extra={"scheduler": cron.name,
                                               "schedules": [s.name for s in schedules]})
    try:
        while True:
            if parent_pid is not None and os.getppid() != parent_pid:
                log.warning("cron scheduler: parent worker gone, stopping")
                break
            if _hold_lock(connection, cron.name):
                if cron.enqueue_jobs():
                    cron.save()
            else:  # stand by: keep the timetable moving without enqueueing
                moment = datetime.now(UTC)
                for job in cron.get_jobs():
                    if job.should_run():
                        job.set_enqueue_time(moment)
            cron.heartbeat()
            time.sleep(max(0.05, min(cron.calculate_sleep_interval(), tick)))
    except _Stop:
        pass
    finally:
        cron.register_death()
        holder = connection.get(CRON_LOCK_KEY)
        if holder is not None and holder.decode() == cron.name:
            connection.delete(CRON_LOCK_KEY)
        log.info("cron scheduler stopped", extra={"scheduler": cron.name})
