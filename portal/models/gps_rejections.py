"""GPS positions refused for good: a point a phone sent that can never be accepted (too old,
impossible coordinates, a time far in the future, a value out of range ...). It is answered
2xx, so a tracker that retries until it gets one (the Traccar Client) is not blocked behind
it, and kept here with its reason and the values as sent, for ops and supervisors to read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, sql_in

# the refusal codes of portal/field/locations.py (REASONS) a point can be rejected for
REJECTION_REASONS = (
    "malformed", "missing_field", "invalid_number", "lat_out_of_range", "lon_out_of_range",
    "null_island", "invalid_timestamp", "future_timestamp", "too_old", "accuracy_absurd",
)
REJECTION_SOURCES = ("api", "osmand")


class RejectedLocation(Base):
    __tablename__ = "rejected_locations"
    __table_args__ = (
        CheckConstraint(f"reason {sql_in(*REJECTION_REASONS)}", name="reason"),
        CheckConstraint(f"source {sql_in(*REJECTION_SOURCES)}", name="source"),
        # the same values sent again (a batch resent after a lost answer) are one row, counted
        UniqueConstraint("agent_id", "fingerprint"),
        Index("ix_rejected_locations_last_received_at", "last_received_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    device_id: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(String(300))
    raw: Mapped[dict] = mapped_column(JSONB)  # the values as sent (never the token)
    fingerprint: Mapped[str] = mapped_column(String(64))  # sha-256 of source + raw
    recorded_at: Mapped[datetime | None]  # the point's own time, when it could be read
    received_at: Mapped[datetime]  # first received
    last_received_at: Mapped[datetime]
    times: Mapped[int] = mapped_column(default=1, server_default="1")

    agent = relationship("User")
