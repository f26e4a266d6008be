"""Payment plans (arrangements): N instalments (date, amount) that together cover what the
customer owes, each tracked like a promise and paid by the same FIFO allocation of payments
(portal/cases/plans.py)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, TimestampMixin, sql_in

PLAN_STATUSES = ("active", "completed", "broken", "cancelled")
INSTALMENT_STATUSES = ("pending", "part", "kept", "missed")


class PaymentPlan(Base, TimestampMixin):
    """An arrangement the agent recorded; ``break_after_missed``: how many missed instalments
    break it (the admin's setting when it was made)."""

    __tablename__ = "payment_plans"
    __table_args__ = (
        CheckConstraint(f"status {sql_in(*PLAN_STATUSES)}", name="status"),
        CheckConstraint("total > 0", name="total_positive"),
        CheckConstraint("break_after_missed >= 1", name="break_after_positive"),
        Index("ix_payment_plans_cif_status", "cif", "status"),
        # one active plan per customer (a case is one customer)
        Index("uq_payment_plans_active", "cif", unique=True,
              postgresql_where=text("status = 'active'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    cif: Mapped[str] = mapped_column(ForeignKey("customers.cif", onupdate="CASCADE"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"),
                                                 index=True)
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    total: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3), default="VND", server_default="VND")
    overdue_at_start: Mapped[Decimal]
    break_after_missed: Mapped[int] = mapped_column(default=1, server_default="1")
    reason: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None]
    cancelled_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    cancel_reason: Mapped[str | None] = mapped_column(Text)

    agent = relationship("User", foreign_keys=[agent_id])
    instalments = relationship("PlanInstalment", order_by="PlanInstalment.seq",
                               back_populates="plan")


class PlanInstalment(Base):
    __tablename__ = "plan_instalments"
    __table_args__ = (
        UniqueConstraint("plan_id", "seq"),
        CheckConstraint(f"status {sql_in(*INSTALMENT_STATUSES)}", name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("paid_amount >= 0", name="paid_non_negative"),
        Index("ix_plan_instalments_due", "status", "due_date"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("payment_plans.id", ondelete="CASCADE"))
    seq: Mapped[int]
    due_date: Mapped[date]
    amount: Mapped[Decimal]
    paid_amount: Mapped[Decimal] = mapped_column(default=0, server_default="0")
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    resolved_at: Mapped[datetime | None]

    plan = relationship("PaymentPlan", back_populates="instalments")


class PlanAllocation(Base):
    """The part of a payment that counts towards an instalment."""

    __tablename__ = "plan_allocations"
    __table_args__ = (
        UniqueConstraint("instalment_id", "payment_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    instalment_id: Mapped[int] = mapped_column(
        ForeignKey("plan_instalments.id", ondelete="CASCADE"))
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id", ondelete="CASCADE"),
                                            index=True)
    amount: Mapped[Decimal]
    allocated_at: Mapped[datetime]
    reversed_at: Mapped[datetime | None]
