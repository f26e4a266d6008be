"""Subscribers: registered by decorator per event type, delivered exactly once.

    from portal.events import subscriber

    @subscriber("PAYMENT_RECEIVED", "PAYMENT_REVERSED")
    def update_promises(event, session):
        ...   # use ``session``; do not commit — the delivery commits your effects with its row

A subscriber's name (default ``module.function``) is stored in each delivery row, so renaming one
makes it a new subscriber. The product's modules holding subscribers are listed once, in
SUBSCRIBER_MODULES below; EVENT_SUBSCRIBER_MODULES adds others (tests). ``load_subscribers`` (called
by create_app, which the relay and every worker build) imports them.

Delivery (``deliver``): claim the ``(event, subscriber)`` row — one UPDATE that locks it and marks
it delivered unless it already is; if it already is, do nothing; else run the subscriber in the
same transaction and commit its effects and the mark together. Each call is one span in the
trace of its event (``portal.tracing.subscriber_span``).
On an exception: roll back, record the attempt and error in a separate transaction, and re-raise
so that RQ retries with backoff; after the last retry the row is ``dead``.
"""

from __future__ import annotations

import importlib
import logging
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, true, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from portal.events import settings
from portal.events.catalog import get_event_type
from portal.logging import correlation_scope, get_correlation_id
from portal.models.base import utcnow
from portal.models.events import Event, EventDelivery
from portal.tracing import subscriber_span

log = logging.getLogger(__name__)

Handler = Callable[[Event, Session], Any]


@dataclass(frozen=True)
class Subscriber:
    name: str
    event_types: tuple[str, ...]
    func: Handler
    description: str = ""


_registry: dict[str, Subscriber] = {}
_by_type: dict[str, list[Subscriber]] = {}
_lock = threading.Lock()
_loaded_modules: set[str] = set()


def register(func: Handler, *event_types: str, name: str | None = None) -> Subscriber:
    """Register ``func`` for ``event_types`` (each must be in the catalog). Idempotent per name."""
    if not event_types:
        raise ValueError("a subscriber needs at least one event type")
    for event_type in event_types:
        get_event_type(event_type)
    name = name or f"{func.__module__}.{func.__qualname__}"
    if len(name) > 128:
        raise ValueError(f"subscriber name too long: {name!r}")
    sub = Subscriber(name, tuple(event_types), func, (func.__doc__ or "").strip().split("\n")[0])
    with _lock:
        if name in _registry:
            _unregister_locked(name)
        _registry[name] = sub
        for event_type in sub.event_types:
            _by_type.setdefault(event_type, []).append(sub)
    return sub


def subscriber(*event_types: str, name: str | None = None):
    """Decorator: ``@subscriber("PAYMENT_RECEIVED", name="workflow.payment_received")``."""

    def decorate(func: Handler) -> Handler:
        register(func, *event_types, name=name)
        return func

    return decorate


def _unregister_locked(name: str) -> None:
    sub = _registry.pop(name, None)
    if sub is None:
        return
    for event_type in sub.event_types:
        _by_type[event_type] = [s for s in _by_type.get(event_type, []) if s.name != name]


def unregister(name: str) -> None:
    with _lock:
        _unregister_locked(name)


# Every module of the product that holds subscribers (a static list: no import side effects).
SUBSCRIBER_MODULES = (
    "portal.notifications.subscribers",
    "portal.payments.effects",
)


def load_subscribers() -> None:
    """Import the modules (``pkg.mod``) or call the functions (``pkg.mod:func``) of
    SUBSCRIBER_MODULES and EVENT_SUBSCRIBER_MODULES, once per process."""
    for entry in (*SUBSCRIBER_MODULES, *settings.subscriber_modules()):
        if entry in _loaded_modules:
            continue
        module_name, _, func_name = entry.partition(":")
        module = importlib.import_module(module_name)
        if func_name:
            getattr(module, func_name)()
        _loaded_modules.add(entry)


def subscribers_for(event_type: str) -> list[Subscriber]:
    load_subscribers()
    return list(_by_type.get(event_type, ()))


def get_subscriber(name: str) -> Subscriber | None:
    load_subscribers()
    return _registry.get(name)


def all_subscribers() -> list[Subscriber]:
    load_subscribers()
    return sorted(_registry.values(), key=lambda s: s.name)


# -- delivery -----------------------------------------------------------------------------------


class SubscriberMissing(RuntimeError):
    pass


