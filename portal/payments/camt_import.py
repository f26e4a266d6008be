"""Importing an ISO 20022 camt.053 / camt.054 file (parsed by integrations/payments/camt.py):
every transaction of the file is accounted for, and kept with its outcome.

- **Outcomes.** Each transaction (every ``TxDtls`` of every entry, or an entry without details)
  is *accepted* (stored as a payment by the webhook's own rules,
  portal.payments.notifications.accept, ``source = manual``), a *duplicate* (that payment is
  already stored, from this file, another file or the webhook), *refused* (with its reason;
  also written to the refused-notifications log ops reads) or *skipped* (with its reason:
  a debit, not booked, another currency, …). ``camt_imports`` / ``camt_import_transactions``
  keep the import and each transaction's outcome.
- **The loan is never guessed.** Structured references first — ``RmtInf/Strd/CdtrRefInf/Ref``,
  then ``Refs/EndToEndId``, then ``AcctSvcrRef`` — each matching only when it is exactly a
  known loan account number (after ``CAMT_REFERENCE_TRANSFORM``) or a VietQR payment
  reference naming one (portal.messages.vietqr; its check digits hold); then a payment
  reference in the remittance text; then the unstructured
  remittance, only through ``CAMT_UNSTRUCTURED_PATTERN`` (its ``loan`` group must be a known
  loan). Two different loans at the same level: refused as ambiguous.
- **Control sums.** The file's own figures — ``TxsSummry`` (entries, credits, debits: count and
  sum; the net), the camt.053 balances (opening + credits − debits = closing) — are checked
  against its entries; a file that contradicts itself applies nothing (every transaction it
  would have applied is refused ``control_sum_mismatch``): it may be truncated or altered,
  and the bank must send it again (re-importing the corrected file is safe). An entry whose
  details do not add up to it (``Btch``, the sum of its ``TxDtls``) refuses that entry's
  transactions only.
- **Idempotent.** Importing the same file again stores no payment and no event (each is a
  duplicate by its reference) and writes no second refused-log row for a refusal already
  logged for the same transaction of the same file; the new import row names the first
  (``repeat_of_id``). It is re-run, not skipped, so a refusal whose cause is gone (the loan
  arrived with the next bank sync) is accepted then.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from flask import current_app
from flask_babel import gettext
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from integrations.payments.camt import (
    CamtDocument,
    Entry,
    Report,
    Transaction,
    booking_time,
    parse_camt,
)
from portal import clock
from portal.i18n import format_number
from portal.messages import vietqr
from portal.models import CamtImport, CamtImportTransaction, Loan, Payment
from portal.models.payments import RejectedNotification
from portal.money import format_money
from portal.notifications.messages import N_
from portal.payments.notifications import KEY_MAX, Refused, accept, parse_notice

DEFAULT_UNSTRUCTURED_PATTERN = r"\b(?P<loan>(?:LD|LN|AA)[0-9A-Z]{10})\b"
TRANSFORMS = ("exact", "compact")  # compact: spaces removed, upper case
LOGGED_XML_MAX = 16000

# every reason a transaction can have, in words for the pages (one place)
REASONS = {
    # skipped
    "debit": N_("A debit: money out of the account, not a payment to a loan"),
    "not_booked": N_("Not booked by the bank (pending or for information)"),
    "other_currency": N_("In a currency this import does not take"),
    "reversed_debit": N_("Reversal of a debit: not a payment to a loan"),
    "zero_amount": N_("Amount of zero"),
    # refused by the import
    "no_loan_reference": N_("No reference names a known loan"),
    "ambiguous_loan_reference": N_("References name more than one loan"),
    "missing_amount": N_("The transaction has no amount"),
    "missing_booking_date": N_("The entry has no readable booking date"),
    "no_original_reference": N_("Reversal without the reference of the payment it reverses"),
    "entry_details_mismatch": N_("The entry's transactions do not add up to the entry"),
    "control_sum_mismatch": N_("The file's control sums do not match its entries"),
    # refused by the payment rules (portal.payments.notifications)
    "unknown_loan": N_("No such loan"),
    "invalid_payment_reference": N_("The payment reference's check digits fail (a typo)"),
    "reference_mismatch": N_("The payment reference names another loan"),
    "cif_mismatch": N_("The loan belongs to another customer"),
    "currency_mismatch": N_("The loan is in another currency"),
    "unknown_payment": N_("The payment to reverse is not known"),
    "already_reversed": N_("The payment is already reversed"),
    "not_reversible": N_("The original is not a received payment"),
    "reversal_mismatch": N_("The reversal does not match the payment it reverses"),
    "invalid_amount": N_("The amount is not valid"),
    "invalid_paid_at": N_("The booking date is too old or in the future"),
    "missing_field": N_("A required value is missing"),
    "invalid_field": N_("A value is not valid"),
    "conflict": N_("Conflicts with another payment"),
}
OUTCOME_WORDS = {"accepted": N_("Accepted"), "duplicate": N_("Already received"),
                 "refused": N_("Refused"), "skipped": N_("Skipped")}
MATCHED_BY = {"creditor_reference": N_("Creditor reference"),
              "end_to_end_id": N_("End-to-end id"),
              "account_servicer_reference": N_("Bank reference"),
              "payment_reference": N_("VietQR payment reference"),
              "unstructured": N_("Remittance text"), "original_payment": N_("Original payment")}


def reason_text(code: str | None) -> str:
    """The reason in English: what the refused log and the command line keep."""
    if not code:
        return ""
    return REASONS.get(code, code.replace("_", " ").capitalize())


def reason_words(code: str | None) -> str:
    """The reason in the reader's language (the pages)."""
    if not code:
        return ""
    return gettext(REASONS[code]) if code in REASONS else reason_text(code)


