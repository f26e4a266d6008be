"""ISO 20022 bank-to-customer cash management files: camt.054 (debit/credit notification),
camt.053 (statement) and camt.052 (account report) — a second way to receive payments: a file
from the bank's cash-management channel, imported through the same rules as the webhook
(portal/payments/camt_import.py), so a payment notified both ways is stored once.

Parsed with defusedxml (no DTD, no entity expansion). Any version: the namespace is read only
to name the version, element names decide. The parser keeps everything the file says and
judges nothing: every ``Ntry`` of every ``Ntfctn`` / ``Stmt`` / ``Rpt``, and every ``TxDtls``
of every ``NtryDtls`` of an entry (a batch entry has several), each as one ``Transaction``;
an entry without ``TxDtls`` is one transaction of its own. The file's own control figures
(``TxsSummry``, ``Bal``, ``Btch``) are kept beside them for the importer to check.

| camt | ``Transaction`` |
|---|---|
| ``TxDtls/Amt``, else ``AmtDtls/TxAmt/Amt``, else (sole ``TxDtls``) ``Ntry/Amt`` | ``money`` |
| ``TxDtls/CdtDbtInd`` (else ``Ntry/CdtDbtInd``) | ``credit`` |
| ``Ntry/RvslInd`` | ``reversal`` |
| ``Ntry/Sts`` (.02–.06) or ``Ntry/Sts/Cd`` (.07+) | ``status`` (``BOOK``, ``PDNG``, ``INFO``) |
| ``Ntry/BookgDt/DtTm`` (else ``BookgDt/Dt``, else ``ValDt``) | ``booked_at`` / ``booked_on`` |
| ``TxDtls/Refs/AcctSvcrRef``, ``EndToEndId``, ``TxId``; ``Ntry/AcctSvcrRef``, ``NtryRef`` | refs |
| every ``RmtInf/Strd/CdtrRefInf/Ref`` and ``RmtInf/Ustrd`` | remittance |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, tzinfo
from decimal import Decimal, InvalidOperation
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

# the document element of each kind and the element of its reports
KINDS = {"BkToCstmrDbtCdtNtfctn": ("camt.054", "Ntfctn"),
         "BkToCstmrStmt": ("camt.053", "Stmt"),
         "BkToCstmrAcctRpt": ("camt.052", "Rpt")}
# a reference that says there is none (ISO 20022 usage rules)
NO_REFERENCE = frozenset({"NOTPROVIDED", "NONREF"})


class CamtError(ValueError):
    """The file is not a readable camt.052/053/054 document."""


@dataclass(frozen=True)
class Money:
    amount: Decimal | None  # None: the text is not a number
    currency: str | None
    text: str = ""


@dataclass(frozen=True)
class Total:
    """A ``TxsSummry`` figure: how many entries and their sum (either may be absent)."""

    count: int | None
    total: Decimal | None
    net_credit: bool | None = None  # TtlNetNtry's CdtDbtInd


@dataclass(frozen=True)
class Balance:
    code: str  # OPBD, PRCD, CLBD, …
    money: Money
    credit: bool
    on: str | None

    @property
    def signed(self) -> Decimal | None:
        if self.money.amount is None:
            return None
        return self.money.amount if self.credit else -self.money.amount


@dataclass
class Transaction:
    entry: Entry
    index: int  # 1-based within its entry
    money: Money | None
    credit: bool | None
    account_servicer_reference: str | None = None
    end_to_end_id: str | None = None
    transaction_id: str | None = None
    creditor_references: list[str] = field(default_factory=list)
    unstructured: list[str] = field(default_factory=list)
    xml: str = ""  # the TxDtls (or the entry) as text, for ops to read a refusal

    @property
    def position(self) -> str:
        """Where it is in the file: report, entry and transaction numbers."""
        return f"{self.entry.report.index}.{self.entry.index}.{self.index}"


@dataclass
class Batch:
    count: int | None
    total: Money | None


@dataclass
class Entry:
    report: Report
    index: int  # 1-based within its report
    money: Money | None
    credit: bool | None
    reversal: bool
    status: str | None
    booked_at: str | None  # BookgDt/DtTm as written
    booked_on: str | None  # BookgDt/Dt, else ValDt/Dt
    reference: str | None  # AcctSvcrRef, else NtryRef
    entry_reference: str | None
    channel: str | None
    batches: list[Batch] = field(default_factory=list)
    transactions: list[Transaction] = field(default_factory=list)

    @property
    def booked(self) -> bool:
        # .02–.06 write the code as text; absent (some statements): a statement books
        return self.status in (None, "BOOK")


@dataclass
class Report:
    index: int
    id: str | None
    account: str | None
    currency: str | None
    entries_total: Total | None = None
    credits_total: Total | None = None
    debits_total: Total | None = None
    net_total: Total | None = None
    balances: list[Balance] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)


@dataclass
class CamtDocument:
    kind: str  # camt.053, camt.054, camt.052
    version: str | None  # from the namespace: camt.054.001.08
    message_id: str | None
    created_at: str | None
    reports: list[Report] = field(default_factory=list)

    @property
    def entries(self) -> list[Entry]:
        return [entry for report in self.reports for entry in report.entries]

    @property
    def transactions(self) -> list[Transaction]:
        return [tx for entry in self.entries for tx in entry.transactions]


# -- reading the tree ---------------------------------------------------------------------------


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


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


def _all(node: Element | None, path: str) -> list[Element]:
    """Every element at ``path`` (each step may repeat)."""
    nodes = [] if node is None else [node]
    for name in path.split("/"):
        nodes = [child for n in nodes for child in _children(n, name)]
    return nodes


def _money(node: Element | None) -> Money | None:
    if node is None:
        return None
    text = (node.text or "").strip()
    try:
        amount = Decimal(text)
        if not amount.is_finite():
            amount = None
    except InvalidOperation:
        amount = None
    return Money(amount, (node.get("Ccy") or "").strip() or None, text)


def _indicator(node: Element | None, path: str = "CdtDbtInd") -> bool | None:
    value = _text(node, path)
    return {"CRDT": True, "DBIT": False}.get(value) if value else None


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdecimal() else None


def _decimal(value: str | None) -> Decimal | None:
    try:
        return Decimal(value) if value is not None else None
    except InvalidOperation:
        return None


def _reference(value: str | None) -> str | None:
    return None if value is None or value.upper() in NO_REFERENCE else value


def _xml(node: Element) -> str:
    """The element as text without namespace prefixes (for people, not for parsing)."""
    def render(n: Element, depth: int) -> str:
        pad = "  " * depth
        attrs = "".join(f' {k}="{v}"' for k, v in n.attrib.items())
        name = _local(n.tag)
        children = [c for c in n if isinstance(c.tag, str)]
        if not children:
            return f"{pad}<{name}{attrs}>{(n.text or '').strip()}</{name}>"
        inner = "\n".join(render(c, depth + 1) for c in children)
        return f"{pad}<{name}{attrs}>\n{inner}\n{pad}</{name}>"
    return render(node, 0)


# -- the document -------------------------------------------------------------------------------


def parse_camt(data: bytes) -> CamtDocument:
    """The document: every report, entry and transaction, and the file's control figures.
    Raises ``CamtError`` for a file that is not XML, has a DTD, or is not camt.052/053/054."""
    try:
        root = fromstring(data, forbid_dtd=True)
    except (DefusedXmlException, SyntaxError, ValueError) as exc:
        raise CamtError(f"not a readable XML document: {exc}") from exc
    namespace = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else ""
    document = root
    if _local(root.tag) == "Document":
        document = next((c for c in root if _local(c.tag) in KINDS), None)
    if document is None or _local(document.tag) not in KINDS:
        raise CamtError("not a camt.052, camt.053 or camt.054 document (no BkToCstmrStmt, "
                        "BkToCstmrDbtCdtNtfctn or BkToCstmrAcctRpt)")
    kind, report_name = KINDS[_local(document.tag)]
    version = namespace.rsplit(":", 1)[-1] if namespace.startswith("urn:iso:") else None
    parsed = CamtDocument(kind=kind, version=version,
                          message_id=_text(document, "GrpHdr/MsgId"),
                          created_at=_text(document, "GrpHdr/CreDtTm"))
    for index, node in enumerate(_children(document, report_name), start=1):
        parsed.reports.append(_report(node, index))
    return parsed


def _total(node: Element | None) -> Total | None:
    if node is None:
        return None
    return Total(_int(_text(node, "NbOfNtries")), _decimal(_text(node, "Sum")),
                 _indicator(node))


def _report(node: Element, index: int) -> Report:
    account = _find(node, "Acct")
    report = Report(
        index=index, id=_text(node, "Id"),
        account=_text(account, "Id/IBAN") or _text(account, "Id/Othr/Id"),
        currency=_text(account, "Ccy"),
    )
    summary = _find(node, "TxsSummry")
    if summary is not None:
        report.entries_total = _total(_find(summary, "TtlNtries"))
        report.credits_total = _total(_find(summary, "TtlCdtNtries"))
        report.debits_total = _total(_find(summary, "TtlDbtNtries"))
        net = _find(summary, "TtlNtries/TtlNetNtry")
        if net is not None:  # .02: TtlNetNtryAmt beside CdtDbtInd in TtlNtries
            report.net_total = Total(None, _decimal(_text(net, "Amt")), _indicator(net))
        elif _find(summary, "TtlNtries/TtlNetNtryAmt") is not None:
            report.net_total = Total(None, _decimal(_text(summary, "TtlNtries/TtlNetNtryAmt")),
                                     _indicator(_find(summary, "TtlNtries")))
    for balance in _children(node, "Bal"):
        code = _text(balance, "Tp/CdOrPrtry/Cd") or _text(balance, "Tp/CdOrPrtry/Prtry")
        money = _money(_find(balance, "Amt"))
        if code and money is not None:
            report.balances.append(Balance(
                code=code, money=money, credit=_indicator(balance) is not False,
                on=_text(balance, "Dt/Dt") or _text(balance, "Dt/DtTm")))
    for n, entry in enumerate(_children(node, "Ntry"), start=1):
        report.entries.append(_entry(report, entry, n))
    return report


def _entry(report: Report, node: Element, index: int) -> Entry:
    entry = Entry(
        report=report, index=index, money=_money(_find(node, "Amt")),
        credit=_indicator(node),
        reversal=(_text(node, "RvslInd") or "").lower() in ("true", "1"),
        status=_text(node, "Sts/Cd") or _text(node, "Sts/Prtry") or _text(node, "Sts"),
        booked_at=_text(node, "BookgDt/DtTm"),
        booked_on=_text(node, "BookgDt/Dt") or _text(node, "ValDt/Dt"),
        reference=_reference(_text(node, "AcctSvcrRef")),
        entry_reference=_reference(_text(node, "NtryRef")),
        channel=_text(node, "BkTxCd/Prtry/Cd") or _text(node, "BkTxCd/Domn/Fmly/SubFmlyCd"),
    )
    if entry.booked_at is None and entry.booked_on is None:
        entry.booked_at = _text(node, "ValDt/DtTm")
    details = _all(node, "NtryDtls/TxDtls")
    for batch in _all(node, "NtryDtls/Btch"):
        entry.batches.append(Batch(_int(_text(batch, "NbOfTxs")), _money(_find(batch, "TtlAmt"))))
    if not details:  # an entry without details is one transaction of its own
        entry.transactions.append(Transaction(
            entry=entry, index=1, money=entry.money, credit=entry.credit,
            account_servicer_reference=entry.reference, xml=_xml(node)))
        return entry
    for n, tx in enumerate(details, start=1):
        money = _money(_find(tx, "Amt")) or _money(_find(tx, "AmtDtls/TxAmt/Amt"))
        if money is None and len(details) == 1:
            money = entry.money  # the entry's only transaction: its amount is the entry's
        credit = _indicator(tx)
        entry.transactions.append(Transaction(
            entry=entry, index=n, money=money,
            credit=entry.credit if credit is None else credit,
            account_servicer_reference=_reference(_text(tx, "Refs/AcctSvcrRef")),
            end_to_end_id=_reference(_text(tx, "Refs/EndToEndId")),
            transaction_id=_reference(_text(tx, "Refs/TxId")),
            creditor_references=[
                (r.text or "").strip() for r in _all(tx, "RmtInf/Strd/CdtrRefInf/Ref")
                if (r.text or "").strip()],
            unstructured=[(u.text or "").strip() for u in _all(tx, "RmtInf/Ustrd")
                          if (u.text or "").strip()],
            xml=_xml(tx)))
    return entry


def booking_time(entry: Entry, zone: tzinfo) -> datetime | None:
    """When the entry was booked: ``BookgDt/DtTm`` (a time without offset is in ``zone``, the
    bank's), else the booking or value date at 00:00 in ``zone``; None when unreadable."""
    try:
        if entry.booked_at:
            at = datetime.fromisoformat(entry.booked_at)
            return at if at.tzinfo else at.replace(tzinfo=zone)
        if entry.booked_on:
            return datetime.combine(date.fromisoformat(entry.booked_on), time.min, tzinfo=zone)
    except ValueError:
        return None
    return None
