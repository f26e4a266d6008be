"""The audit log: who changed what, before and after, when, and from where.

``record`` adds a row to the caller's session; it commits with the change it describes, so a
change is never saved without its audit row. The row carries the current correlation id
(portal.logging): the request's ``X-Request-ID`` (or the id made for it) in a request, the
job's or the event's id in a worker, so an audit row leads to the logs and events of its
change.
"""

from __future__ import annotations

from typing import Any

from flask import has_request_context, request
from sqlalchemy.orm import Session

from portal.logging import get_correlation_id
from portal.models import AuditLog


def record(
    session: Session,
    actor: Any,
    action: str,
    entity_type: str,
    entity_id: Any = None,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditLog:
    """Add an audit row. ``actor`` is a User, a label (e.g. "cli", "system") or None."""
    actor_id = getattr(actor, "id", None)
    if actor is None:
        actor_label = "system"
    elif isinstance(actor, str):
        actor_label = actor
    else:
        actor_label = getattr(actor, "username", None) or str(actor)
    row = AuditLog(
        actor_id=actor_id,
        actor_label=actor_label[:100],
        action=action,
        entity_type=entity_type,
        entity_id=None if entity_id is None else str(entity_id),
        before=before,
        after=after,
        correlation_id=(get_correlation_id() or "")[:64] or None,
    )
    if has_request_context():
        row.ip_address = (request.remote_addr or "")[:45] or None
        row.user_agent = (request.user_agent.string or "")[:300] or None
    session.add(row)
    return row


def record_changes(session: Session, actor: Any, action: str, entity_type: str, entity_id: Any,
                   before: dict, after: dict) -> bool:
    """Audit only the fields that changed between ``before`` and ``after`` (same keys); no row
    and False when none did."""
    changed = [k for k in after if before[k] != after[k]]
    if not changed:
        return False
    record(session, actor, action, entity_type, entity_id,
           {k: before[k] for k in changed}, {k: after[k] for k in changed})
    return True
