"""Ops alerts: one row per time a rule's condition held, from raised to cleared (history); the
runs of the invariant check."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, sql_in, utcnow

ALERT_STATUSES = ("firing", "resolved")
ALERT_SEVERITIES = ("warning", "critical")


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint(f"status {sql_in(*ALERT_STATUSES)}", name="status"),
        CheckConstraint(f"severity {sql_in(*ALERT_SEVERITIES)}", name="severity"),
        # a condition is raised once while it holds: at most one firing row per key
        Index("ix_alerts_firing_key", "key", unique=True,
              postgresql_where=text("status = 'firing'")),
        Index("ix_alerts_raised_at", "raised_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    key: Mapped[str] = mapped_column(String(160))  # rule:subject, e.g. integration_down:W4
    rule: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str | None] = mapped_column(String(100))
    severity: Mapped[str] = mapped_column(String(16), default="warning",
                                          server_default="warning")
    status: Mapped[str] = mapped_column(String(16), default="firing", server_default="firing")
    title: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str | None] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(300))
    data: Mapped[dict | None] = mapped_column(JSONB)
    raised_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.crm_now())
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.crm_now())
    resolved_at: Mapped[datetime | None]
    # the alert webhook (ALERT_WEBHOOK_URL) for the latest transition (raised or resolved)
    webhook_status: Mapped[str | None] = mapped_column(String(16))  # sent | failed | None
    webhook_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    webhook_error: Mapped[str | None] = mapped_column(Text)


class InvariantRun(Base):
    """One run of ``flask check invariants`` (nightly, or from the ops page): the violations of
    each truth that ties the tables together (portal/ops/invariants.py)."""

    __tablename__ = "invariant_runs"
    __table_args__ = (Index("ix_invariant_runs_started_at", "started_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.crm_now())
    finished_at: Mapped[datetime | None]
    trigger: Mapped[str] = mapped_column(String(16))  # schedule | manual | cli
    triggered_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    violations: Mapped[int] = mapped_column(default=0, server_default="0")
    errors: Mapped[int] = mapped_column(default=0, server_default="0")  # checks that could not run
    results: Mapped[list] = mapped_column(JSONB, default=list, server_default="[]")