# the control sums' names, as _check stores them (English), in the reader's language when shown
CHECK_NAMES = {name: name for name in (
    N_("number of entries"), N_("number of credit entries"), N_("number of debit entries"),
    N_("sum of entries"), N_("sum of credit entries"), N_("sum of debit entries"),
    N_("net of the entries"), N_("number of transactions (Btch/NbOfTxs)"),
    N_("batch total (Btch/TtlAmt)"), N_("sum of the transactions = entry amount"))}
_BALANCE_CHECK = re.compile(r"^(\w+) \+ credits − debits = CLBD$")
_ENTRY_SCOPE = re.compile(r"^entry (\d+\.\d+)$")
_REPORT_SCOPE = re.compile(r"^report \((\d+)\)$")


def _figure(value: str, count: bool) -> str:
    try:
        number = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return value
    if not number.is_finite():
        return value
    if count:
        return format_number(number, 0)
    return format_number(number, 0 if number == number.to_integral_value() else 2)


def check_words(check: dict) -> dict:
    """A stored control sum for the page: its place, name and figures in the reader's
    language and number format (``scope_data``: the place is the file's own report id)."""
    name, scope = check.get("name") or "", check.get("scope") or ""
    balance = _BALANCE_CHECK.match(name)
    if name in CHECK_NAMES:
        words = gettext(CHECK_NAMES[name])
    elif balance:
        words = gettext("%(opening)s + credits − debits = CLBD", opening=balance.group(1))
    else:
        words = name
    entry, report = _ENTRY_SCOPE.match(scope), _REPORT_SCOPE.match(scope)
    if entry:
        place, data = gettext("entry %(place)s", place=entry.group(1)), False
    elif report:
        place, data = gettext("report %(index)s", index=report.group(1)), False
    else:
        place, data = scope, True
    count = name.startswith("number of")
    return {"scope": place, "scope_data": data, "name": words,
            "expected": _figure(check.get("expected"), count),
            "actual": _figure(check.get("actual"), count), "ok": check.get("ok")}


class SetAside(Exception):
    """A transaction set aside before the payment rules: skipped or refused, with why."""

    def __init__(self, outcome: str, reason: str, message: str | None = None):
        super().__init__(reason)
        self.outcome, self.reason, self.message = outcome, reason, message


@dataclass(frozen=True)
class Settings:
    currencies: frozenset[str]
    transform: str
    pattern: re.Pattern

    @classmethod
    def from_config(cls, config) -> Settings:
        currencies = config.get("CAMT_CURRENCIES") or config.get("BANK_CURRENCY") or "VND"
        transform = config.get("CAMT_REFERENCE_TRANSFORM") or "compact"
        if transform not in TRANSFORMS:
            raise ValueError(f"CAMT_REFERENCE_TRANSFORM must be one of {', '.join(TRANSFORMS)}")
        pattern = re.compile(config.get("CAMT_UNSTRUCTURED_PATTERN")
                             or DEFAULT_UNSTRUCTURED_PATTERN, re.IGNORECASE)
        return cls(frozenset(c.strip().upper() for c in currencies.split(",") if c.strip()),
                   transform, pattern)

    def reference(self, value: str) -> str:
        return value if self.transform == "exact" else "".join(value.split()).upper()

    def unstructured(self, texts: Iterable[str]) -> list[str]:
        found = []
        for text in texts:
            for match in self.pattern.finditer(text):
                value = match.groupdict().get("loan") or match.group(0)
                found.append(self.reference(value))
        return found


