"""ISO 20022 camt.054 (bank-to-customer debit/credit notification) — a second way to receive
payment notifications: a file from the bank's cash-management channel, imported through the
same rules as the webhook (portal/payments/camt_import.py), so a payment notified both
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

from datetime import date, datetime
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from portal import clock


class CamtError(ValueError):
    """The file is not a readable camt.054 document."""


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
