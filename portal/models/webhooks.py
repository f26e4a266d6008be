"""What each signed webhook message caused, kept so a resend is answered, never applied again.

One row per message a sender delivered and the portal applied: the sender (``integration``),
the message's id (Standard Webhooks ``webhook-id``; in the crm-hmac scheme the body's
``event_id``), the SHA-256 of the body it came with, and the answer the first delivery got.
A resend of the same id with the same body gets that answer again (portal/webhook_receipts.py);
the same id with another body is a conflict.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, SmallInteger, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, sql_in
from portal.models.enums import INTEGRATIONS


class WebhookReceipt(Base):
    __tablename__ = "webhook_receipts"
    __table_args__ = (
        CheckConstraint(f"integration {sql_in(*INTEGRATIONS)}", name="integration"),
        CheckConstraint("scheme IN ('crm-hmac', 'standard')", name="scheme"),
        Index("ix_webhook_receipts_received_at", "received_at"),
    )

    integration: Mapped[str] = mapped_column(String(16), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    scheme: Mapped[str] = mapped_column(String(16))
    body_sha256: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(SmallInteger)
    response: Mapped[dict] = mapped_column(JSONB)
    received_at: Mapped[datetime]
