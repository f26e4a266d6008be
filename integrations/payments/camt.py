"""ISO 20022 camt.054 (bank-to-customer debit/credit notification) — a second way to receive
payment notifications: a file from the bank's cash-management channel, imported through the
same rules as the webhook (portal.payments.notifications.accept), so a payment notified both
ways is stored once.

Parsed with defusedxml (no DTD, no entity expansion); any camt.054 version (the namespace is not
checked, element names are). Each booked entry (``Sts`` ``BOOK``; in .001.08+ ``Sts/Cd``) gives
one notification:

| camt.054 | notification |
|---|---|
| ``Ntry/NtryDtls/TxDtls/Refs/AcctSvcrRef`` (else ``Ntry/AcctSvcrRef``) | ``reference_number`` |
| ``CdtDbtInd`` ``CRDT`` | ``payment.received`` |
| ``RvslInd`` ``true`` | ``payment.reversed``, ``original_reference`` = ``TxDtls/Refs/EndToEndId`` |
| ``TxDtls/Amt`` (else ``Ntry/Amt``), its ``Ccy`` | ``amount``, ``currency`` |
| ``BookgDt/DtTm`` (else ``BookgDt/Dt`` at 00:00 bank time) | ``paid_at`` |
| ``RmtInf/Strd/CdtrRefInf/Ref`` (else ``RmtInf/Ustrd``'s first word) | ``loan_account_number`` |
| ``BkTxCd/Prtry/Cd`` | ``channel`` |

The customer (``cif``) is the loan's: camt carries none. Debits that are not reversals and entries
not booked are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.models import Loan
from portal.payments.notifications import Refused, accept, parse_notice


class CamtError(ValueError):
    """The file is not a readable camt.054 document."""


@dataclass
class CamtImport:
    message_id: str | None = None
    entries: int = 0
    accepted: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    skipped: int = 0
    refused: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"message_id": self.message_id, "entries": self.entries,
                "accepted": len(self.accepted), "duplicates": len(self.duplicates),
                "skipped": self.skipped, "refused": self.refused}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(node: Element | None, path: str) -> Element | None:
    """``path`` of local names (``"Refs/AcctSvcrRef"``), whatever the namespace."""
    for name in path.split("/"):
        if node is None:
            return None
        node = next((child for child in node if _local(child.tag) == name), None)
    return node


def _text(node: Element | None, path: str) -> str | None:
    found = _find(node, path)
    text = (found.text or "").strip() if found is not None else ""
    return text or None


def _children(node: Element | None, name: str) -> list[Element]:
    return [] if node is None else [c for c in node if _local(c.tag) == name]


def parse_camt054(data: bytes) -> tuple[str | None, list[dict]]:
    """(message id, one notification dict per booked credit or reversal)."""
    try:
        root = fromstring(data, forbid_dtd=True)
    except (DefusedXmlException, SyntaxError, ValueError) as exc:
        raise CamtError(f"not a readable XML document: {exc}") from exc
    document = _find(root, "BkToCstmrDbtCdtNtfctn") if _local(root.tag) == "Document" \
        else root if _local(root.tag) == "BkToCstmrDbtCdtNtfctn" else None
    if document is None:
        raise CamtError("not a camt.054 document (no BkToCstmrDbtCdtNtfctn)")
    message_id = _text(document, "GrpHdr/MsgId")
    notices = []
    for notification in _children(document, "Ntfctn"):
        for entry in _children(notification, "Ntry"):
            notices.append(_entry(entry))
    return message_id, notices


def _entry(entry: Element) -> dict:
    details = _find(entry, "NtryDtls/TxDtls")
    status = _text(entry, "Sts/Cd") or _text(entry, "Sts")
    reversal = (_text(entry, "RvslInd") or "").lower() == "true"
    credit = _text(entry, "CdtDbtInd") == "CRDT"
    amount_node = _find(details, "Amt") if _find(details, "Amt") is not None \
        else _find(entry, "Amt")
    booked_at = _text(entry, "BookgDt/DtTm")
    if booked_at is None and _text(entry, "BookgDt/Dt"):
        day = date.fromisoformat(_text(entry, "BookgDt/Dt"))
        booked_at = clock.bank_datetime(day, datetime.min.time()).isoformat()
    account = _text(details, "RmtInf/Strd/CdtrRefInf/Ref")
    if account is None and _text(details, "RmtInf/Ustrd"):
        account = _text(details, "RmtInf/Ustrd").split()[0]
    return {
        "_booked": status in (None, "BOOK"), "_relevant": credit or reversal,
        "type": "payment.reversed" if reversal else "payment.received",
        "reference_number": _text(details, "Refs/AcctSvcrRef") or _text(entry, "AcctSvcrRef"),
        "original_reference": _text(details, "Refs/EndToEndId") if reversal else None,
        "loan_account_number": account,
        "amount": (amount_node.text or "").strip() if amount_node is not None else None,
        "currency": amount_node.get("Ccy") if amount_node is not None else None,
        "paid_at": booked_at,
        "channel": _text(entry, "BkTxCd/Prtry/Cd"),
    }


def import_camt054(session: Session, data: bytes) -> CamtImport:
    """Import a camt.054 file: each booked entry accepted once (``source = manual``), each
    refused one listed with its reason. Commits per entry."""
    message_id, entries = parse_camt054(data)
    result = CamtImport(message_id=message_id, entries=len(entries))
    for index, raw in enumerate(entries, start=1):
        if not raw.pop("_booked") or not raw.pop("_relevant"):
            result.skipped += 1
            continue
        record = {k: v for k, v in raw.items() if v is not None}
        if record.get("loan_account_number"):  # camt carries no CIF: the loan's customer
            record["cif"] = session.scalar(select(Loan.cif).where(
                Loan.account_number == record["loan_account_number"])) or "?"
        try:
            notice = parse_notice(record, require_event_id=False)
            outcome = accept(session, notice, source="manual")
        except Refused as refusal:
            session.rollback()
            result.refused.append({"entry": index, "reference": record.get("reference_number"),
                                   "code": refusal.code, "field": refusal.field,
                                   "message": refusal.message})
            continue
        session.commit()
        (result.duplicates if outcome.duplicate else result.accepted).append(outcome.payment_id)
    return result
