"""Structured logging and the correlation id.

Every log line carries the correlation id of the work it belongs to: an HTTP request (taken from
the ``X-Request-ID`` header or created, and returned in the response header), an event (published
with the id of the request that caused it) and an RQ job (the id travels in ``job.meta`` and is set
again while the job runs). JSON lines also carry the ``trace_id`` and ``span_id`` of the current
OpenTelemetry span (portal/tracing.py).

``LOG_FORMAT`` is ``json`` (one JSON object per line) or ``text``; ``LOG_LEVEL`` the root level.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from flask import Flask, g, has_app_context, request
from opentelemetry import trace
from redis import Redis
from rq import get_current_job

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is logged too.
_RECORD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime", "taskName"}
)


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def get_correlation_id() -> str | None:
    """The correlation id of the current request, job or event handler (None outside them)."""
    return _correlation_id.get()


def set_correlation_id(value: str | None):
    """Set the current correlation id; returns a token for ``reset_correlation_id``."""
    return _correlation_id.set(value)


def reset_correlation_id(token) -> None:
    _correlation_id.reset(token)


@contextmanager
def correlation_scope(value: str | None = None) -> Iterator[str]:
    """Run a block under ``value`` (or a new id when None), restoring the previous id after."""
    value = value or new_correlation_id()
    token = _correlation_id.set(value)
    try:
        yield value
    finally:
        _correlation_id.reset(token)


def valid_request_id(value: str | None) -> str | None:
    """A client-supplied request id if it is safe to log and store, else None."""
    if value and _VALID_ID.match(value):
        return value
    return None


class CorrelationFilter(logging.Filter):
    """Adds ``correlation_id`` to every record (so text formats can use it too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "correlation_id", None):
            record.correlation_id = _correlation_id.get()
        return True


