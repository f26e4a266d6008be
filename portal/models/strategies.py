"""Collection strategies: supervisor-defined treatment paths. A strategy has versions (a draft
is edited; activation freezes it; one active version per strategy), each version ordered
segments (conditions as data: field, operator, value — portal.strategies.conditions compiles
them), each segment its steps (by DPD or by days in the segment) and its exit conditions, and
its variants (champion / challenger with a traffic split). The daily run records each account's
strategy, version, segment, step and variant per business date in ``strategy_assignments``."""

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
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, TimestampMixin, sql_in

VERSION_STATUSES = ("draft", "active", "retired")
STEP_KEYS = ("dpd", "days_in_segment")
STEP_ACTIONS = ("sms", "email", "letter", "call", "visit", "placement_review")
MESSAGE_ACTIONS = ("sms", "email", "letter")
EXIT_CONDITIONS = ("cured", "promise_pending", "plan_active", "placed")


class Strategy(Base, TimestampMixin):
    """A named treatment path. ``rank``: when two active strategies both take an account, the
    lower rank wins (one step of one strategy per account per day)."""

    __tablename__ = "strategies"
    __table_args__ = (
        CheckConstraint("code ~ '^[A-Z0-9_]{2,30}$'", name="code_format"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(30), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str | None] = mapped_column(Text)
    rank: Mapped[int] = mapped_column(default=100, server_default="100")
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True)

    versions: Mapped[list[StrategyVersion]] = relationship(
        back_populates="strategy", order_by="StrategyVersion.number")