# -- checking the file's own figures ----------------------------------------------------------


def _check(checks: list, scope: str, name: str, expected, actual, *, file_level: bool) -> bool:
    ok = expected == actual
    checks.append({"scope": scope, "name": name, "expected": str(expected),
                   "actual": str(actual), "ok": ok, "file": file_level})
    return ok


def _amount(entry: Entry) -> Decimal | None:
    return entry.money.amount if entry.money is not None else None


def _report_checks(report: Report, checks: list) -> None:
    scope = f"{report.id or 'report'} ({report.index})"
    amounts = [_amount(e) for e in report.entries]
    readable = all(a is not None for a in amounts)
    credits = [e for e in report.entries if e.credit is True]
    debits = [e for e in report.entries if e.credit is False]

    def total(entries: list[Entry]) -> Decimal:
        return sum((abs(_amount(e)) for e in entries), Decimal(0))

    for label, figure, entries in (("entries", report.entries_total, report.entries),
                                   ("credit entries", report.credits_total, credits),
                                   ("debit entries", report.debits_total, debits)):
        if figure is None:
            continue
        if figure.count is not None:
            _check(checks, scope, f"number of {label}", figure.count, len(entries),
                   file_level=True)
        if figure.total is not None and readable:
            _check(checks, scope, f"sum of {label}", figure.total, total(entries),
                   file_level=True)
    if report.net_total is not None and report.net_total.total is not None and readable:
        net = total(credits) - total(debits)
        stated = report.net_total.total if report.net_total.net_credit is not False \
            else -report.net_total.total
        _check(checks, scope, "net of the entries", stated, net, file_level=True)
    balances = {b.code: b for b in reversed(report.balances)}  # the first of each code
    opening = balances.get("OPBD") or balances.get("PRCD")
    closing = balances.get("CLBD")
    if opening and closing and opening.signed is not None and closing.signed is not None:
        booked = [e for e in report.entries if e.booked and _amount(e) is not None]
        moved = total([e for e in booked if e.credit]) - total(
            [e for e in booked if e.credit is False])
        _check(checks, scope, f"{opening.code} + credits − debits = CLBD", closing.signed,
               opening.signed + moved, file_level=True)


def _entry_checks(entry: Entry, checks: list) -> bool:
    """The entry's details agree with it (``Btch`` count and total, the sum of its
    ``TxDtls``); checks only what is stated and comparable (same currency)."""
    if not entry.batches and len(entry.transactions) == 1 \
            and entry.transactions[0].money is entry.money:
        return True  # one transaction whose amount is the entry's: nothing to compare
    scope = f"entry {entry.report.index}.{entry.index}"
    ok = True
    stated = [b.count for b in entry.batches if b.count is not None]
    if stated:
        ok &= _check(checks, scope, "number of transactions (Btch/NbOfTxs)", sum(stated),
                     len(entry.transactions), file_level=False)
    moneys = [tx.money for tx in entry.transactions]
    currency = entry.money.currency if entry.money else None
    if all(m is not None and m.amount is not None and m.currency == currency for m in moneys):
        details = sum((m.amount for m in moneys), Decimal(0))
        totals = [b.total for b in entry.batches if b.total is not None]
        if totals and all(t.amount is not None and t.currency == currency for t in totals):
            ok &= _check(checks, scope, "batch total (Btch/TtlAmt)",
                         sum(t.amount for t in totals), details, file_level=False)
        if _amount(entry) is not None:
            ok &= _check(checks, scope, "sum of the transactions = entry amount",
                         _amount(entry), details, file_level=False)
    return ok


# -- one transaction ----------------------------------------------------------------------------


