"""The transactional outbox (events) and one delivery row per subscriber."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, sql_in, utcnow
from portal.models.enums import DELIVERY_STATUSES


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        # relay scans unrelayed events in order
        Index("ix_events_unrelayed", "seq", postgresql_where="relayed_at IS NULL"),
        # what reads by time reads a window since a moment (ops cards, replay); the outbox is
        # appended in time order, so block ranges find it at little write cost (migration 0031)
        Index("ix_events_occurred_brin", "occurred_at", postgresql_using="brin"),
        # releasing held payments (payments.effects); no other reader looks events up by
        # aggregate or by correlation id, and a bulk load pays for every index (migration 0012)
        Index("ix_events_payment_aggregate", "aggregate_id",
              postgresql_where="type IN ('PAYMENT_RECEIVED', 'PAYMENT_REVERSED')"),
    )

    # ids made in the database (bulk loads) are time-ordered (crm_uuid7(), migration 0009): the
    # primary key then grows at its end instead of at random places
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True,
                                          default=uuid.uuid4,
                                          server_default=text("crm_uuid7()"))
    seq: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    version: Mapped[int]
    aggregate_type: Mapped[str] = mapped_column(String(32))
    aggregate_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JSONB)
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    # the W3C traceparent of the span that published it (portal/tracing.py): its delivery jobs
    # and subscriber spans continue that trace (migration 0036)
    traceparent: Mapped[str | None] = mapped_column(String(55))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.crm_now())
    relayed_at: Mapped[datetime | None]

    deliveries: Mapped[list[EventDelivery]] = relationship(back_populates="event")


class EventDelivery(Base):
    __tablename__ = "event_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "subscriber"),
        CheckConstraint(f"status {sql_in(*DELIVERY_STATUSES)}", name="status"),
        Index("ix_event_deliveries_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    subscriber: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[str | None] = mapped_column(String(64))
    enqueued_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]

    event: Mapped[Event] = relationship(back_populates="deliveries")
