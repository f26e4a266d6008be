"""Documents: what may be uploaded and how it is kept, the list of a customer's documents,
and the log of every opening or download. Plain functions taking a session; the caller
commits (``commit_or_discard``: the row and its file go together).

A document comes in through ``add_document``: the kind, the account (one of the customer's
loans or cards) and the file are checked, the file is copied into the store while it is
counted and hashed (stopping at ``max_bytes``), its type is read from its first bytes, and
only then is it renamed to its generated key and its row and audit row added.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

from flask import has_request_context, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from portal import audit
from portal.documents import content, storage
from portal.i18n import format_number
from portal.labels import label
from portal.logging import get_correlation_id
from portal.models import Card, Customer, Document, DocumentDownload, Loan, Visit
from portal.models.documents import DOCUMENT_KINDS

KIND_NAMES = {
    "id_document": _l("ID document"),
    "receipt": _l("Receipt"),
    "visit_photo": _l("Visit photo"),
    "legal_notice": _l("Legal notice"),
    "other": _l("Other document"),
}
assert set(KIND_NAMES) == set(DOCUMENT_KINDS)
# what a person picks in the upload form (a visit photo comes from the visit check-in)
UPLOAD_KINDS = tuple(k for k in DOCUMENT_KINDS if k != "visit_photo")
PHOTO_VISIT_STATUSES = ("checked_in", "completed")


class DocumentRefused(ValueError):
    """Field name ("file", "kind", "account", "visit") → message, shown next to the field."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def size_text(size: int) -> str:
    """A file size in the reader's words: "850 B", "12,3 kB", "1,2 MB"."""
    if size < 1024:
        return _("%(n)s B", n=format_number(size))
    if size < 1024 * 1024:
        return _("%(n)s kB", n=format_number(size / 1024, 1))
    return _("%(n)s MB", n=format_number(size / (1024 * 1024), 1))


# --- reading ---------------------------------------------------------------------------------


def account_choices(session: Session, cif: str) -> list[tuple[str, str]]:
    """(account number, words) of the customer's loans and cards, open ones first."""
    loans = session.scalars(select(Loan).where(Loan.cif == cif)
                            .order_by(Loan.status == "CLOSED", Loan.account_number)).all()
    cards = session.scalars(select(Card).where(Card.cif == cif)
                            .order_by(Card.status == "CLOSED", Card.contract_number)).all()
    return ([(ln.account_number, f"{ln.account_number} · {label(ln.product_type)}")
             for ln in loans]
            + [(c.contract_number, f"{c.masked_card_number} · {label('card')}") for c in cards])


@dataclass
class Listed:
    document: Document
    downloads: int


def documents_of(session: Session, cif: str) -> list[Listed]:
    """The customer's documents, latest first, with how often each was opened or downloaded."""
    counts = (select(DocumentDownload.document_id, func.count().label("n"))
              .group_by(DocumentDownload.document_id).subquery())
    rows = session.execute(
        select(Document, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.document_id == Document.id)
        .where(Document.cif == cif)
        .options(selectinload(Document.uploaded_by))
        .order_by(Document.uploaded_at.desc(), Document.id.desc())).all()
    return [Listed(document, downloads) for document, downloads in rows]


# --- adding ----------------------------------------------------------------------------------


def add_document(session: Session, user: Any, *, cif: str, kind: str | None,
                 account_number: str | None, stream: BinaryIO | None, filename: str | None,
                 now: datetime, max_bytes: int, visit: Visit | None = None) -> Document:
    """Check and keep one document; the row (flushed) and its audit row are in the session and
    the file is in place. Refused: ``DocumentRefused`` and nothing kept."""
    errors: dict[str, str] = {}
    if kind not in DOCUMENT_KINDS or (kind == "visit_photo") != (visit is not None):
        errors["kind"] = _("Choose what kind of document this is.")
    account_number = (account_number or "").strip() or None
    if account_number is not None and account_number not in {
            number for number, _words in account_choices(session, cif)}:
        errors["account"] = _("This account is not one of the customer's loans or cards.")
    if visit is not None and (visit.cif != cif or visit.status not in PHOTO_VISIT_STATUSES):
        errors["visit"] = _("Check in at the visit before attaching a photo to it.")
    if stream is None or not (filename or "").strip():
        errors["file"] = _("Choose a file to upload.")
    if errors:
        raise DocumentRefused(errors)

    received = storage.receive(stream, max_bytes, content.HEAD_BYTES)
    try:
        content_type = _check_content(received, filename or "", max_bytes, kind)
        key = storage.new_key()
        storage.place(received, key)
    finally:
        received.drop()  # (nothing left to drop once it is placed)
    try:
        document = Document(
            cif=cif, account_number=account_number, visit_id=visit.id if visit else None,
            kind=kind, storage_key=key, original_name=content.display_name(filename,
                                                                           content_type),
            content_type=content_type, size_bytes=received.size, sha256=received.sha256,
            uploaded_by_id=getattr(user, "id", None), uploaded_at=now)
        session.add(document)
        session.flush()
        audit.record(session, user, "document.upload", "document", document.id, after={
            "cif": cif, "kind": kind, "account_number": account_number,
            "visit_id": document.visit_id, "name": document.original_name,
            "content_type": content_type, "size_bytes": received.size,
            "sha256": received.sha256})
    except BaseException:
        storage.discard(key)
        raise
    return document


