"""Payments from the payment system, and reconciliation of any integration with its source.

A row of ``payments`` is one transaction of the payment system: a payment received, a payment
attempt that failed, or a reversal (its own row, ``original_reference`` naming the payment it
reverses; the reversed payment gets ``status = reversed`` and ``reversed_at``). Payments are
made to loans only for now (``account_number`` references ``loans``; card payments would need a
second reference). ``applied_amount`` is how much of the payment currently counts in the loan's
balance and promise allocations (portal.payments.effects keeps it in step, in any event order);
``due_applied`` how much of it the loan's due amount took (never more than was due), which is
what a reversal gives back.
Refused webhook requests are kept in ``rejected_notifications`` for ops.
"""

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
        Index("ix_payments_paid_at", "paid_at"),  # reconciliation: a business date's payments
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
    # the request exactly as received (webhook), and the X-Signature it carried: the same
    # signature presented again is a replay, refused
    raw_body: Mapped[str | None] = mapped_column(Text)
    signature: Mapped[str | None] = mapped_column(String(80))
    failure_reason: Mapped[str | None] = mapped_column(String(200))
    applied_amount: Mapped[Decimal] = mapped_column(default=0, server_default="0")
    due_applied: Mapped[Decimal] = mapped_column(default=0, server_default="0")
    effects_at: Mapped[datetime | None]


class RejectedNotification(Base):
    """A webhook request that was refused (bad signature, too large, invalid JSON or fields):
    the raw request and why, for ops to read."""

    __tablename__ = "rejected_notifications"
    __table_args__ = (
        CheckConstraint(f"integration {sql_in(*INTEGRATIONS)}", name="integration"),
        Index("ix_rejected_notifications_integration_at", "integration", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    integration: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime]
    status_code: Mapped[int]
    code: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    field: Mapped[str | None] = mapped_column(String(64))
    event_id: Mapped[str | None] = mapped_column(String(64))
    reference_number: Mapped[str | None] = mapped_column(String(64))
    headers: Mapped[dict | None] = mapped_column(JSONB)
    body: Mapped[str | None] = mapped_column(Text)  # at most the first 64 KiB
    body_size: Mapped[int] = mapped_column(default=0, server_default="0")
    remote_addr: Mapped[str | None] = mapped_column(String(64))


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
    # the later run of the same business date that replaced this open gap (status superseded)
    superseded_by_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("reconciliation_runs.id", ondelete="SET NULL"))
