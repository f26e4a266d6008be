"""Documents kept against a customer (or one of their loans or cards): IDs, receipts, visit
photos, legal notices. The bytes live in the document store (portal/documents/storage.py),
under a generated key; the row holds what was checked when it came in (the type read from the
content, the size, the sha256) and who sent it. Every time someone opens or downloads one, a
``DocumentDownload`` row says who, when, how and under which correlation id."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, sql_in

DOCUMENT_KINDS = ("id_document", "receipt", "visit_photo", "legal_notice", "other")
# the types a document may be, as read from its first bytes (portal/documents/content.py)
DOCUMENT_CONTENT_TYPES = ("application/pdf", "image/jpeg", "image/png", "image/webp",
                          "image/heic")
DOWNLOAD_DISPOSITIONS = ("inline", "attachment")


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        CheckConstraint(f"kind {sql_in(*DOCUMENT_KINDS)}", name="kind"),
        CheckConstraint(f"content_type {sql_in(*DOCUMENT_CONTENT_TYPES)}", name="content_type"),
        CheckConstraint("size_bytes > 0", name="size_positive"),
        CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="sha256_format"),
        CheckConstraint("storage_key ~ '^[0-9a-f]{2}/[0-9a-f]{32}$'", name="storage_key_format"),
        CheckConstraint("kind = 'visit_photo' OR visit_id IS NULL", name="visit_photo_visit"),
        Index("ix_documents_cif", "cif", "uploaded_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    cif: Mapped[str] = mapped_column(
        ForeignKey("customers.cif", onupdate="CASCADE", ondelete="RESTRICT"))
    # a loan's account number or a card's contract number of this customer (none: the customer)
    account_number: Mapped[str | None] = mapped_column(String(32))
    visit_id: Mapped[int | None] = mapped_column(
        ForeignKey("visits.id", ondelete="SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    storage_key: Mapped[str] = mapped_column(String(40), unique=True)
    original_name: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(32))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    uploaded_at: Mapped[datetime]

    uploaded_by = relationship("User", foreign_keys=[uploaded_by_id])


class DocumentDownload(Base):
    """One opening (inline) or download (attachment) of a document."""

    __tablename__ = "document_downloads"
    __table_args__ = (
        CheckConstraint(f"disposition {sql_in(*DOWNLOAD_DISPOSITIONS)}", name="disposition"),
        Index("ix_document_downloads_document", "document_id", "downloaded_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"),
                                                index=True)
    disposition: Mapped[str] = mapped_column(String(10))
    downloaded_at: Mapped[datetime]
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    ip_address: Mapped[str | None] = mapped_column(String(45))

    user = relationship("User", foreign_keys=[user_id])