def _payment_reference(document: CamtDocument, tx: Transaction) -> str:
    """The payment's unique reference: the bank's reference of the transaction, else of its
    entry (with the transaction's number when the entry is a batch), else one derived from
    the file's message id and the transaction's place in it (the same on a re-import)."""
    entry = tx.entry
    reference = tx.account_servicer_reference or tx.transaction_id
    if reference is None:
        own = entry.reference or entry.entry_reference
        if own is not None:
            reference = own if len(entry.transactions) == 1 else f"{own}/{tx.index}"
    if reference is None:
        seed = f"{document.message_id}|{entry.report.id}|{tx.position}"
        reference = "CAMT-" + hashlib.sha256(seed.encode()).hexdigest()[:24].upper()
    if len(reference) > KEY_MAX:
        reference = "CAMT-" + hashlib.sha256(reference.encode()).hexdigest()[:32].upper()
    return reference


def _loan_of(settings: Settings, reference: str) -> str:
    """A structured reference as a loan number: the loan a VietQR payment reference names
    (portal.messages.vietqr: its check digits hold), else the reference itself."""
    value = settings.reference(reference)
    return vietqr.account_from_reference(value) or value


def _candidates(tx: Transaction, settings: Settings) -> list[tuple[str, list[str]]]:
    """(how, references) in the order they are trusted: the structured references (each a
    loan number or a VietQR payment reference), then a VietQR payment reference in the
    remittance text (its check digits make it exact), then the configured rule."""
    structured = [
        ("creditor_reference", [_loan_of(settings, r) for r in tx.creditor_references]),
        ("end_to_end_id", [_loan_of(settings, tx.end_to_end_id)] if tx.end_to_end_id else []),
        ("account_servicer_reference",
         [_loan_of(settings, r) for r in (tx.account_servicer_reference,
                                          tx.entry.reference) if r]),
    ]
    in_text = [account for text in tx.unstructured for account in vietqr.references_in(text)]
    return [*structured, ("payment_reference", in_text),
            ("unstructured", settings.unstructured(tx.unstructured))]


def _match_loan(tx: Transaction, settings: Settings, loans: dict[str, str]
                ) -> tuple[str, str]:
    """(account number, how it was matched), or SetAside."""
    for how, references in _candidates(tx, settings):
        known = sorted({r for r in references if r in loans})
        if len(known) > 1:
            raise SetAside("refused", "ambiguous_loan_reference",
                             f"{MATCHED_BY[how]} names loans {', '.join(known)}")
        if known:
            return known[0], how
    raise SetAside("refused", "no_loan_reference",
                     "no creditor reference, end-to-end id, bank reference or remittance "
                     "text names a known loan")


def _known_loans(session: Session, document: CamtDocument, settings: Settings
                 ) -> dict[str, str]:
    """{account number: cif} of every loan a reference of the file could name (one query)."""
    references = {r for tx in document.transactions for _, refs in _candidates(tx, settings)
                  for r in refs if len(r) <= KEY_MAX}
    if not references:
        return {}
    rows = session.execute(select(Loan.account_number, Loan.cif)
                           .where(Loan.account_number.in_(references))).all()
    return {row.account_number: row.cif for row in rows}


def _original(session: Session, tx: Transaction, amount: Decimal):
    """The received payment a reversal undoes: the one with the reversal's end-to-end id as
    its reference or as its own end-to-end id, of the same amount."""
    if tx.end_to_end_id is None:
        raise SetAside("refused", "no_original_reference",
                         "a reversal must carry the end-to-end id of the payment it reverses")
    return session.execute(
        select(Payment.reference_number, Payment.account_number, Payment.cif)
        .where(or_(Payment.reference_number == tx.end_to_end_id,
                   Payment.raw_payload["end_to_end_id"].astext == tx.end_to_end_id),
               Payment.amount == amount, Payment.status.in_(("received", "reversed")),
               Payment.original_reference.is_(None))
        .order_by(Payment.id).limit(1)
    ).first()


