"""Imports of ISO 20022 camt.053/054 files and what became of each transaction in them.

One ``camt_imports`` row per import (a file imported twice has two rows, the second naming the
first in ``repeat_of_id``), with the file's control-sum checks and the counts per outcome; one
``camt_import_transactions`` row per transaction of the file (every ``TxDtls``, or an entry
without details), with its outcome — accepted, duplicate, refused, skipped — and the reason.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, sql_in

CAMT_OUTCOMES = ("accepted", "duplicate", "refused", "skipped")
CAMT_SOURCES = ("cli", "upload")


class CamtImport(Base):
    __tablename__ = "camt_imports"
    __table_args__ = (
        CheckConstraint(f"source {sql_in(*CAMT_SOURCES)}", name="source"),
        Index("ix_camt_imports_imported_at", "imported_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    imported_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(8))
    imported_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    filename: Mapped[str | None] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16))  # camt.053, camt.054, camt.052
    version: Mapped[str | None] = mapped_column(String(40))  # camt.054.001.08
    message_id: Mapped[str | None] = mapped_column(String(64))
    # the same file imported before: this import changed nothing that one had not
    repeat_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("camt_imports.id", ondelete="SET NULL"))
    # the file's own control figures agree with its entries (false: nothing was applied)
    controls_ok: Mapped[bool]
    checks: Mapped[list] = mapped_column(JSONB, default=list, server_default="[]")
    transactions: Mapped[int] = mapped_column(default=0, server_default="0")
    accepted: Mapped[int] = mapped_column(default=0, server_default="0")
    duplicates: Mapped[int] = mapped_column(default=0, server_default="0")
    refused: Mapped[int] = mapped_column(default=0, server_default="0")
    skipped: Mapped[int] = mapped_column(default=0, server_default="0")
    accepted_total: Mapped[Decimal] = mapped_column(default=0, server_default="0")

    rows: Mapped[list[CamtImportTransaction]] = relationship(
        back_populates="camt_import", order_by="CamtImportTransaction.position",
        cascade="all, delete-orphan", passive_deletes=True)


class CamtImportTransaction(Base):
    __tablename__ = "camt_import_transactions"
    __table_args__ = (
        CheckConstraint(f"outcome {sql_in(*CAMT_OUTCOMES)}", name="outcome"),
        Index("ix_camt_import_transactions_import_position", "import_id", "position",
              unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("camt_imports.id", ondelete="CASCADE"))
    position: Mapped[int]  # its order in the file
    location: Mapped[str] = mapped_column(String(32))  # report.entry.transaction
    report_id: Mapped[str | None] = mapped_column(String(64))  # Stmt/Ntfctn Id
    entry_reference: Mapped[str | None] = mapped_column(String(64))  # Ntry/AcctSvcrRef
    reference: Mapped[str | None] = mapped_column(String(64))  # the payment's reference
    end_to_end_id: Mapped[str | None] = mapped_column(String(64))
    amount: Mapped[Decimal | None]
    currency: Mapped[str | None] = mapped_column(String(8))
    credit: Mapped[bool | None]
    reversal: Mapped[bool] = mapped_column(default=False, server_default="false")
    booked_at: Mapped[datetime | None]
    account_number: Mapped[str | None] = mapped_column(String(64))  # the loan matched
    matched_by: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(40))
    message: Mapped[str | None] = mapped_column(Text)
    payment_id: Mapped[int | None] = mapped_column(
        ForeignKey("payments.id", ondelete="SET NULL"))
    rejection_id: Mapped[int | None] = mapped_column(
        ForeignKey("rejected_notifications.id", ondelete="SET NULL"))

    camt_import: Mapped[CamtImport] = relationship(back_populates="rows")