class StrategyVersion(Base, TimestampMixin):
    """One version of a strategy: ``draft`` (editable), ``active`` (frozen, run daily; one per
    strategy) or ``retired`` (frozen, replaced)."""

    __tablename__ = "strategy_versions"
    __table_args__ = (
        CheckConstraint(f"status {sql_in(*VERSION_STATUSES)}", name="status"),
        CheckConstraint("(status = 'draft') = (activated_at IS NULL)",
                        name="activated_unless_draft"),
        Index("uq_strategy_versions_strategy_number", "strategy_id", "number", unique=True),
        Index("uq_strategy_versions_one_active", "strategy_id", unique=True,
              postgresql_where=text("status = 'active'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    strategy_id: Mapped[int] = mapped_column(ForeignKey("strategies.id", ondelete="CASCADE"))
    number: Mapped[int]
    status: Mapped[str] = mapped_column(String(8), default="draft", server_default="draft")
    activated_at: Mapped[datetime | None]
    activated_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    retired_at: Mapped[datetime | None]

    strategy: Mapped[Strategy] = relationship(back_populates="versions")
    segments: Mapped[list[StrategySegment]] = relationship(
        back_populates="version", order_by="StrategySegment.position",
        cascade="all, delete-orphan")
    variants: Mapped[list[StrategyVariant]] = relationship(
        back_populates="version", order_by="StrategyVariant.position",
        cascade="all, delete-orphan")


class StrategySegment(Base):
    """Accounts matching every condition (``[{"field", "op", "value"}]``) and no earlier
    segment of the version. ``exit_conditions``: an account in one of these states gets no
    step today (cured, a promise pending, a plan active, placed)."""

    __tablename__ = "strategy_segments"
    __table_args__ = (
        Index("uq_strategy_segments_version_position", "version_id", "position", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("strategy_versions.id",
                                                       ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(SmallInteger)
    name: Mapped[str] = mapped_column(String(120))
    conditions: Mapped[list] = mapped_column(JSONB, default=list, server_default="[]")
    exit_conditions: Mapped[list[str]] = mapped_column(ARRAY(String(20)), default=list,
                                                       server_default="{}")

    version: Mapped[StrategyVersion] = relationship(back_populates="segments")
    steps: Mapped[list[StrategyStep]] = relationship(
        back_populates="segment", order_by="(StrategyStep.at_value, StrategyStep.id)",
        cascade="all, delete-orphan")


class StrategyStep(Base):
    """What happens to an account of the segment from ``at_value`` on (its DPD — negative:
    days before the due date — or its days in the segment) until the next step. ``template_code``
    (sms / email / letter) names a message template; a call step puts the case in ``team_id``'s
    queue with ``priority_weight`` added to its priority."""

    __tablename__ = "strategy_steps"
    __table_args__ = (
        CheckConstraint(f"key {sql_in(*STEP_KEYS)}", name="key"),
        CheckConstraint(f"action {sql_in(*STEP_ACTIONS)}", name="action"),
        CheckConstraint(f"(action {sql_in(*MESSAGE_ACTIONS)}) = (template_code IS NOT NULL)",
                        name="template_for_messages"),
        CheckConstraint("priority_weight BETWEEN 0 AND 1000", name="priority_weight_range"),
        Index("ix_strategy_steps_segment", "segment_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("strategy_segments.id",
                                                       ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(16), default="dpd", server_default="dpd")
    at_value: Mapped[int]
    action: Mapped[str] = mapped_column(String(20))
    template_code: Mapped[str | None] = mapped_column(String(40))
    priority_weight: Mapped[int] = mapped_column(default=0, server_default="0")
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))

    segment: Mapped[StrategySegment] = relationship(back_populates="steps")
    team = relationship("Team")


class StrategyVariant(Base):
    """Champion or challenger: the share of the version's accounts (``split_pct`` of 100,
    drawn by a stable hash of strategy and account) and, for a challenger, the change it tries:
    ``weight_delta`` added to its call steps' priority weight, ``skip_actions`` it does not
    do."""

    __tablename__ = "strategy_variants"
    __table_args__ = (
        CheckConstraint("split_pct BETWEEN 0 AND 100", name="split_range"),
        Index("uq_strategy_variants_version_position", "version_id", "position", unique=True),
        Index("uq_strategy_variants_one_champion", "version_id", unique=True,
              postgresql_where=text("is_champion")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("strategy_versions.id",
                                                       ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(SmallInteger)
    name: Mapped[str] = mapped_column(String(60))
    is_champion: Mapped[bool] = mapped_column(default=False, server_default="false")
    split_pct: Mapped[int] = mapped_column(SmallInteger)
    weight_delta: Mapped[int] = mapped_column(default=0, server_default="0")
    skip_actions: Mapped[list[str]] = mapped_column(ARRAY(String(20)), default=list,
                                                    server_default="{}")

    version: Mapped[StrategyVersion] = relationship(back_populates="variants")


class StrategyAssignment(Base):
    """Where one account stands on one business date: its strategy, version, segment, step
    (None: an exit condition holds) and variant, with the facts it was judged on. At most one
    per account per day (``uq_strategy_assignments_day_account``)."""

    __tablename__ = "strategy_assignments"
    __table_args__ = (
        Index("uq_strategy_assignments_day_account", "business_date", "account_number",
              unique=True),
        Index("ix_strategy_assignments_version_day", "version_id", "business_date"),
        Index("ix_strategy_assignments_account_day", "account_number", "business_date"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    business_date: Mapped[date]
    account_number: Mapped[str] = mapped_column(String(32))
    cif: Mapped[str] = mapped_column(String(32))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"))
    strategy_id: Mapped[int] = mapped_column(ForeignKey("strategies.id", ondelete="CASCADE"))
    # version, segment, step and variant of the strategy: no foreign keys (a million rows a day
    # would pay four trigger lookups each; an activated version is never deleted), their
    # agreement is stated by the strategy_assignments invariant (portal.strategies.checks)
    version_id: Mapped[int]
    segment_id: Mapped[int]
    step_id: Mapped[int | None]
    variant_id: Mapped[int | None]
    draw: Mapped[int] = mapped_column(SmallInteger)  # the stable 0-99 bucket
    segment_since: Mapped[date]
    entered_step: Mapped[bool] = mapped_column(default=False, server_default="false")
    exited: Mapped[str | None] = mapped_column(String(20))  # the exit condition that held
    dpd: Mapped[int]
    bucket: Mapped[str] = mapped_column(String(8))
    overdue: Mapped[Decimal]
    outstanding: Mapped[Decimal]