def _process(session: Session, document: CamtDocument, tx: Transaction, row,
             settings: Settings, loans: dict[str, str], entry_ok: bool, file_ok: bool):
    """Set the outcome of one transaction on ``row``; may raise SetAside or Refused."""
    entry = tx.entry
    if not entry.booked:
        raise SetAside("skipped", "not_booked", f"entry status {entry.status}")
    if tx.credit is None:
        raise SetAside("skipped", "debit", "neither credit nor debit (no CdtDbtInd)")
    if not tx.credit and not entry.reversal:
        raise SetAside("skipped", "debit")
    if tx.credit and entry.reversal:
        raise SetAside("skipped", "reversed_debit")
    if tx.money is None or tx.money.amount is None:
        raise SetAside("refused", "missing_amount",
                         f"amount {tx.money.text!r} is not a number" if tx.money else None)
    currency = (tx.money.currency or "").upper()
    if currency not in settings.currencies:
        raise SetAside("skipped", "other_currency", f"{currency or 'no currency'}")
    if tx.money.amount == 0:
        raise SetAside("skipped", "zero_amount")
    if not file_ok:
        raise SetAside("refused", "control_sum_mismatch")
    if not entry_ok:
        raise SetAside("refused", "entry_details_mismatch")
    booked = booking_time(entry, clock.bank_zone())
    if booked is None:
        raise SetAside("refused", "missing_booking_date")
    row.booked_at = booked
    record = {
        "type": "payment.reversed" if entry.reversal else "payment.received",
        "reference_number": row.reference, "amount": str(tx.money.amount),
        "currency": currency, "paid_at": booked.isoformat(), "channel": entry.channel,
        "end_to_end_id": tx.end_to_end_id, "camt_message_id": document.message_id,
        "camt_location": tx.position,
    }
    if entry.reversal:
        original = _original(session, tx, tx.money.amount)
        if original is not None:
            row.account_number, row.matched_by = original.account_number, "original_payment"
            record.update(original_reference=original.reference_number,
                          loan_account_number=original.account_number, cif=original.cif)
            if original.reference_number == row.reference:  # the bank reused its reference
                row.reference = record["reference_number"] = \
                    f"{row.reference}/RVSL"[:KEY_MAX]
        else:
            raise SetAside("refused", "unknown_payment",
                           f"no received payment of {tx.money.amount} {currency} with the "
                           f"reference or end-to-end id {tx.end_to_end_id}")
    if "loan_account_number" not in record:
        account, how = _match_loan(tx, settings, loans)
        row.account_number, row.matched_by = account, how
        record.update(loan_account_number=account, cif=loans[account])
    notice = parse_notice({k: v for k, v in record.items() if v is not None},
                          require_event_id=False)
    with session.begin_nested():
        outcome = accept(session, notice, source="manual")
    row.payment_id = outcome.payment_id
    row.outcome = "duplicate" if outcome.duplicate else "accepted"


def _log_refusal(session: Session, document: CamtDocument, tx: Transaction | None, *,
                 code: str, message: str, reference: str | None, filename: str | None,
                 first: dict[tuple, int]) -> int:
    """The refused-notifications row of this refusal: one already written for the same
    transaction of the same file with the same reason (an earlier import), else a new one."""
    key = (tx.position if tx else None, code)
    if key in first:
        return first[key]
    where = f"transaction {tx.position}" if tx else "the file"
    headers = {"Source": f"{document.kind} file", "File": filename or "",
               "Message-Id": document.message_id or "", "Location": where}
    if tx is not None:
        headers.update({"Entry": tx.entry.reference or tx.entry.entry_reference or "",
                        "Report": tx.entry.report.id or ""})
    row = RejectedNotification(
        integration="PAYMENTS", received_at=clock.now(), status_code=422, code=code[:40],
        message=message, field=None, event_id=(document.message_id or "")[:KEY_MAX] or None,
        reference_number=reference, headers={k: v[:500] for k, v in headers.items() if v},
        body=(tx.xml if tx else "")[:LOGGED_XML_MAX] or None,
        body_size=len(tx.xml.encode()) if tx else 0)
    session.add(row)
    session.flush()
    first[key] = row.id
    return row.id


# -- the file -----------------------------------------------------------------------------------