def _claim(session: Session, event_id, subscriber_name: str) -> Event | None:
    """Claim the delivery in one statement: lock its row and mark it delivered (attempts + 1)
    unless it is already delivered or dead, and load the event. Returns the event, or None when
    there was nothing to claim. The mark only becomes visible with the subscriber's effects, at
    commit; a rollback undoes it. A concurrent duplicate waits on the row lock, then finds the
    row delivered and claims nothing.

    With EVENTS_DELIVERY_ASYNC_COMMIT the same statement makes this transaction's commit
    asynchronous (``set_config('synchronous_commit', 'off', true)``): a PostgreSQL crash may then
    lose the last fraction of a second of deliveries — each entirely, effects and ``delivered``
    mark together — and those rows, back to ``pending``, are re-enqueued by the sweep. Nothing
    is handled twice, nothing is half-applied; a delivery saves a WAL flush.
    """
    now = utcnow()
    claimed = (
        update(EventDelivery)
        .where(EventDelivery.event_id == event_id, EventDelivery.subscriber == subscriber_name,
               EventDelivery.status.in_(("pending", "failed")))
        .values(status="delivered", attempts=EventDelivery.attempts + 1, delivered_at=now,
                updated_at=now)
        .returning(EventDelivery.id)
        .cte("claimed")
    )
    columns = [Event, claimed.c.id]
    if settings.delivery_async_commit():
        columns.append(func.set_config("synchronous_commit", "off", True))
    row = session.execute(
        select(*columns).join_from(Event, claimed, true()).where(Event.id == event_id)
    ).first()
    return None if row is None else row[0]


def _status(session: Session, event_id, subscriber_name: str) -> str | None:
    return session.execute(
        select(EventDelivery.status).where(EventDelivery.event_id == event_id,
                                           EventDelivery.subscriber == subscriber_name)
    ).scalar_one_or_none()


def deliver(session: Session, event_id, subscriber_name: str, *, last_attempt: bool = True) -> str:
    """Run one subscriber for one event, at most once. Returns the outcome
    (``delivered``, ``already-delivered``, ``dead``, ``no-event``); raises the subscriber's error.

    ``last_attempt``: whether a failure now makes the delivery dead (no retries left).
    """
    event = _claim(session, event_id, subscriber_name)
    if event is None:
        status = _status(session, event_id, subscriber_name)
        if status == "delivered":
            session.rollback()
            return "already-delivered"
        if status == "dead":
            session.rollback()
            return "dead"
        if session.get(Event, event_id) is None:
            session.rollback()
            return "no-event"
        # no row: the relay commits rows before enqueueing; this covers jobs enqueued by hand
        session.execute(
            insert(EventDelivery)
            .values(event_id=event_id, subscriber=subscriber_name, status="pending",
                    attempts=0, updated_at=utcnow())
            .on_conflict_do_nothing(index_elements=["event_id", "subscriber"])
        )
        event = _claim(session, event_id, subscriber_name)
        if event is None:
            session.rollback()
            return "already-delivered"
    sub = get_subscriber(subscriber_name)
    try:
        if sub is None:
            raise SubscriberMissing(f"no subscriber named {subscriber_name!r} in this process")
        with correlation_scope(event.correlation_id or get_correlation_id()), \
                subscriber_span(subscriber_name, event):
            sub.func(event, session)
        session.commit()
    except Exception as exc:
        session.rollback()
        record_failure(session, event_id, subscriber_name, exc, dead=last_attempt)
        raise
    return "delivered"


def record_failure(session: Session, event_id, subscriber_name: str, exc: BaseException,
                   *, dead: bool) -> None:
    """Count a failed attempt in its own transaction (the subscriber's effects are rolled back)."""
    error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    text = (error + "\n\n" + tb)[-8000:]
    try:
        session.execute(
            update(EventDelivery)
            .where(EventDelivery.event_id == event_id,
                   EventDelivery.subscriber == subscriber_name,
                   EventDelivery.status != "delivered")
            .values(attempts=EventDelivery.attempts + 1, last_error=text,
                    status="dead" if dead else "failed", updated_at=utcnow())
        )
        session.commit()
    except Exception:
        session.rollback()
        log.exception("could not record the failure of delivery %s/%s", event_id, subscriber_name)
    log.warning("delivery failed", extra={"event_id": str(event_id),
                                          "subscriber": subscriber_name, "dead": dead,
                                          "error": error})
