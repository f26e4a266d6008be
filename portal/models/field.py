"""Call-centre and field work: call records, agent status, GPS locations, visits."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, TimestampMixin, sql_in
from portal.models.enums import (
    AGENT_STATUS_SOURCES,
    AGENT_STATUSES,
    CALL_DIRECTIONS,
    IMPLAUSIBLE_REASONS,
    TIME_SOURCES,
    VISIT_STATUSES,
    VISIT_VERIFICATIONS,
)


class CallRecord(Base, TimestampMixin):
    __tablename__ = "call_records"
    __table_args__ = (
        CheckConstraint(f"direction {sql_in(*CALL_DIRECTIONS)}", name="direction"),
        CheckConstraint("duration_s IS NULL OR duration_s >= 0", name="duration_non_negative"),
        Index("ix_call_records_agent_started", "agent_id", "started_at"),
        Index("ix_call_records_cif_started", "cif", "started_at"),
        Index("ix_call_records_unmatched", "started_at",
              postgresql_where="unmatched_reason IS NOT NULL"),
        Index("ix_call_records_window_breach", "agent_id", "started_at",
              postgresql_where="window_breach IS NOT NULL"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64), unique=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    cif: Mapped[str | None] = mapped_column(ForeignKey("customers.cif", onupdate="CASCADE"))
    phone: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(8))
    started_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    duration_s: Mapped[int | None]
    disposition: Mapped[str | None] = mapped_column(String(32))
    recording_ref: Mapped[str | None] = mapped_column(String(200))
    action_id: Mapped[int | None] = mapped_column(ForeignKey("actions.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(8), default="cti", server_default="cti")
    # the call centre's own agent and customer keys as received, and why a call could not be
    # matched to an agent or a customer (None: matched); unmatched calls go to supervisors
    cti_agent_ref: Mapped[str | None] = mapped_column(String(64))
    ref_cif: Mapped[str | None] = mapped_column(String(32))
    unmatched_reason: Mapped[str | None] = mapped_column(String(32))
    outcome_recorded_at: Mapped[datetime | None]
    logged_at: Mapped[datetime | None]  # seen ended: action + CALL_LOGGED done (once)
    # an outbound call that started outside the contact window: the window it broke
    # ("07:00–21:00"; contact_rules.window_breach_sql); None: the window allowed it
    window_breach: Mapped[str | None] = mapped_column(String(40))


class AgentStatus(Base):
    """Current status of each agent (one row per agent)."""

    __tablename__ = "agent_status"
    __table_args__ = (
        CheckConstraint(f"status {sql_in(*AGENT_STATUSES)}", name="status"),
        CheckConstraint(f"source {sql_in(*AGENT_STATUS_SOURCES)}", name="source"),
    )

    agent_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                          primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="offline")
    since: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(8), default="portal")
    synced: Mapped[bool] = mapped_column(default=True, server_default="true")
    current_call_id: Mapped[str | None] = mapped_column(String(64))
    current_cif: Mapped[str | None] = mapped_column(String(32))
    # a portal change the call centre has not confirmed: retried by workers/jobs/calls.py
    sync_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    sync_error: Mapped[str | None] = mapped_column(String(200))
    last_sync_at: Mapped[datetime | None]

    agent = relationship("User")


class AgentStatusEvent(Base):
    __tablename__ = "agent_status_events"
    __table_args__ = (
        CheckConstraint(f"status {sql_in(*AGENT_STATUSES)}", name="status"),
        CheckConstraint(f"source {sql_in(*AGENT_STATUS_SOURCES)}", name="source"),
        Index("ix_agent_status_events_agent_at", "agent_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    previous_status: Mapped[str | None] = mapped_column(String(16))
    at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str | None] = mapped_column(String(200))


class AgentLocation(Base):
    __tablename__ = "agent_locations"
    __table_args__ = (
        UniqueConstraint("agent_id", "recorded_at"),
        CheckConstraint("lat BETWEEN -90 AND 90", name="lat_range"),
        CheckConstraint("lon BETWEEN -180 AND 180", name="lon_range"),
        CheckConstraint("accuracy_m IS NULL OR accuracy_m >= 0", name="accuracy_non_negative"),
        Index("ix_agent_locations_unforwarded", "id", postgresql_where="forwarded_at IS NULL"),
        CheckConstraint(f"implausible_reason IS NULL OR implausible_reason "
                        f"{sql_in(*IMPLAUSIBLE_REASONS)}", name="implausible_reason"),
        # the few implausible points, counted per agent and day (map) and per 24 h (ops)
        Index("ix_agent_locations_implausible", "agent_id", "recorded_at",
              postgresql_where="implausible_reason IS NOT NULL"),
        CheckConstraint(f"time_source {sql_in(*TIME_SOURCES)}", name="time_source"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    lat: Mapped[float] = mapped_column(Numeric(9, 6))
    lon: Mapped[float] = mapped_column(Numeric(9, 6))
    accuracy_m: Mapped[float | None] = mapped_column(Numeric(8, 1))
    speed: Mapped[float | None] = mapped_column(Numeric(7, 2))
    heading: Mapped[float | None] = mapped_column(Numeric(5, 1))
    battery: Mapped[float | None] = mapped_column(Numeric(5, 1))
    recorded_at: Mapped[datetime]
    received_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(16), default="api", server_default="api")
    flag: Mapped[str | None] = mapped_column(String(64))
    # set: the point cannot be true (outside the service area, or too fast from the agent's
    # previous plausible point); kept, but left out of routes, distances, the last position,
    # visit verification and forwarding (portal/field/plausibility.py)
    implausible_reason: Mapped[str | None] = mapped_column(String(32))
    forwarded_at: Mapped[datetime | None]
    # 'received': the phone sent no time (the OsmAnd protocol allows it); recorded_at is the
    # time of receipt, as Traccar does
    time_source: Mapped[str] = mapped_column(String(8), default="device",
                                             server_default="device")


class Visit(Base, TimestampMixin):
    __tablename__ = "visits"
    __table_args__ = (
        CheckConstraint(f"status {sql_in(*VISIT_STATUSES)}", name="status"),
        CheckConstraint(
            f"verification IS NULL OR verification {sql_in(*VISIT_VERIFICATIONS)}",
            name="verification",
        ),
        Index("ix_visits_agent_planned", "agent_id", "planned_for"),
        Index("ix_visits_cif", "cif"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    cif: Mapped[str] = mapped_column(ForeignKey("customers.cif", onupdate="CASCADE"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    address_id: Mapped[int | None] = mapped_column(ForeignKey("addresses.id",
                                                              ondelete="SET NULL"))
    planned_for: Mapped[date]
    planned_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default="planned", server_default="planned")
    checked_in_at: Mapped[datetime | None]
    checkin_lat: Mapped[float | None] = mapped_column(Numeric(9, 6))
    checkin_lon: Mapped[float | None] = mapped_column(Numeric(9, 6))
    checkin_accuracy_m: Mapped[float | None] = mapped_column(Numeric(8, 1))
    distance_m: Mapped[float | None] = mapped_column(Numeric(10, 1))
    verification: Mapped[str | None] = mapped_column(String(16))
    verification_source: Mapped[str | None] = mapped_column(String(16))
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_at: Mapped[datetime | None]
    review_note: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)

    agent = relationship("User", foreign_keys=[agent_id])


class FieldDevice(Base, TimestampMixin):
    """A phone or tracker's own identifier (the OsmAnd/Traccar ``id``) → the field agent it
    belongs to. Lets a shared gateway token, or a device token, name its agent by device id."""

    __tablename__ = "field_devices"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    label: Mapped[str | None] = mapped_column(String(100))
    last_seen_at: Mapped[datetime | None]

    agent = relationship("User")
