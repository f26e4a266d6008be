"""Print batches: the letters of one business date handed to the print vendor as PDFs — one
per letter, one combined, and a manifest with counts and checksums (portal.messages.letters)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, TimestampMixin, sql_in

PRINT_BATCH_STATUSES = ("built", "handed_over")


class PrintBatch(Base, TimestampMixin):
    """One batch per business date (built once: building the date again returns it). Its
    files are under ``directory`` (relative to the print root); ``handed_over_at`` is when ops
    gave it to the print vendor (its letters are then 'delivered')."""

    __tablename__ = "print_batches"
    __table_args__ = (
        CheckConstraint(f"status {sql_in(*PRINT_BATCH_STATUSES)}", name="status"),
        CheckConstraint("letters >= 0 AND pages >= 0", name="counts_non_negative"),
        CheckConstraint("(status = 'handed_over') = (handed_over_at IS NOT NULL)",
                        name="handed_over_has_time"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    business_date: Mapped[date] = mapped_column(unique=True)
    status: Mapped[str] = mapped_column(String(16), default="built", server_default="built")
    letters: Mapped[int] = mapped_column(default=0, server_default="0")
    pages: Mapped[int] = mapped_column(default=0, server_default="0")
    directory: Mapped[str] = mapped_column(String(200))
    combined_sha256: Mapped[str | None] = mapped_column(String(64))
    manifest_sha256: Mapped[str | None] = mapped_column(String(64))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    handed_over_at: Mapped[datetime | None]
    handed_over_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))

    items = relationship("PrintBatchLetter", back_populates="batch",
                         order_by="PrintBatchLetter.position")


class PrintBatchLetter(Base):
    """One letter of a batch: its message (in one batch at most), file and checksum."""

    __tablename__ = "print_batch_letters"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("print_batches.id", ondelete="CASCADE"),
                                          index=True)
    message_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("messages.id", ondelete="CASCADE"), unique=True)
    position: Mapped[int]
    filename: Mapped[str] = mapped_column(String(120))
    pages: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))

    batch = relationship("PrintBatch", back_populates="items")
    message = relationship("Message")
