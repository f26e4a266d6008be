"""Payments from the payment system, and reconciliation of any integration with its source."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, TimestampMixin, sql_in
from portal.models.enums import (
    DISCREPANCY_KINDS,
    DISCREPANCY_STATUSES,
    INTEGRATIONS,
    PAYMENT_SOURCES,
    PAYMENT_STATUSES,
    RUN_STATUSES,
)


class Payment(Base, TimestampMixin):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint(f"status {sql_in(*PAYMENT_STATUSES)}", name="status"),
        CheckConstraint(f"source {sql_in(*PAYMENT_SOURCES)}", name="source"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("length(currency) = 3", name="currency_iso"),
        Index("ix_payments_cif_paid_at", "cif", "paid_at"),
        Index("ix_payments_account_paid_at", "account_number", "paid_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    reference_number: Mapped[str] = mapped_column(String(64), unique=True)
    event_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    original_reference: Mapped[str | None] = mapped_column(String(64), index=True)
    account_number: Mapped[str] = mapped_column(
        ForeignKey("loans.account_number", onupdate="CASCADE")
    )
    cif: Mapped[str] = mapped_column(ForeignKey("customers.cif", onupdate="CASCADE"))
    amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3))
    paid_at: Mapped[datetime]
    channel: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="received",
                                        server_default="received")
    source: Mapped[str] = mapped_column(String(16), default="webhook", server_default="webhook")
    raw_payload: Mapped[dict | None] = mapped_column(JSONB)
    reversed_at: Mapped[datetime | None]


class ReconciliationRun(Base):
    __tablename__ = "reconciliation_runs"
    __table_args__ = (
        CheckConstraint(f"integration {sql_in(*INTEGRATIONS)}", name="integration"),
        CheckConstraint(f"status {sql_in(*RUN_STATUSES)}", name="status"),
        Index("ix_reconciliation_runs_integration_date", "integration", "business_date"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    integration: Mapped[str] = mapped_column(String(16))
    business_date: Mapped[date]
    integration_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("integration_runs.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(16), default="running", server_default="running")
    source_count: Mapped[int] = mapped_column(default=0, server_default="0")
    crm_count: Mapped[int] = mapped_column(default=0, server_default="0")
    matched_count: Mapped[int] = mapped_column(default=0, server_default="0")
    discrepancy_count: Mapped[int] = mapped_column(default=0, server_default="0")
    source_total: Mapped[Decimal | None]
    crm_total: Mapped[Decimal | None]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class Discrepancy(Base, TimestampMixin):
    __tablename__ = "discrepancies"
    __table_args__ = (
        CheckConstraint(f"kind {sql_in(*DISCREPANCY_KINDS)}", name="kind"),
        CheckConstraint(f"status {sql_in(*DISCREPANCY_STATUSES)}", name="status"),
        Index("ix_discrepancies_run_status", "run_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("reconciliation_runs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))
    entity: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(64))
    source_value: Mapped[dict | None] = mapped_column(JSONB)
    crm_value: Mapped[dict | None] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16), default="open", server_default="open")
    resolution: Mapped[str | None] = mapped_column(Text)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    resolved_at: Mapped[datetime | None]
