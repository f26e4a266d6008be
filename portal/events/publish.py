"""Publishing: validate an event and add it to the outbox in the caller's transaction.

    from portal.events import publish
    publish("LOAN_UPDATED", {"account_number": ..., "cif": ..., "source_system": "T24",
                             "changes": {"dpd": {"old": 3, "new": 4}}})
    db.session.commit()   # the change and its event are saved together, or neither is

Nothing is committed here. When the caller's transaction commits, one relay job is requested
(a cheap Redis call, never failing the commit); the periodic relay catches anything missed.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from portal.events.catalog import validate_payload
from portal.events.relay import request_relay_after_commit
from portal.extensions import db
from portal.logging import get_correlation_id
from portal.models.base import utcnow
from portal.models.events import Event
from portal.tracing import current_traceparent

SESSION_FLAG = "portal_events_published"


def _json_default(value: Any):
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"value of type {type(value).__name__} is not JSON serialisable")


def to_json(payload: Any) -> Any:
    """``payload`` as plain JSON values (Decimal → string, datetime/date → ISO 8601, UUID → str)."""
    return json.loads(json.dumps(payload, default=_json_default))


def publish(
    type: str,
    payload: dict,
    *,
    aggregate: tuple[str, Any] | None = None,
    session: Session | None = None,
    correlation_id: str | None = None,
    occurred_at: datetime | None = None,
) -> Event:
    """Validate ``payload`` against the catalog and add the event to ``session`` (no commit).

    ``aggregate`` is ``(aggregate_type, aggregate_id)``; by default it comes from the catalog
    (e.g. LOAN_UPDATED → ("loan", payload["account_number"])). The correlation id defaults to the
    current request's or job's. Raises ``EventValidationError`` (naming the field) or
    ``UnknownEventType``; then nothing is added to the session.
    """
    data = to_json(payload)
    event_type = validate_payload(type, data)
    if aggregate is None:
        aggregate = (event_type.aggregate_type, data[event_type.aggregate_key])
    if session is None:
        session = db.session
    install_commit_hook()
    event = Event(
        id=uuid.uuid4(),
        type=type,
        version=event_type.version,
        aggregate_type=str(aggregate[0]),
        aggregate_id=str(aggregate[1]),
        payload=data,
        correlation_id=correlation_id or get_correlation_id(),
        traceparent=current_traceparent(),
        occurred_at=occurred_at or utcnow(),
    )
    session.add(event)
    session.info[SESSION_FLAG] = True
    return event


# -- the after-commit trigger -------------------------------------------------------------------

_hook_installed = False


def _after_commit(session: Session) -> None:
    if not session.info.pop(SESSION_FLAG, False):
        return

    request_relay_after_commit()


def _after_rollback(session: Session) -> None:
    session.info.pop(SESSION_FLAG, None)


def install_commit_hook() -> None:
    """Listen to every SQLAlchemy session's commits (idempotent; no connection is made)."""
    global _hook_installed
    if _hook_installed:
        return
    sa_event.listen(Session, "after_commit", _after_commit)
    sa_event.listen(Session, "after_rollback", _after_rollback)
    _hook_installed = True
