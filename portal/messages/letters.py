"""Letters: a queued letter message as an A4 PDF (WeasyPrint), and the daily print batch for
the print vendor.

- **The letter** (``letter_html`` / ``letter_pdf``): the bank's letterhead, the date, the
  customer's name and postal address, the subject and body (rendered when the message was
  queued; rendered here from its template when it was not), the amounts due of the account, and
  the account's VietQR code when the template asks for it (``include_vietqr``), in the message's
  language. The text is set in DejaVu Sans vendored under static/vendor/fonts and named by
  ``@font-face`` (a family name no system font has), so Vietnamese diacritics never depend on
  the fonts of the machine that prints.
- **The print batch** (``build_print_batch``): every queued letter of the business date (and
  any left over from earlier dates) in one batch under ``<print root>/<date>/<batch id>/``: one
  PDF per letter, one combined PDF, ``manifest.json`` and ``manifest.csv`` (counts, pages,
  sha256 of every file). Its letters are 'sent'; a letter that cannot be rendered (no postal
  address) is 'failed' with why. Building a date again returns its batch and writes nothing.
- **Handing over** (``hand_over``): ops gives the batch to the vendor; its letters are then
  'delivered'. Both are audited.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from flask import current_app, has_request_context, render_template
from flask_babel import force_locale
from markupsafe import Markup, escape
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from portal import audit, clock
from portal.messages import vietqr
from portal.messages.rendering import render, template_variables
from portal.models import Address, Customer, Loan, Message
from portal.models.print_batches import PrintBatch, PrintBatchLetter
from portal.money import format_money

ROOT = Path(__file__).resolve().parents[2]
STYLESHEET = ROOT / "static" / "css" / "letter.css"  # fonts by url() relative to it
LETTER_TEMPLATE = "letters/letter.html"


class LetterError(Exception):
    """A letter that cannot be printed; ``code`` is stable (no_address, no_body)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


# -- the letter ---------------------------------------------------------------------------------


@contextmanager
def speaking(language: str) -> Iterator[None]:
    """Render in ``language`` (numbers, dates, words), inside a request or outside one (a
    worker, the CLI: a request context is made so the page's helpers work)."""
    language = language if language in ("vi", "en") else "vi"
    if has_request_context():
        with force_locale(language):
            yield
        return
    with current_app.test_request_context(), force_locale(language):
        yield


def _address(session: Session, message: Message) -> Address | None:
    if message.address_id is not None:
        found = session.get(Address, message.address_id)
        if found is not None:
            return found
    return session.scalar(select(Address).where(Address.cif == message.cif)
                          .order_by(Address.is_primary.desc(), Address.id).limit(1))


def address_lines(address: Address | None, fallback: str | None = None) -> list[str]:
    if address is None:
        return [line.strip() for line in (fallback or "").split("\n") if line.strip()]
    parts = [address.line1, address.line2, ", ".join(
        p for p in (address.ward, address.district) if p), ", ".join(
        p for p in (address.city or address.province, address.postal_code) if p)]
    return [p for p in parts if p]


def paragraphs(text: str) -> Markup:
    """Plain text as HTML paragraphs: a blank line starts a paragraph, a newline breaks a line;
    everything escaped."""
    blocks = [b.strip() for b in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if b.strip()]
    return Markup("").join(
        Markup("<p>{}</p>").format(Markup("<br>").join(escape(line) for line in b.split("\n")))
        for b in blocks)


@dataclass
class Letter:
    """What a letter says, before it is laid out."""

    message: Message
    customer: Customer | None
    address: list[str]
    subject: str | None
    body: str
    loans: list[Loan]
    code: vietqr.PayCode | None
    letter_date: date


def compose(session: Session, message: Message, letter_date: date | None = None) -> Letter:
    """The content of the letter of ``message``; LetterError when it cannot be sent by post."""
    customer = session.scalar(select(Customer).where(Customer.cif == message.cif))
    address = address_lines(_address(session, message), message.recipient)
    if not address:
        raise LetterError("no_address", "the customer has no postal address")
    template = message.template if message.template_id is not None else None
    subject, body = message.subject, message.body
    if not (body or "").strip():
        if template is None:
            raise LetterError("no_body", "the letter has no text and no template")
        subject, body = render(template, template_variables(
            session, message.cif, message.account_number, message.language), message.language)
    query = select(Loan).where(Loan.cif == message.cif, Loan.due_amount > 0)
    if message.account_number:
        query = select(Loan).where(Loan.account_number == message.account_number)
    loans = list(session.scalars(query.order_by(Loan.account_number)))
    code = None
    if template is not None and template.include_vietqr and message.account_number:
        loan = next((loan for loan in loans if loan.account_number == message.account_number),
                    None)
        if loan is not None and loan.currency == "VND":  # VietQR pays dong only
            code = vietqr.pay_code(message.account_number, loan.due_amount)
    return Letter(message=message, customer=customer, address=address, subject=subject,
                  body=body, loans=loans, code=code,
                  letter_date=letter_date or message.business_date or clock.bank_today())


