"""What every job runs inside: a Flask app context, a fresh database session and the
correlation id and trace of whoever enqueued it.

RQ's default worker forks a work horse per job; a forked process must not reuse the database
connections of its parent, so the pool is replaced (without closing the parent's sockets) the
first time a job runs in a new process.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, has_app_context
from rq import get_current_job

from portal import create_app
from portal.extensions import db
from portal.logging import correlation_scope
from portal.tracing import job_span

log = logging.getLogger("workers.jobs")

_app: Flask | None = None
_pool_pid = os.getpid()


def set_app(app: Flask) -> None:
    """The app jobs of this process run in (set by ``flask workers run``)."""
    global _app
    _app = app


def get_app() -> Flask:
    global _app
    if has_app_context():
        return current_app._get_current_object()  # type: ignore[attr-defined]
    if _app is None:
        _app = create_app()
    return _app


def _forget_inherited_connections(app: Flask) -> None:
    global _pool_pid
    pid = os.getpid()
    if pid == _pool_pid:
        return

    with app.app_context():
        for engine in db.engines.values():
            engine.dispose(close=False)
    _pool_pid = pid


def job(func: Callable) -> Callable:
    """Decorator for job entry points: app context, own session, correlation id, logging, and
    a CONSUMER span continuing the enqueuer's trace (``job.meta["traceparent"]``)."""

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        app = get_app()
        _forget_inherited_connections(app)
        rq_job = get_current_job()
        correlation_id = None
        if rq_job is not None:  # the enqueuer's id, else the job's own (periodic jobs)
            correlation_id = rq_job.meta.get("correlation_id") or rq_job.id
        with app.app_context(), correlation_scope(correlation_id) as cid, \
                job_span(func.__name__, rq_job, cid):
            try:
                return func(*args, **kwargs)
            finally:
                db.session.remove()

    return run
