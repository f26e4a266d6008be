"""Event-bus settings: ``app.config`` first, then the environment, then the default here.

| name | default | meaning |
|---|---|---|
| EVENTS_RETRY_INTERVALS | 15,60,240,960,3840 | seconds before each retry of a failed delivery; the
  number of values is the number of retries, after the last one the delivery is dead |
| EVENTS_RELAY_BATCH | 500 | events claimed per relay transaction |
| EVENTS_STALE_AFTER | 420 | a pending delivery whose job vanished (worker killed) is re-enqueued
  after this many seconds; must exceed the events queue job timeout |
| EVENTS_DELIVERY_ASYNC_COMMIT | true | delivery transactions commit without waiting for the
  WAL flush (see ``subscribers._lock_delivery``); false to wait |
| EVENTS_RELAY_REQUEST_BACKGROUND | true | in a web request, the after-commit relay request is
  made by a background thread of the process, which folds the requests of concurrent commits
  into one Redis call (``relay.RelayNudger``); false to make it in the request |
| EVENT_SUBSCRIBER_MODULES | (none) | comma-separated modules (``pkg.mod``) or registration
  functions (``pkg.mod:func``) that register subscribers; imported by the relay and workers |
"""

from __future__ import annotations

import os

from flask import current_app, has_app_context

DEFAULTS: dict[str, object] = {
    "EVENTS_RETRY_INTERVALS": (15, 60, 240, 960, 3840),
    "EVENTS_RELAY_BATCH": 500,
    "EVENTS_STALE_AFTER": 420,
    "EVENT_SUBSCRIBER_MODULES": (),
    "EVENTS_DELIVERY_ASYNC_COMMIT": True,
    "EVENTS_RELAY_REQUEST_BACKGROUND": True,
}


def _raw(name: str):
    if has_app_context() and current_app.config.get(name) is not None:
        return current_app.config[name]
    if os.environ.get(name) not in (None, ""):
        return os.environ[name]
    return DEFAULTS[name]


def _as_list(value) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(part) for part in value]


def retry_intervals() -> list[int]:
    return [int(float(v)) for v in _as_list(_raw("EVENTS_RETRY_INTERVALS"))]


def relay_batch() -> int:
    return int(_raw("EVENTS_RELAY_BATCH"))


def stale_after() -> float:
    return float(_raw("EVENTS_STALE_AFTER"))


def subscriber_modules() -> list[str]:
    return _as_list(_raw("EVENT_SUBSCRIBER_MODULES"))


def _flag(name: str) -> bool:
    value = _raw(name)
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


def delivery_async_commit() -> bool:
    return _flag("EVENTS_DELIVERY_ASYNC_COMMIT")


def relay_request_in_background() -> bool:
    return _flag("EVENTS_RELAY_REQUEST_BACKGROUND")
