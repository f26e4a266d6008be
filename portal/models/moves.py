"""Products whose owner (CIF) a bank sync changed: one row per move, applied or held for ops.

A loader (integrations/owner_moves.py) records a move ``pending`` when the source sends a known
product (a T24 loan, a W4 card, a LOS application) under another customer than ours; at the end
of the run the move is ``applied`` (the product now belongs to ``new_cif``) or ``held`` for an
ops decision when the run would move too large a share of its products. Ops then apply or
reject a held move; a held move the source no longer proposes is ``withdrawn``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, sql_in, utcnow
from portal.models.enums import SOURCE_SYSTEMS

MOVE_PRODUCTS = ("loan", "card", "application")
MOVE_STATUSES = ("pending", "applied", "held", "rejected", "withdrawn")
OPEN_MOVE_STATUSES = ("pending", "held")


class ProductOwnerMove(Base):
    __tablename__ = "product_owner_moves"
    __table_args__ = (
        CheckConstraint(f"integration {sql_in(*SOURCE_SYSTEMS)}", name="integration"),
        CheckConstraint(f"product {sql_in(*MOVE_PRODUCTS)}", name="product"),
        CheckConstraint(f"status {sql_in(*MOVE_STATUSES)}", name="status"),
        CheckConstraint("old_cif <> new_cif", name="owner_changes"),
        # at most one undecided move per product
        Index("ix_product_owner_moves_open", "product", "product_key", unique=True,
              postgresql_where=text("status IN ('pending', 'held')")),
        Index("ix_product_owner_moves_product", "product", "product_key"),
        Index("ix_product_owner_moves_old_cif", "old_cif"),
        Index("ix_product_owner_moves_new_cif", "new_cif"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("integration_runs.id", ondelete="SET NULL"), index=True)
    integration: Mapped[str] = mapped_column(String(16))
    product: Mapped[str] = mapped_column(String(16))
    product_key: Mapped[str] = mapped_column(String(40))
    old_cif: Mapped[str] = mapped_column(ForeignKey("customers.cif", onupdate="CASCADE"))
    new_cif: Mapped[str] = mapped_column(ForeignKey("customers.cif", onupdate="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    detected_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.crm_now())
    decided_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(Text)