def letter_html(session: Session, message: Message, letter_date: date | None = None) -> str:
    """The letter of ``message`` as the HTML WeasyPrint lays out, in the message's language."""
    letter = compose(session, message, letter_date)
    with speaking(message.language):
        return render_template(LETTER_TEMPLATE, letter=letter, body=paragraphs(letter.body),
                               stylesheet=STYLESHEET.as_uri(), config=current_app.config,
                               language=message.language, format_money=format_money,
                               total_due=total_due)


def _document(html: str):
    from weasyprint import HTML  # imported on use: it loads pango at import time

    return HTML(string=html, base_url=str(ROOT)).render()


def letter_pdf(session: Session, message: Message, letter_date: date | None = None) -> bytes:
    """The letter of ``message`` as an A4 PDF."""
    return _document(letter_html(session, message, letter_date)).write_pdf()


# -- the print batch ----------------------------------------------------------------------------


def print_root() -> Path:
    configured = current_app.config.get("PRINT_BATCH_DIR")
    return Path(configured) if configured else Path(current_app.instance_path) / "print"


def batch_dir(batch: PrintBatch) -> Path:
    return print_root() / batch.directory


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def combined_name(batch: PrintBatch) -> str:
    return f"batch-{batch.business_date.isoformat()}-{batch.id}.pdf"


def build_print_batch(session: Session, business_date: date, *, actor=None) -> PrintBatch:
    """The print batch of ``business_date``: built now from the queued letters of that date and
    before, or the one built before (nothing written again). No commit (the caller commits;
    a second builder of the same date waits on the unique date and then finds this one)."""
    directory = business_date.isoformat()
    batch_id = session.execute(
        insert(PrintBatch).values(business_date=business_date, directory=directory,
                                  created_by_id=getattr(actor, "id", None))
        .on_conflict_do_nothing(index_elements=["business_date"]).returning(PrintBatch.id)
    ).scalar()
    if batch_id is None:
        return session.scalar(select(PrintBatch).where(PrintBatch.business_date == business_date))
    batch = session.get(PrintBatch, batch_id)
    batch.directory = f"{directory}/{batch.id}"
    out = batch_dir(batch)
    out.mkdir(parents=True, exist_ok=True)

    queued = list(session.scalars(
        select(Message).where(Message.channel == "letter", Message.status == "queued",
                              Message.business_date <= business_date)
        .order_by(Message.business_date, Message.cif, Message.id)
        .with_for_update(skip_locked=True)))
    now = clock.now()
    documents, rows, failed = [], [], 0
    for message in queued:
        try:
            document = _document(letter_html(session, message, business_date))
        except LetterError as exc:
            message.status, message.failed_at = "failed", now
            message.status_detail = f"{exc.code}: {exc}"[:500]
            failed += 1
            continue
        position = len(rows) + 1
        data = document.write_pdf()
        filename = f"{position:04d}-{message.id}.pdf"
        (out / filename).write_bytes(data)
        documents.append(document)
        row = PrintBatchLetter(batch_id=batch.id, message_id=message.id, position=position,
                               filename=filename, pages=len(document.pages),
                               sha256=_sha256(data))
        session.add(row)
        rows.append((row, message))
        message.status, message.sent_at = "sent", now
        message.provider_id = f"PB{batch.id}-{position:04d}"
        if message.template is not None and message.template.include_vietqr \
                and message.account_number:
            message.payment_reference = vietqr.payment_reference(message.account_number)
        message.attempts = (message.attempts or 0) + 1

    batch.letters, batch.pages = len(rows), sum(row.pages for row, _ in rows)
    combined = None
    if documents:
        pages = [page for document in documents for page in document.pages]
        combined = documents[0].copy(pages).write_pdf()
        (out / combined_name(batch)).write_bytes(combined)
        batch.combined_sha256 = _sha256(combined)
    manifest = {
        "batch": batch.id, "business_date": business_date.isoformat(),
        "built_at": now.isoformat(timespec="seconds"), "letters": batch.letters,
        "pages": batch.pages, "failed": failed,
        "combined": {"file": combined_name(batch), "sha256": batch.combined_sha256,
                     "pages": batch.pages} if combined else None,
        "items": [{"position": row.position, "message_id": message.id, "cif": message.cif,
                   "account_number": message.account_number, "file": row.filename,
                   "pages": row.pages, "sha256": row.sha256} for row, message in rows],
    }
    manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=1).encode()
    (out / "manifest.json").write_bytes(manifest_bytes)
    batch.manifest_sha256 = _sha256(manifest_bytes)
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["position", "message_id", "cif", "account_number", "file", "pages",
                     "sha256"])
    for row, message in rows:
        writer.writerow([row.position, message.id, message.cif, message.account_number or "",
                         row.filename, row.pages, row.sha256])
    (out / "manifest.csv").write_text(table.getvalue(), encoding="utf-8")
    audit.record(session, actor, "print_batch.build", "print_batch", batch.id,
                 after={"business_date": business_date.isoformat(), "letters": batch.letters,
                        "pages": batch.pages, "failed": failed})
    session.flush()
    return batch


