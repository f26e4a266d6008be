"""Placements: a case handed to the bank's legal team or to an external collection agency,
and the list of those agencies (kept by admins)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, TimestampMixin, sql_in

AGENCY_KINDS = ("legal", "agency")
PLACEMENT_STATUSES = ("active", "recalled", "returned")


class Agency(Base, TimestampMixin):
    """Who a case can be placed with: the bank's legal team or an external collection agency.
    An agency that has held a case is never deleted: it is retired (inactive)."""

    __tablename__ = "agencies"
    __table_args__ = (
        CheckConstraint(f"kind {sql_in(*AGENCY_KINDS)}", name="kind"),
        CheckConstraint("code ~ '^[A-Z0-9_-]{2,20}$'", name="code_format"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16))
    contact: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True, server_default="true")


class Placement(Base, TimestampMixin):
    """A case placed with an agency from ``placed_at`` until it is recalled or returned
    (``ended_at``). ``amount`` is the case's total outstanding when it was placed (the one
    definition of the amount placed). One active placement per case."""

    __tablename__ = "placements"
    __table_args__ = (
        CheckConstraint(f"status {sql_in(*PLACEMENT_STATUSES)}", name="status"),
        CheckConstraint("amount >= 0", name="amount_non_negative"),
        CheckConstraint("expected_return_on >= placed_on", name="return_after_placement"),
        CheckConstraint("(status = 'active') = (ended_at IS NULL)", name="ended_unless_active"),
        CheckConstraint("ended_at IS NULL OR ended_at >= placed_at", name="ends_after_start"),
        Index("uq_placements_one_active_per_case", "case_id", unique=True,
              postgresql_where=text("status = 'active'")),
        Index("ix_placements_case_placed_at", "case_id", "placed_at"),
        Index("ix_placements_agency_status", "agency_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    placed_on: Mapped[date]  # the business date (bank's zone)
    placed_at: Mapped[datetime]
    expected_return_on: Mapped[date]
    amount: Mapped[Decimal]
    reason: Mapped[str] = mapped_column(String(500))
    placed_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True)
    ended_at: Mapped[datetime | None]  # recalled or returned
    end_reason: Mapped[str | None] = mapped_column(String(500))
    ended_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True)

    agency = relationship("Agency", lazy="joined")
    case = relationship("Case")
    placed_by = relationship("User", foreign_keys=[placed_by_id])
    ended_by = relationship("User", foreign_keys=[ended_by_id])