class WorkContextFilter(logging.Filter):
    """Adds ``user`` (the signed-in user of the request, when already loaded: never a query)
    and ``job_id`` (the RQ job being run) to records that do not carry them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "user"):
            try:
                user = g.get("_login_user") if has_app_context() else None
                username = getattr(user, "username", None)
                if username:
                    record.user = username
            except Exception:  # noqa: BLE001 - logging never fails the caller
                pass
        if not hasattr(record, "job_id"):
            try:
                job = get_current_job()
                if job is not None:
                    record.job_id = job.id
            except Exception:  # noqa: BLE001
                pass
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, correlation_id and extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": getattr(record, "correlation_id", None) or _correlation_id.get(),
            "pid": record.process,
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:  # the trace of the request, job or subscriber (portal/tracing.py)
            entry["trace_id"] = f"{span.trace_id:032x}"
            entry["span_id"] = f"{span.span_id:016x}"
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


# chatty at INFO about their own set-up
QUIET_LOGGERS = ("alembic.runtime.plugins",)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"


_TEXT_LEVEL = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ([A-Z]+) ")


def line_level(line: str) -> int | None:
    """The level of a line this module's handlers wrote (``text`` or ``json``), or None when the
    line is not one of theirs (a print, a traceback line, another program's format)."""
    name = None
    if line.startswith("{"):
        try:
            entry = json.loads(line)
        except ValueError:
            return None
        name = entry.get("level") if isinstance(entry, dict) else None
    else:
        match = _TEXT_LEVEL.match(line)
        name = match.group(1) if match else None
    level = logging.getLevelName(name) if isinstance(name, str) else None
    return level if isinstance(level, int) else None


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def make_handler(log_format: str, stream=None) -> logging.Handler:
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    handler.addFilter(CorrelationFilter())
    if log_format == "json":
        handler.addFilter(WorkContextFilter())
    handler._portal_handler = True  # type: ignore[attr-defined]
    return handler


def configure_logging(log_format: str = "json", level: str | int = "INFO") -> None:
    """Install (or replace) the portal handler on the root logger. Idempotent."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_portal_handler", False):
            root.removeHandler(handler)
    root.addHandler(make_handler(log_format))
    root.setLevel(level if isinstance(level, int) else str(level).upper())
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def init_logging(app: Flask) -> None:
    """Configure structured logging and bind the correlation id to every request."""
    log_format = str(app.config.get("LOG_FORMAT", "json")).lower()
    if log_format not in ("json", "text"):
        log_format = "json"
    configure_logging(log_format, app.config.get("LOG_LEVEL", "INFO"))
    install_log_capture(app)

    @app.before_request
    def _bind_correlation_id() -> None:
        value = valid_request_id(request.headers.get(REQUEST_ID_HEADER)) or new_correlation_id()
        g.correlation_id = value
        g._correlation_token = _correlation_id.set(value)

    @app.after_request
    def _return_correlation_id(response):
        value = g.get("correlation_id")
        if value:
            response.headers[REQUEST_ID_HEADER] = value
        return response

    @app.teardown_request
    def _unbind_correlation_id(exc) -> None:
        token = g.pop("_correlation_token", None)
        if token is not None:
            try:
                _correlation_id.reset(token)
            except ValueError:  # reset from another context (streamed responses)
                _correlation_id.set(None)


# --- recent log lines per correlation id (the ops page's run detail) ---------------------------

LOG_CAPTURE_PREFIX = "crm:logs:"
_capturing: ContextVar[bool] = ContextVar("log_capturing", default=False)


class CorrelationLogCapture(logging.Handler):
    """Keeps the recent JSON log lines of each correlation id in Redis: a capped list per id
    (``LOG_CAPTURE_MAX_LINES``) that expires ``LOG_CAPTURE_TTL_DAYS`` after its last line.

    Never fails or holds up the caller: short socket timeouts, every error swallowed, and after
    an error the handler stays silent for 30 s instead of trying Redis on every line.
    """

    def __init__(self, redis_url: str, *, max_lines: int = 500, ttl_seconds: int = 7 * 86400,
                 level: int = logging.INFO):
        super().__init__(level)
        self.redis_url = redis_url
        self.max_lines = max_lines
        self.ttl_seconds = ttl_seconds
        self._client = None
        self._silent_until = 0.0
        self.setFormatter(JsonFormatter())
        self.addFilter(CorrelationFilter())
        self.addFilter(WorkContextFilter())

    def _redis(self):
        if self._client is None:
            self._client = Redis.from_url(self.redis_url, socket_timeout=0.25,
                                          socket_connect_timeout=0.25)
        return self._client

    def emit(self, record: logging.LogRecord) -> None:
        correlation_id = getattr(record, "correlation_id", None) or _correlation_id.get()
        if not correlation_id or _capturing.get() or time.monotonic() < self._silent_until:
            return
        token = _capturing.set(True)  # the Redis client's own log lines are not captured
        try:
            key = LOG_CAPTURE_PREFIX + correlation_id
            pipe = self._redis().pipeline(transaction=False)
            pipe.rpush(key, self.format(record))
            pipe.ltrim(key, -self.max_lines, -1)
            pipe.expire(key, self.ttl_seconds)
            pipe.execute()
        except Exception:  # noqa: BLE001 - logging must never fail the caller
            self._silent_until = time.monotonic() + 30
        finally:
            _capturing.reset(token)


def install_log_capture(app: Flask) -> None:
    """Add (or replace) the capture handler on the root logger when Redis is configured."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, CorrelationLogCapture):
            root.removeHandler(handler)
    url = app.config.get("REDIS_URL")
    if not url or not app.config.get("LOG_CAPTURE", True):
        return
    root.addHandler(CorrelationLogCapture(
        url, max_lines=int(app.config.get("LOG_CAPTURE_MAX_LINES", 500)),
        ttl_seconds=int(app.config.get("LOG_CAPTURE_TTL_DAYS", 7)) * 86400))


def captured_lines(redis_client, correlation_id: str, limit: int = 500) -> list[dict]:
    """The captured log lines of ``correlation_id``, oldest first (parsed JSON objects)."""
    if not correlation_id:
        return []
    try:
        raw = redis_client.lrange(LOG_CAPTURE_PREFIX + correlation_id, -limit, -1)
    except Exception:  # noqa: BLE001 - the page shows "unavailable" instead
        return []
    lines = []
    for item in raw:
        try:
            lines.append(json.loads(item))
        except ValueError:
            lines.append({"message": item.decode(errors="replace") if isinstance(item, bytes)
                          else str(item)})
    return lines
