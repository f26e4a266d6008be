"""The event bus: catalog (types, versions, schemas), publish (outbox), relay, subscribers.

    from portal.events import publish, subscriber
"""

from portal.events.catalog import CATALOG, EventValidationError, UnknownEventType
from portal.events.publish import publish
from portal.events.subscribers import subscriber

__all__ = ["CATALOG", "EventValidationError", "UnknownEventType", "publish", "subscriber"]