def import_camt(session: Session, data: bytes, *, filename: str | None = None,
                source: str = "cli", user_id: int | None = None,
                config=None) -> CamtImport:
    """Import a camt.053/054 file: every transaction's outcome kept on the returned import
    (added to ``session``, not committed: the caller commits it all at once, so an import is
    stored whole or not at all). Raises ``CamtError`` for a file that cannot be read."""
    document = parse_camt(data)
    settings = Settings.from_config(config if config is not None else current_app.config)
    digest = hashlib.sha256(data).hexdigest()
    first = session.scalar(select(CamtImport).where(CamtImport.sha256 == digest)
                           .order_by(CamtImport.id).limit(1))
    logged = {} if first is None else {
        (r.location, r.reason): r.rejection_id for r in first.rows if r.rejection_id}
    checks: list[dict] = []
    for report in document.reports:
        _report_checks(report, checks)
    file_ok = all(c["ok"] for c in checks)
    entry_ok = {id(entry): _entry_checks(entry, checks) for entry in document.entries}
    result = CamtImport(
        imported_at=clock.now(), source=source, imported_by_id=user_id,
        filename=(filename or "")[:255] or None, sha256=digest, size=len(data),
        kind=document.kind, version=(document.version or "")[:40] or None,
        message_id=(document.message_id or "")[:KEY_MAX] or None,
        repeat_of_id=first.id if first else None, controls_ok=file_ok, checks=checks)
    session.add(result)
    loans = _known_loans(session, document, settings)
    file_refusal = None
    for position, tx in enumerate(document.transactions, start=1):
        entry = tx.entry
        row = CamtImportTransaction(
            position=position, location=tx.position, report_id=_cut(entry.report.id),
            entry_reference=_cut(entry.reference or entry.entry_reference),
            reference=_payment_reference(document, tx), end_to_end_id=_cut(tx.end_to_end_id),
            amount=_storable(tx), currency=_cut(tx.money.currency if tx.money else None, 8),
            credit=tx.credit, reversal=entry.reversal)
        try:
            _process(session, document, tx, row, settings, loans,
                     entry_ok[id(tx.entry)], file_ok)
        except SetAside as aside:
            row.outcome, row.reason, row.message = aside.outcome, aside.reason, aside.message
        except Refused as refusal:
            row.outcome, row.reason, row.message = "refused", refusal.code, refusal.message
        result.rows.append(row)  # in the session once its outcome is known
        if row.outcome != "refused":
            continue
        if row.reason == "control_sum_mismatch":  # one log row for the file
            failed = "; ".join(f"{c['scope']}: {c['name']} states {c['expected']}, "
                               f"the entries give {c['actual']}" for c in checks
                               if c["file"] and not c["ok"])
            row.message = failed
            if file_refusal is None:  # an earlier import's, else a new one
                file_refusal = next((v for (_, reason), v in logged.items()
                                     if reason == row.reason), None) or _log_refusal(
                    session, document, None, code=row.reason, message=failed,
                    reference=result.message_id, filename=filename, first={})
            row.rejection_id = file_refusal
            continue
        row.rejection_id = _log_refusal(
            session, document, tx, code=row.reason,
            message=f"{reason_text(row.reason)}: {row.message}" if row.message
            else reason_text(row.reason), reference=row.reference, filename=filename,
            first=logged)
    _count(result)
    session.flush()
    return result


def _cut(value: str | None, size: int = KEY_MAX) -> str | None:
    return (value or "")[:size] or None


def _storable(tx: Transaction) -> Decimal | None:
    """The amount if it fits the column (Numeric(18, 2)); else None (the row says why)."""
    amount = tx.money.amount if tx.money else None
    if amount is None or abs(amount) >= Decimal("1e16") or amount.as_tuple().exponent < -2:
        return None
    return amount


def _count(result: CamtImport) -> None:
    rows = result.rows
    result.transactions = len(rows)
    result.accepted = sum(r.outcome == "accepted" for r in rows)
    result.duplicates = sum(r.outcome == "duplicate" for r in rows)
    result.refused = sum(r.outcome == "refused" for r in rows)
    result.skipped = sum(r.outcome == "skipped" for r in rows)
    result.accepted_total = sum((r.amount for r in rows if r.outcome == "accepted"
                                 and r.amount is not None), Decimal(0))


def outcome_totals(result: CamtImport) -> list[dict]:
    """Per outcome: how many transactions and their amount per currency (the results page and
    the CLI print the same figures)."""
    totals = []
    for outcome in ("accepted", "duplicate", "refused", "skipped"):
        rows = [r for r in result.rows if r.outcome == outcome]
        sums: dict[str, Decimal] = {}
        for r in rows:
            if r.amount is not None:
                key = r.currency or "?"
                sums[key] = sums.get(key, Decimal(0)) + r.amount
        totals.append({"outcome": outcome, "words": OUTCOME_WORDS[outcome], "count": len(rows),
                       "sums": sums, "amounts": ", ".join(format_money(amount, currency)
                                                          for currency, amount in sums.items())})
    return totals
