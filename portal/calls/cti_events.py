"""CTI events as the call centre sends them: the event types, the envelope (``parse_event``), and
the field rules both the call events (portal/calls/operations.py) and the agent-status events
(portal/calls/agent_status.py) read their data with. A bad field is a ``CtiEventError`` (a 400
naming the field)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

CALL_EVENT_TYPES = ("call.started", "call.answered", "call.ended")
AGENT_EVENT_TYPES = ("agent.status_changed",)
EVENT_TYPES = CALL_EVENT_TYPES + AGENT_EVENT_TYPES



# -- inbound events -----------------------------------------------------------------------------


class CtiEventError(ValueError):
    """An event the portal cannot read (400), naming the field at fault."""

    def __init__(self, code: str, message: str, field_name: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field_name

    def to_json(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


@dataclass
class CtiEvent:
    event_id: str
    type: str
    occurred_at: datetime
    data: dict[str, Any] = field(default_factory=dict)


def parse_time(value: Any, name: str, *, required: bool = False) -> datetime | None:
    if value in (None, ""):
        if required:
            raise CtiEventError("missing_field", f"{name} is required", name)
        return None
    if not isinstance(value, str):
        raise CtiEventError("bad_field", f"{name} must be an ISO 8601 timestamp", name)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise CtiEventError("bad_field", f"{name} must be an ISO 8601 timestamp", name) from exc
    if moment.tzinfo is None:
        raise CtiEventError("bad_field", f"{name} needs a time zone (Z or +07:00)", name)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+07:00 is before year 1 in UTC
        raise CtiEventError("bad_field", f"{name} is out of range", name) from None


def _text(data: dict, name: str, limit: int, *, required: bool = False) -> str | None:
    value = data.get(name)
    if value in (None, ""):
        if required:
            raise CtiEventError("missing_field", f"data.{name} is required", f"data.{name}")
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise CtiEventError("bad_field", f"data.{name} must be a string", f"data.{name}")
    text = str(value).strip()
    if len(text) > limit:
        raise CtiEventError("bad_field", f"data.{name} is longer than {limit} characters",
                            f"data.{name}")
    return text


def parse_event(body: Any, *, default_event_id: str | None = None) -> CtiEvent:
    """A CTI event from its JSON body; raises CtiEventError (400) naming the bad field.
    ``default_event_id``: the id of an event that has no ``event_id`` (a Standard Webhooks
    message's ``webhook-id``)."""
    if not isinstance(body, dict):
        raise CtiEventError("bad_request", "the body must be a JSON object", None)
    event_id = body.get("event_id")
    if event_id is None:
        event_id = default_event_id
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > 100:
        raise CtiEventError("missing_field", "event_id is required (a string)", "event_id")
    kind = body.get("type")
    if kind not in EVENT_TYPES:
        raise CtiEventError("unknown_type", f"type must be one of {', '.join(EVENT_TYPES)}",
                            "type")
    occurred_at = parse_time(body.get("occurred_at"), "occurred_at", required=True)
    data = body.get("data")
    if not isinstance(data, dict):
        raise CtiEventError("missing_field", "data must be an object", "data")
    return CtiEvent(event_id.strip(), kind, occurred_at, data)
