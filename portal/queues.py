"""RQ queues, named by purpose, each with its job timeout and result/failure TTLs.

| queue | for | timeout |
|---|---|---|
| events | the event relay and every subscriber delivery (short, many) | 5 min |
| default | notifications, exports, small housekeeping | 10 min |
| integrations | bank sync, reconciliation, forwarding to external systems (long) | 1 h |

A worker started without ``--queues`` listens to all of them in ``QUEUE_NAMES`` order (events
first, so a long sync never delays event handling on a busy worker; run a second worker for
``integrations`` in production).

Jobs are enqueued through ``enqueue``/``enqueue_many`` here, which apply the queue's options and
carry the current correlation id and W3C ``traceparent`` in ``job.meta`` (a delivery job carries its
event's own, portal/events/relay.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from redis import Redis
from rq import Queue, Retry
from rq.job import Job

from portal.extensions import get_redis
from portal.logging import get_correlation_id
from portal.tracing import TRACEPARENT, current_traceparent

DAY = 24 * 3600


@dataclass(frozen=True)
class QueueSpec:
    name: str
    description: str
    timeout: int  # default job timeout, seconds
    result_ttl: int  # how long a finished job and its result are kept
    failure_ttl: int  # how long a failed job stays in the failed registry
    ttl: int | None = None  # a queued job not started within this is discarded (None: never)


QUEUES: dict[str, QueueSpec] = {
    spec.name: spec
    for spec in (
        QueueSpec("events", "event relay and subscriber deliveries", timeout=300,
                  result_ttl=300, failure_ttl=14 * DAY),
        QueueSpec("default", "notifications, exports, housekeeping", timeout=600,
                  result_ttl=3600, failure_ttl=7 * DAY),
        QueueSpec("integrations", "bank sync, reconciliation, forwarding", timeout=3600,
                  result_ttl=DAY, failure_ttl=14 * DAY),
    )
}
QUEUE_NAMES: tuple[str, ...] = ("events", "default", "integrations")


def get_spec(name: str) -> QueueSpec:
    try:
        return QUEUES[name]
    except KeyError:
        raise KeyError(f"unknown queue {name!r}; known: {', '.join(QUEUE_NAMES)}") from None


def get_connection() -> Redis:
    return get_redis()


def get_queue(name: str, connection: Redis | None = None) -> Queue:
    spec = get_spec(name)
    return Queue(spec.name, connection=connection or get_connection(),
                 default_timeout=spec.timeout)


def all_queues(connection: Redis | None = None) -> list[Queue]:
    connection = connection or get_connection()
    return [get_queue(name, connection) for name in QUEUE_NAMES]


def _meta(meta: dict | None) -> dict:
    meta = dict(meta or {})
    correlation_id = get_correlation_id()
    if correlation_id and "correlation_id" not in meta:
        meta["correlation_id"] = correlation_id
    if not meta.get(TRACEPARENT):  # the job's span continues the enqueuer's trace
        traceparent = current_traceparent()
        if traceparent:
            meta[TRACEPARENT] = traceparent
    return meta


def make_retry(intervals: list[int] | tuple[int, ...]) -> Retry | None:
    """RQ Retry with one retry per interval (None when there are no intervals)."""
    intervals = list(intervals)
    return Retry(max=len(intervals), interval=intervals) if intervals else None


def enqueue(
    queue_name: str,
    func: Callable | str,
    *args: Any,
    job_id: str | None = None,
    timeout: int | None = None,
    retry: Retry | None = None,
    meta: dict | None = None,
    connection: Redis | None = None,
    **kwargs: Any,
) -> Job:
    """Enqueue ``func(*args, **kwargs)`` on a queue with that queue's options."""
    spec = get_spec(queue_name)
    return get_queue(queue_name, connection).enqueue_call(
        func, args=args, kwargs=kwargs, job_id=job_id, timeout=timeout or spec.timeout,
        result_ttl=spec.result_ttl, failure_ttl=spec.failure_ttl, ttl=spec.ttl, retry=retry,
        meta=_meta(meta),
    )


@dataclass(frozen=True)
class JobRequest:
    func: Callable | str
    args: tuple = ()
    kwargs: dict | None = None
    job_id: str | None = None
    meta: dict | None = None


def enqueue_many(
    queue_name: str,
    requests: Iterable[JobRequest],
    *,
    retry: Retry | None = None,
    timeout: int | None = None,
    result_ttl: int | None = None,
    connection: Redis | None = None,
) -> list[Job]:
    """Enqueue several jobs in one Redis round trip (``result_ttl=0``: forget finished jobs)."""
    spec = get_spec(queue_name)
    queue = get_queue(queue_name, connection)
    datas = [
        Queue.prepare_data(
            r.func, args=r.args, kwargs=r.kwargs or {}, job_id=r.job_id,
            timeout=timeout or spec.timeout,
            result_ttl=spec.result_ttl if result_ttl is None else result_ttl,
            failure_ttl=spec.failure_ttl, ttl=spec.ttl, retry=retry, meta=_meta(r.meta),
        )
        for r in requests
    ]
    if not datas:
        return []
    with queue.connection.pipeline() as pipe:
        jobs = queue.enqueue_many(datas, pipeline=pipe)
        pipe.execute()
    return jobs
