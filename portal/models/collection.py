"""What the collection team does: cases, action codes, actions, promises to pay."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, TimestampMixin, sql_in, utcnow
from portal.models.enums import (
    ACTION_SOURCES,
    ACTION_TYPES,
    CASE_STATUSES,
    PROMISE_STATUSES,
)


class Case(Base, TimestampMixin):
    """One collection case per customer."""

    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint(f"status {sql_in(*CASE_STATUSES)}", name="status"),
        CheckConstraint("total_overdue >= 0", name="total_overdue_non_negative"),
        # work queue: an agent's open cases by priority, then by follow-up time
        Index("ix_cases_agent_queue", "assigned_agent_id", "status", "priority"),
        Index("ix_cases_field_agent_queue", "assigned_field_agent_id", "status", "priority"),
        Index("ix_cases_next_action_at", "next_action_at"),
        # the open part of each agent's queue in display order: the page is an index range
        # (and, with the columns it includes, every count of the queue: index-only reads)
        Index("ix_cases_open_queue", "assigned_agent_id", text("priority DESC"),
              text("max_dpd DESC"), text("total_overdue DESC"), "id",
              postgresql_where=text("status <> 'closed'"),
              postgresql_include=["status", "next_action_at", "cif", "products"]),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    cif: Mapped[str] = mapped_column(
        ForeignKey("customers.cif", onupdate="CASCADE", ondelete="CASCADE"), unique=True
    )
    assigned_agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    assigned_field_agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(16), default="open", server_default="open")
    # the code of a "processing_state" value (status_values): the system moves it
    # (actions.move_case_on), people set it with a substate (cases.statuses)
    processing_state: Mapped[str] = mapped_column(String(16), default="new", server_default="new")
    processing_substate_id: Mapped[int | None] = mapped_column(ForeignKey("status_values.id"),
                                                               index=True)
    # statuses people set (cases.statuses): values of their dictionaries
    customer_status_id: Mapped[int | None] = mapped_column(ForeignKey("status_values.id"),
                                                           index=True)
    collateral_status_id: Mapped[int | None] = mapped_column(ForeignKey("status_values.id"),
                                                             index=True)
    recovery_ability_id: Mapped[int | None] = mapped_column(ForeignKey("status_values.id"),
                                                            index=True)
    lending_violation_id: Mapped[int | None] = mapped_column(ForeignKey("status_values.id"),
                                                             index=True)
    priority: Mapped[int] = mapped_column(default=0, server_default="0")
    # today's strategy call step (portal.strategies.run): the weight it adds to ``priority``
    # and the team whose queue the case is in (None: no call step today)
    strategy_weight: Mapped[int] = mapped_column(default=0, server_default="0")
    strategy_team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="SET NULL"), index=True)
    max_dpd: Mapped[int] = mapped_column(default=0, server_default="0")
    total_overdue: Mapped[Decimal] = mapped_column(default=0, server_default="0")
    total_outstanding: Mapped[Decimal] = mapped_column(default=0, server_default="0")
    # product types still in collection (loan product types, "CARD"), kept with the totals by
    # queue.recompute_case_totals: the queue filters and counts by product without a join
    products: Mapped[list[str]] = mapped_column(ARRAY(String(32)), default=list,
                                                server_default="{}")
    next_action_at: Mapped[datetime | None]
    last_contact_at: Mapped[datetime | None]
    last_action_at: Mapped[datetime | None]
    locked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    locked_until: Mapped[datetime | None]
    # the customer's master note: one living text (cases.statuses.save_master_note), each
    # version kept in master_note_versions
    notes: Mapped[str | None] = mapped_column(Text)

    customer = relationship("Customer", primaryjoin="Case.cif == Customer.cif", viewonly=True)
    assigned_agent = relationship("User", foreign_keys=[assigned_agent_id])
    assigned_field_agent = relationship("User", foreign_keys=[assigned_field_agent_id])


class CaseAssignment(Base):
    """Assignment history: who held a case, from when, until when, and who decided."""

    __tablename__ = "case_assignments"
    __table_args__ = (
        CheckConstraint("role IN ('agent', 'field_agent')", name="role"),
        Index("ix_case_assignments_case", "case_id", "assigned_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"),
                                                 index=True)
    previous_agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    assigned_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    assigned_at: Mapped[datetime]
    unassigned_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(String(200))


class ActionCode(Base, TimestampMixin):
    """Configured type → subtype → result codes with their flags and follow-up offset."""

    __tablename__ = "action_codes"
    __table_args__ = (
        UniqueConstraint("type", "subtype", "result"),
        CheckConstraint(f"type {sql_in(*ACTION_TYPES)}", name="type"),
        CheckConstraint("follow_up_days IS NULL OR follow_up_days >= 0",
                        name="follow_up_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(8))
    subtype: Mapped[str] = mapped_column(String(40))
    result: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(120))
    is_contact: Mapped[bool] = mapped_column(default=False, server_default="false")
    is_promise: Mapped[bool] = mapped_column(default=False, server_default="false")
    follow_up_days: Mapped[int | None]
    active: Mapped[bool] = mapped_column(default=True, server_default="true")
    sort_order: Mapped[int] = mapped_column(default=0, server_default="0")


class Action(Base):
    """Append-only record of something done on a case (call, visit, sms, system note)."""

    __tablename__ = "actions"
    __table_args__ = (
        CheckConstraint(f"type {sql_in(*ACTION_TYPES, 'SYSTEM')}", name="type"),
        CheckConstraint(f"source {sql_in(*ACTION_SOURCES)}", name="source"),
        Index("ix_actions_cif_at", "cif", "at"),
        Index("ix_actions_agent_at", "agent_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    cif: Mapped[str] = mapped_column(ForeignKey("customers.cif", onupdate="CASCADE"))
    account_number: Mapped[str | None] = mapped_column(String(32), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action_code_id: Mapped[int | None] = mapped_column(ForeignKey("action_codes.id"))
    type: Mapped[str] = mapped_column(String(8))
    subtype: Mapped[str | None] = mapped_column(String(40))
    result: Mapped[str | None] = mapped_column(String(40))
    at: Mapped[datetime]
    notes: Mapped[str | None] = mapped_column(Text)
    follow_up_date: Mapped[date | None]
    call_id: Mapped[str | None] = mapped_column(String(64), index=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id", ondelete="SET NULL"),
                                                 index=True)
    lat: Mapped[float | None] = mapped_column(Numeric(9, 6))
    lon: Mapped[float | None] = mapped_column(Numeric(9, 6))
    source: Mapped[str] = mapped_column(String(8), default="manual", server_default="manual")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.crm_now())

    agent = relationship("User", foreign_keys=[agent_id])
    action_code = relationship("ActionCode")


class Promise(Base, TimestampMixin):
    """A promise to pay, fulfilled by payments allocated to it (FIFO)."""

    __tablename__ = "promises"
    __table_args__ = (
        CheckConstraint(f"status {sql_in(*PROMISE_STATUSES)}", name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("paid_amount >= 0", name="paid_non_negative"),
        Index("ix_promises_cif_status", "cif", "status"),
        Index("ix_promises_due", "status", "promised_date", postgresql_include=["cif"]),
        # at most one pending promise per account of a customer, and one for the whole customer
        # (a new one supersedes it: portal/cases/promises.py)
        Index("uq_promises_pending_account", "cif", "account_number", unique=True,
              postgresql_where=text("status = 'pending' AND account_number IS NOT NULL")),
        Index("uq_promises_pending_customer", "cif", unique=True,
              postgresql_where=text("status = 'pending' AND account_number IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    cif: Mapped[str] = mapped_column(ForeignKey("customers.cif", onupdate="CASCADE"))
    account_number: Mapped[str | None] = mapped_column(
        ForeignKey("loans.account_number", onupdate="CASCADE"), index=True
    )
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"),
                                                 index=True)
    action_id: Mapped[int | None] = mapped_column(ForeignKey("actions.id"))
    amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3), default="VND", server_default="VND")
    promised_date: Mapped[date]
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    paid_amount: Mapped[Decimal] = mapped_column(default=0, server_default="0")
    resolved_at: Mapped[datetime | None]
    notes: Mapped[str | None] = mapped_column(Text)
    # status superseded: replaced while pending by ``replacement_id``, by whom and when
    superseded_at: Mapped[datetime | None]
    superseded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    replacement_id: Mapped[int | None] = mapped_column(
        ForeignKey("promises.id", ondelete="SET NULL"))

    agent = relationship("User", foreign_keys=[agent_id])


class PromiseAllocation(Base):
    """The part of a payment that counts towards a promise."""

    __tablename__ = "promise_allocations"
    __table_args__ = (
        UniqueConstraint("promise_id", "payment_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    promise_id: Mapped[int] = mapped_column(ForeignKey("promises.id", ondelete="CASCADE"))
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id", ondelete="CASCADE"),
                                            index=True)
    amount: Mapped[Decimal]
    allocated_at: Mapped[datetime]
    reversed_at: Mapped[datetime | None]