def hand_over(session: Session, batch: PrintBatch, *, actor=None) -> bool:
    """Ops gave ``batch`` to the print vendor: it is 'handed_over' and its letters
    'delivered'. False (nothing changed) when it was already. No commit."""
    if batch.status == "handed_over":
        return False
    now = clock.now()
    batch.status, batch.handed_over_at = "handed_over", now
    batch.handed_over_by_id = getattr(actor, "id", None)
    ids = select(PrintBatchLetter.message_id).where(PrintBatchLetter.batch_id == batch.id)
    for message in session.scalars(select(Message).where(Message.id.in_(ids),
                                                         Message.status == "sent")):
        message.status, message.delivered_at = "delivered", now
    audit.record(session, actor, "print_batch.hand_over", "print_batch", batch.id,
                 before={"status": "built"}, after={"status": "handed_over"})
    session.flush()
    return True


def batches(session: Session, limit: int = 60) -> list[PrintBatch]:
    return list(session.scalars(select(PrintBatch).order_by(PrintBatch.business_date.desc())
                                .limit(limit)))


def queued_letters(session: Session, business_date: date) -> int:
    """Letters waiting for the batch of ``business_date``."""
    return session.scalar(select(func.count()).select_from(Message).where(
        Message.channel == "letter", Message.status == "queued",
        Message.business_date <= business_date)) or 0


def total_due(loans: list[Loan]) -> Decimal:
    return sum((loan.due_amount for loan in loans), Decimal(0))


def violations(session: Session, now=None) -> list[dict]:
    """Print batches that break their truths (``flask check invariants``): a batch whose
    letters or pages are not its letters' rows; a letter of a batch that is neither sent nor
    delivered, or delivered before its batch was handed over, or still only sent after; a
    letter marked sent or delivered that is in no batch."""
    return [dict(r._mapping) for r in session.execute(text("""
        SELECT b.id AS batch_id, NULL::bigint AS message_id, 'counts' AS problem
        FROM print_batches b LEFT JOIN print_batch_letters l ON l.batch_id = b.id
        GROUP BY b.id
        HAVING b.letters <> count(l.id) OR b.pages <> coalesce(sum(l.pages), 0)
        UNION ALL
        SELECT b.id, m.id, 'letter is ' || m.status || ' in a ' || b.status || ' batch'
        FROM print_batches b JOIN print_batch_letters l ON l.batch_id = b.id
        JOIN messages m ON m.id = l.message_id
        WHERE NOT ((b.status = 'built' AND m.status = 'sent')
                   OR (b.status = 'handed_over' AND m.status = 'delivered'))
        UNION ALL
        SELECT NULL, m.id, 'letter ' || m.status || ' without a print batch'
        FROM messages m
        WHERE m.channel = 'letter' AND m.status IN ('sent', 'delivered')
          AND NOT EXISTS (SELECT 1 FROM print_batch_letters l WHERE l.message_id = m.id)
        ORDER BY 1 NULLS LAST, 2 NULLS FIRST""")).all()]