def _check_content(received: storage.Received, filename: str, max_bytes: int,
                   kind: str) -> str:
    shown = content.base_name(filename) or _("the file")
    if received.too_large:
        raise DocumentRefused({"file": _(
            "The file is larger than %(limit)s, the most a document may be: it is refused. "
            "Send a smaller scan or photo.", limit=size_text(max_bytes))})
    if received.size == 0:
        raise DocumentRefused({"file": _("The file is empty: nothing was uploaded.")})
    content_type = content.sniff(received.head)
    if content_type is None:
        what = content.what_it_is(received.head)
        if what is not None:
            message = _("“%(name)s” is %(what)s, not %(allowed)s: it is refused whatever its "
                        "name says.", name=shown, what=what,
                        allowed=content.ALLOWED_WORDS)
        else:
            message = _("“%(name)s” is not %(allowed)s (read from its content, whatever its "
                        "name says): it is refused.", name=shown,
                        allowed=content.ALLOWED_WORDS)
        raise DocumentRefused({"file": message})
    if kind == "visit_photo" and content_type not in content.IMAGE_TYPES:
        raise DocumentRefused({"file": _(
            "A visit photo must be a photo (JPEG, PNG, WebP or HEIC).")})
    return content_type


def commit_or_discard(session: Session, document: Document) -> None:
    """Commit the document's row; if that fails, its file goes too (then the error is raised)."""
    try:
        session.commit()
    except BaseException:
        session.rollback()
        storage.discard(document.storage_key)
        raise


# --- opening and downloading ------------------------------------------------------------------


def record_download(session: Session, user: Any, document: Document, disposition: str,
                    now: datetime) -> DocumentDownload:
    """Log that ``user`` opened (inline) or downloaded (attachment) ``document``."""
    row = DocumentDownload(document_id=document.id, user_id=getattr(user, "id", None),
                           disposition=disposition, downloaded_at=now,
                           correlation_id=(get_correlation_id() or "")[:64] or None)
    if has_request_context():
        row.ip_address = (request.remote_addr or "")[:45] or None
    session.add(row)
    return row


def downloads_of(session: Session, document_ids: Iterable[int]) -> list[DocumentDownload]:
    ids = list(document_ids)
    if not ids:
        return []
    return list(session.scalars(select(DocumentDownload).where(
        DocumentDownload.document_id.in_(ids)).order_by(DocumentDownload.id)))


def customer_exists(session: Session, cif: str) -> bool:
    return session.scalar(select(Customer.id).where(Customer.cif == cif)) is not None


# --- the truth (flask check invariants) ------------------------------------------------------


def violations(session: Session, now: datetime) -> list[dict]:
    """Documents whose file is missing from the store or has another size than the row says,
    and visit photos of a visit of another customer. (The sha256 is not recomputed here: a
    nightly read of every file would cost more than it tells; the size and presence catch a
    file lost, cut short or replaced by another.)"""
    found = []
    rows = session.execute(select(Document.id, Document.cif, Document.storage_key,
                                  Document.size_bytes).order_by(Document.id))
    for document_id, cif, key, size in rows:
        stored = storage.file_size(key)
        if stored != size:
            found.append({"document_id": document_id, "cif": cif, "expected_size": size,
                          "stored_size": stored})
    found += [dict(row._mapping) for row in session.execute(
        select(Document.id.label("document_id"), Document.cif,
               Visit.cif.label("visit_cif"))
        .join(Visit, Visit.id == Document.visit_id).where(Visit.cif != Document.cif)
        .order_by(Document.id))]
    return found
