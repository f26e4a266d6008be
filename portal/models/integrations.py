"""Integration runs, quarantined records and per-integration settings (feature flags)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, sql_in, utcnow
from portal.models.enums import INTEGRATIONS, RUN_KINDS, RUN_STATUSES, RUN_TRIGGERS
from portal.tracing import current_trace_id


class IntegrationRun(Base):
    __tablename__ = "integration_runs"
    __table_args__ = (
        CheckConstraint(f"integration {sql_in(*INTEGRATIONS)}", name="integration"),
        CheckConstraint(f"kind {sql_in(*RUN_KINDS)}", name="kind"),
        CheckConstraint(f"trigger {sql_in(*RUN_TRIGGERS)}", name="trigger"),
        CheckConstraint(f"status {sql_in(*RUN_STATUSES)}", name="status"),
        CheckConstraint("extracted >= 0 AND loaded >= 0 AND failed >= 0", name="counts"),
        Index("ix_integration_runs_integration_started", "integration", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    integration: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="running", server_default="running")
    business_date: Mapped[date | None]
    mode: Mapped[str | None] = mapped_column(String(16))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    extracted: Mapped[int] = mapped_column(default=0, server_default="0")
    transformed: Mapped[int] = mapped_column(default=0, server_default="0")  # passed validation
    loaded: Mapped[int] = mapped_column(default=0, server_default="0")  # inserted or changed
    unchanged: Mapped[int] = mapped_column(default=0, server_default="0")
    quarantined: Mapped[int] = mapped_column(default=0, server_default="0")
    failed: Mapped[int] = mapped_column(default=0, server_default="0")
    # progress of a running run (records done / total), written while it runs (ops page)
    progress_done: Mapped[int | None] = mapped_column(BigInteger)
    progress_total: Mapped[int | None] = mapped_column(BigInteger)
    attempt: Mapped[int] = mapped_column(default=1, server_default="1")
    control_totals: Mapped[dict | None] = mapped_column(JSONB)
    errors: Mapped[list | None] = mapped_column(JSONB)
    correlation_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # the OpenTelemetry trace the run was created in (32 hex digits; migration 0036)
    trace_id: Mapped[str | None] = mapped_column(String(32), default=current_trace_id)
    triggered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                   ondelete="SET NULL"))
    retry_of_id: Mapped[int | None] = mapped_column(ForeignKey("integration_runs.id",
                                                               ondelete="SET NULL"))
    duration_ms: Mapped[int | None]
    cursor_before: Mapped[str | None] = mapped_column(String(64))
    cursor_after: Mapped[str | None] = mapped_column(String(64))
    total_amount: Mapped[Decimal | None]
    # why a run did what it did when that is not in its counts: above all why a ``skipped``
    # run had nothing to do ("no file set waiting in the inbox")
    note: Mapped[str | None] = mapped_column(Text)


class QuarantinedRecord(Base):
    __tablename__ = "quarantined_records"
    __table_args__ = (
        CheckConstraint(f"integration {sql_in(*INTEGRATIONS)}", name="integration"),
        CheckConstraint("status IN ('open', 'reprocessed', 'discarded')", name="status"),
        Index("ix_quarantined_records_run", "run_id"),
        Index("ix_quarantined_records_integration_status", "integration", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    integration: Mapped[str] = mapped_column(String(16))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("integration_runs.id",
                                                          ondelete="CASCADE"))
    entity: Mapped[str] = mapped_column(String(32))
    record_key: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict | list | str | None] = mapped_column(JSONB)
    raw: Mapped[str | None] = mapped_column(Text)
    source_file: Mapped[str | None] = mapped_column(String(300))
    line_number: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(16), default="open", server_default="open")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.crm_now())


class IntegrationSetting(Base):
    __tablename__ = "integration_settings"
    __table_args__ = (
        CheckConstraint(f"integration {sql_in(*INTEGRATIONS)}", name="integration"),
    )

    integration: Mapped[str] = mapped_column(String(16), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=True, server_default="true")
    schedule: Mapped[str | None] = mapped_column(String(64))
    cursor: Mapped[str | None] = mapped_column(String(64))
    config: Mapped[dict | None] = mapped_column(JSONB)
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    changed_at: Mapped[datetime | None]
    change_reason: Mapped[str | None] = mapped_column(Text)


class IntegrationTraffic(Base):
    """Requests of a push integration (payment webhook, CTI webhook, phone positions) counted
    at receipt, per hour: accepted and refused, how long they took, when the last one came
    (portal/ops/traffic.py writes and reads it). ``slot`` spreads concurrent writers over a few
    rows of the hour, so requests never queue on one row lock; readers sum the slots."""

    __tablename__ = "integration_traffic"
    __table_args__ = (
        CheckConstraint(f"integration {sql_in(*INTEGRATIONS)}", name="integration"),
        CheckConstraint("accepted >= 0 AND refused >= 0", name="counts"),
    )

    integration: Mapped[str] = mapped_column(String(16), primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)  # start of the hour (UTC)
    slot: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    accepted: Mapped[int] = mapped_column(default=0, server_default="0")
    refused: Mapped[int] = mapped_column(default=0, server_default="0")
    latency_ms_total: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    latency_ms_max: Mapped[int] = mapped_column(default=0, server_default="0")
    last_received_at: Mapped[datetime | None]
    last_accepted_at: Mapped[datetime | None]
    last_refused_at: Mapped[datetime | None]
