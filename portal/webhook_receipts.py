"""Idempotent webhook messages: one rule for both signed webhooks (payment system, call centre).

A message is named by its sender's id for it — Standard Webhooks' ``webhook-id``, or in the
crm-hmac scheme the body's ``event_id`` — and carries a body. The first delivery that is applied
leaves a receipt (``webhook_receipts``, written in the same transaction as what it applied):
the body's SHA-256 and the JSON answer it got. Then:

- the same id with the same body (a sender's retry after a lost answer, re-signed or the very
  same signed request inside the replay window) is answered 200 with the stored JSON and the
  ``Idempotent-Replayed: true`` header, and nothing is applied again;
- the same id with another body is refused: 409 ``message_conflict`` naming the id's header or
  field (a sender reusing ids is a fault to fix, not a message to guess about).

Receipts are kept ``WEBHOOK_RECEIPT_DAYS`` (7 by default): longer than any sender retries a
message (Standard Webhooks senders retry for about a day), after which the nightly job
``prune`` drops them (portal.schedules ``webhooks.prune_receipts``).

Receipts are found only when a delivery did not apply (the payment's unique keys or the
receipt's primary key conflicted), so the first delivery pays no extra lookup.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal import clock
from portal.models.webhooks import WebhookReceipt
from portal.signing import ID_HEADER_STD, Verified

REPLAYED_HEADER = "Idempotent-Replayed"
PRIMARY_KEY = "pk_webhook_receipts"


@dataclass(frozen=True)
class Message:
    """One webhook message as the receipts know it."""

    integration: str
    message_id: str
    scheme: str
    body_sha256: str
    id_field: str  # where the id came from: the header or the body field (for errors)

    def row(self, status_code: int, response: dict, received_at: datetime | None = None
            ) -> dict:
        return {"integration": self.integration, "message_id": self.message_id,
                "scheme": self.scheme, "body_sha256": self.body_sha256,
                "status_code": status_code, "response": response,
                "received_at": received_at or clock.now()}


class MessageConflict(Exception):
    """The id of a message already applied, with another body (409)."""

    status = 409
    code = "message_conflict"

    def __init__(self, message: Message):
        self.field = message.id_field
        self.message = (f"{message.id_field} {message.message_id!r} was already received with "
                        "another body: a new message needs a new id")
        super().__init__(self.message)

    def to_json(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


def message(integration: str, verified: Verified, body: bytes, event_id: str | None
            ) -> Message | None:
    """The message a verified request carries: named by its ``webhook-id``, else by the body's
    ``event_id`` (None when it has neither: nothing to remember it by)."""
    if verified.message_id:
        message_id, field = verified.message_id, ID_HEADER_STD
    elif event_id:
        message_id, field = event_id, "event_id"
    else:
        return None
    return Message(integration, message_id, verified.scheme, hashlib.sha256(body).hexdigest(),
                   field)


def record(session: Session, message: Message, status_code: int, response: dict) -> None:
    """Keep the answer a message got (no commit). A receipt already there for its id raises
    IntegrityError (see ``is_receipt_conflict``): the caller rolls back what it applied."""
    session.execute(insert(WebhookReceipt).values(**message.row(status_code, response)))


def is_receipt_conflict(error: IntegrityError) -> bool:
    """Whether ``error`` is another receipt of the same message id (a concurrent or earlier
    delivery of it applied first)."""
    diag = getattr(error.orig, "diag", None)
    return getattr(diag, "constraint_name", None) == PRIMARY_KEY


def stored(session: Session, message: Message) -> dict | None:
    """The answer stored for ``message`` (same id, same body), None when it has no receipt;
    raises MessageConflict when its id was received with another body."""
    row = session.execute(
        select(WebhookReceipt.body_sha256, WebhookReceipt.response)
        .where(WebhookReceipt.integration == message.integration,
               WebhookReceipt.message_id == message.message_id)
    ).first()
    if row is None:
        return None
    if row.body_sha256 != message.body_sha256:
        raise MessageConflict(message)
    return row.response


def prune(session: Session, *, keep_days: int) -> int:
    """Drop the receipts older than ``keep_days`` (no commit); returns how many."""
    cutoff = clock.now() - timedelta(days=keep_days)
    return session.execute(delete(WebhookReceipt).where(WebhookReceipt.received_at < cutoff)
                           ).rowcount
