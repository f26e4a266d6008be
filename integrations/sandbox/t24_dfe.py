"""Sandbox twin of T24, ``t24-dfe`` profile: the business day of integrations/sandbox/t24_files.py
(the same records, the same day-by-day changes) written as T24 Data Framework extracts — CSV
files of T24 field names with multi-values, the way integrations/t24/mappings/t24-dfe.toml reads
them:

- ``customers`` (CUSTOMER): names, SECTOR (type and segment), LEGAL.ID / LEGAL.DOC.NAME as
  associated multi-values, STREET / ADDRESS (ward and district as sub-values) / TOWN.COUNTRY /
  POST.CODE one value per address, SMS.1 / PHONE.1 / OFF.PHONE / EMAIL.1 one value per number;
- ``collaterals`` (COLLATERAL, @ID ``<customer>.1.<n>``) and ``loan_collaterals`` (the contract
  each one secures, APPLICATION.ID);
- loans as AA arrangements (``aa_arrangements``, balance negative, EFFECTIVE.RATE with a second
  tier, TERM ``<n>M``) with their bills (``aa_bill_details``: a repaid one whose SETTLE.STATUS
  history is ``REPAID``/``UNPAID``, the overdue ones from the loan's DPD and amount due, the next
  one issued) or — about three in ten — as LD contracts (``ld_loans``) with their past-due
  record (``pd_payment_due``: one PAYMENT.DTE.DUE value per overdue date, PAY.TYPE /
  PAY.AMT.OUTS sub-values per type).

The codes are the inverse of the profile's code tables (checked when a writer starts), so the
loader reads back what was written; the manifest's control totals are those of the rows the
mapping derives (the amount due is what the overdue bills add up to).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from integrations.t24.formats import CONTROL_TOTAL_FIELDS, data_file_name
from integrations.t24.manifest import FileEntry
from integrations.t24.mapping import Profile, load_profile

PROFILE = "t24-dfe"
HEADERS = {
    "customers": ("@ID", "MNEMONIC", "SHORT.NAME", "NAME.1", "SECTOR", "GENDER",
                  "DATE.OF.BIRTH", "LEGAL.ID", "LEGAL.DOC.NAME", "CUSTOMER.STATUS",
                  "NATIONALITY", "RESIDENCE", "STREET", "ADDRESS", "TOWN.COUNTRY", "POST.CODE",
                  "COUNTRY", "SMS.1", "PHONE.1", "OFF.PHONE", "EMAIL.1", "LANGUAGE"),
    "collaterals": ("@ID", "COLLATERAL.TYPE", "COLLATERAL.CODE", "DESCRIPTION", "CURRENCY",
                    "COUNTRY", "NOMINAL.VALUE", "EXECUTION.VALUE", "VALUE.DATE", "ADDRESS"),
    "aa_bill_details": ("@ID", "ARRANGEMENT.ID", "PAYMENT.DATE", "BILL.TYPE", "BILL.STATUS",
                        "BILL.ST.CHG.DT", "SETTLE.STATUS", "SET.ST.CHG.DT", "OR.TOTAL.AMOUNT",
                        "OS.TOTAL.AMOUNT", "CURRENCY"),
    "aa_arrangements": ("@ID", "CUSTOMER", "PRODUCT.LINE", "PRODUCT", "CURRENCY", "ARR.STATUS",
                        "START.DATE", "LINKED.APPL", "LINKED.APPL.ID", "AMOUNT", "TERM",
                        "MATURITY.DATE", "EFFECTIVE.RATE", "OPEN.BALANCE"),
    "pd_payment_due": ("@ID", "CUSTOMER", "CURRENCY", "PAYMENT.DTE.DUE", "PAY.TYPE",
                       "PAY.AMT.OUTS", "TOTAL.OVERDUE.AMT"),
    "ld_loans": ("@ID", "CUSTOMER.ID", "CATEGORY", "CURRENCY", "AMOUNT", "VALUE.DATE",
                 "FIN.MAT.DATE", "INTEREST.RATE", "INTEREST.BASIS", "STATUS",
                 "DRAWDOWN.ACCOUNT", "OPEN.BALANCE"),
    "loan_collaterals": ("@ID", "COLLATERAL.CODE", "APPLICATION", "APPLICATION.ID"),
}
# our value -> the code written (the profile's tables must read it back: checked)
STATUS_CODES = {"arr_status": {"OPEN": "CURRENT", "CLOSED": "EXPIRED",
                               "RESTRUCTURED": "RESTRUCTURED", "WRITTEN_OFF": "WRITTEN.OFF"},
                "ld_status": {"OPEN": "CUR", "CLOSED": "LIQ", "RESTRUCTURED": "RES",
                              "WRITTEN_OFF": "WOF"}}
LD_SHARE = 3  # in 10 loans are LD contracts
TOTALS_OF = {"aa_arrangements": "loans", "ld_loans": "loans", "collaterals": "collaterals"}


def _hash(*parts) -> int:
    text = "|".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def _t24_date(value) -> str:
    if not value:
        return ""
    day = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    return f"{day:%Y%m%d}"


def _money(value) -> Decimal:
    return Decimal(str(value or 0))


def is_ld(account_number: str) -> bool:
    return _hash("ld", account_number) % 10 < LD_SHARE


def loan_id(account_number: str) -> str:
    """The loan's T24 id: the account number for an LD contract, AA… for an arrangement."""
    return account_number if is_ld(account_number) else "AA" + account_number[2:]


def collateral_id(record) -> str:
    digits = "".join(ch for ch in record["collateral_number"] if ch.isdigit()) or "0"
    return f"{record['cif']}.1.{int(digits)}"


def _inverse(table: dict) -> dict:
    out: dict = {}
    for code, value in table.items():
        out.setdefault(value, code)
    return out


class DfeWriter:
    """Writes a business date's t24-dfe files (``name.part``, renamed on close), counting,
    hashing and summing as it goes."""

    def __init__(self, directory: Path, business_date: date, profile: Profile | None = None):
        self.profile = profile or load_profile(PROFILE)
        self.business_date = business_date
        self.vm, self.sm = self.profile.value_mark, self.profile.subvalue_mark
        codes = self.profile.code_tables
        for table, ours in STATUS_CODES.items():
            assert all(codes[table][c] == v for v, c in ours.items()), table
        self.sectors = {(codes["sector_type"][c], codes["sector_segment"][c]): c
                        for c in codes["sector_type"]}
        self.customer_status = _inverse(codes["customer_status"])
        self.collateral_types = _inverse(codes["collateral_type"])
        self.aa_products = _inverse(codes["aa_product"])
        self.ld_categories = _inverse(codes["ld_category"])
        self.collateral_ids: dict[str, str] = {}  # collateral number -> its T24 id (links)
        self.files = {}
        for source in self.profile.sources:
            name = data_file_name(source, business_date, "csv", tuple(self.profile.sources))
            tmp = directory / (name + ".part")
            fp = tmp.open("wb")
            buffer = io.StringIO()
            writer = csv.writer(buffer, delimiter=self.profile.dialect.delimiter,
                                quotechar=self.profile.dialect.quote, lineterminator="\n")
            entity = TOTALS_OF.get(source)
            self.files[source] = {
                "name": name, "path": directory / name, "tmp": tmp, "fp": fp, "buffer": buffer,
                "csv": writer, "digest": hashlib.sha256(), "bytes": 0, "records": 0,
                "totals": {f: Decimal(0) for f in CONTROL_TOTAL_FIELDS.get(entity, ())}}
            self._row(source, HEADERS[source], record=False)

    def _row(self, source: str, values, record: bool = True) -> None:
        out = self.files[source]
        out["csv"].writerow(["" if v is None else str(v) for v in values])
        data = out["buffer"].getvalue().encode(self.profile.dialect.encoding)
        out["buffer"].seek(0)
        out["buffer"].truncate()
        out["fp"].write(data)
        out["digest"].update(data)
        out["bytes"] += len(data)
        if record:
            out["records"] += 1

    def _add(self, source: str, **sums) -> None:
        totals = self.files[source]["totals"]
        for name, amount in sums.items():
            totals[name] += amount

    def emit(self, entity: str, record: dict) -> None:
        if entity == "customers":
            self._customer(record)
        elif entity == "collaterals":
            self._collateral(record)
        elif entity == "loans":
            self._loan(record)
        elif entity == "loan_collaterals":
            number = record["collateral_number"]
            self._row("loan_collaterals", (self.collateral_ids.get(number, number), "100",
                                           "LD.LOANS.AND.DEPOSITS" if is_ld(
                                               record["account_number"]) else "AA.ARRANGEMENT",
                                           loan_id(record["account_number"])))
        # reference customers: not in this profile's extract

    # -- records -------------------------------------------------------------------------------
    def _customer(self, r: dict) -> None:
        vm, sm = self.vm, self.sm
        legal = [(r.get(k), doc) for k, doc in (("national_id", "NATIONAL.ID"),
                                                ("registration_number", "BUSINESS.REG"),
                                                ("tax_id", "TAX.ID")) if r.get(k)]
        addresses = r.get("addresses") or []
        phones = r.get("phones") or []

        def numbers(*types):
            return vm.join(p["number"] for p in phones if p["type"] in types)

        name = r.get("company_name") or r["name"] if r["type"] == "ORGANIZATION" else r["name"]
        self._row("customers", (
            r["cif"], f"C{r['cif']}", name[:35], name, self.sectors[(r["type"], r["segment"])],
            r.get("gender") or "", _t24_date(r.get("date_of_birth")),
            vm.join(v for v, _ in legal), vm.join(d for _, d in legal),
            self.customer_status[r["status"]], "VN", "VN",
            vm.join(a["line1"] for a in addresses),
            vm.join(f"{a.get('ward') or ''}{sm}{a.get('district') or ''}" for a in addresses),
            vm.join(a.get("city") or "" for a in addresses),
            vm.join(a.get("postal_code") or "" for a in addresses),
            addresses[0].get("country") if addresses else "",
            numbers("MOBILE"), numbers("HOME"), numbers("WORK", "OTHER"),
            vm.join(e["address"] for e in r.get("emails") or []), "2"))

    def _collateral(self, r: dict) -> None:
        words, lines, line = (r.get("description") or "").split(), [], ""
        for word in words:  # DESCRIPTION: lines of up to 50 characters, one value each
            if line and len(line) + 1 + len(word) > 50:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        if line:
            lines.append(line)
        value = _money(r["value"])
        ident = self.collateral_ids[r["collateral_number"]] = collateral_id(r)
        self._row("collaterals", (
            ident, self.collateral_types[r["type"]], "100", self.vm.join(lines),
            r.get("currency") or "VND", "VN", r["value"], (value * Decimal("0.7")).quantize(1),
            _t24_date(r.get("valuation_date")),
            self.vm.join((r.get("property_address") or "").split(", "))))
        self._add("collaterals", value=value)

    def _overdue(self, r: dict) -> list[tuple[date, Decimal]]:
        """The loan's overdue instalments: (due date, outstanding), oldest first."""
        dpd, due = int(r.get("dpd") or 0), _money(r.get("due_amount"))
        if dpd <= 0 or due <= 0:
            return []
        oldest = self.business_date - timedelta(days=dpd)
        if dpd <= 30:
            return [(oldest, due)]
        later = (due / 2).quantize(Decimal(1))
        return [(oldest, due - later), (oldest + timedelta(days=30), later)]

    def _loan(self, r: dict) -> None:
        account = r["account_number"]
        ident = loan_id(account)
        overdue = self._overdue(r)
        overdue_sum = sum((a for _, a in overdue), Decimal(0))
        outstanding = _money(r["outstanding"])
        if is_ld(account):
            self._row("ld_loans", (
                ident, r["cif"], self.ld_categories[r["product_type"]], r["currency"],
                r["original_amount"], _t24_date(r.get("disbursement_date")),
                _t24_date(r.get("maturity_date")), r.get("interest_rate") or "", "A",
                STATUS_CODES["ld_status"][r["status"]], f"0{account[2:]}", f"-{outstanding}"))
            self._add("ld_loans", original_amount=_money(r["original_amount"]),
                      outstanding=outstanding, due_amount=overdue_sum)
            if overdue:
                parts = [((a * Decimal("0.8")).quantize(Decimal(1)), a) for _, a in overdue]
                self._row("pd_payment_due", (
                    "PD" + ident, r["cif"], r["currency"],
                    self.vm.join(_t24_date(d) for d, _ in overdue),
                    self.vm.join(f"PR{self.sm}IN" for _ in overdue),
                    self.vm.join(f"-{p}{self.sm}-{a - p}" for p, a in parts),
                    f"-{overdue_sum}"))
            return
        rate = r.get("interest_rate")
        self._row("aa_arrangements", (
            ident, r["cif"], "LENDING", self.aa_products[r["product_type"]], r["currency"],
            STATUS_CODES["arr_status"][r["status"]], _t24_date(r.get("disbursement_date")),
            "ACCOUNT", f"0{account[2:]}", r["original_amount"],
            f"{r['term']}M" if r.get("term") is not None else "",
            _t24_date(r.get("maturity_date")),
            f"{rate}{self.vm}{_money(rate) + 2}" if rate else "", f"-{outstanding}"))
        self._add("aa_arrangements", original_amount=_money(r["original_amount"]),
                  outstanding=outstanding, due_amount=overdue_sum)
        vm, day = self.vm, self.business_date
        first_due = overdue[0][0] if overdue else day
        repaid = first_due - timedelta(days=30)  # an instalment paid: history in the marks
        self._bill(ident, r, repaid, _money(r.get("min_pay")) or Decimal(1000), Decimal(0),
                   f"SETTLED{vm}DUE{vm}ISSUED", f"REPAID{vm}UNPAID")
        for due_date, amount in overdue:
            self._bill(ident, r, due_date, amount, amount, f"AGING{vm}DUE{vm}ISSUED", "UNPAID")
        next_date = r.get("next_payment_date")
        min_pay = _money(r.get("min_pay"))
        if next_date and date.fromisoformat(next_date) >= day and min_pay > 0:
            self._bill(ident, r, date.fromisoformat(next_date), min_pay, min_pay, "ISSUED",
                       "UNPAID")

    def _bill(self, ident: str, r: dict, due: date, original: Decimal, outstanding: Decimal,
              status: str, settle: str) -> None:
        changed = self.vm.join(_t24_date(due - timedelta(days=n))
                               for n in range(status.count(self.vm) + 1))
        settled = self.vm.join(_t24_date(due - timedelta(days=n))
                               for n in range(settle.count(self.vm) + 1))
        self._row("aa_bill_details", (
            f"BL{ident[2:]}{due:%Y%m%d}", ident, _t24_date(due), "PAYMENT", status, changed,
            settle, settled, original, outstanding, r["currency"]))

    def close(self) -> list[FileEntry]:
        entries = []
        for source, out in self.files.items():
            out["fp"].close()
            os.replace(out["tmp"], out["path"])
            entries.append(FileEntry(entity=source, name=out["name"], records=out["records"],
                                     sha256=out["digest"].hexdigest(), format="csv",
                                     bytes=out["bytes"], control_totals=dict(out["totals"])))
        return entries

    def discard(self) -> None:
        for out in self.files.values():
            out["fp"].close()
            out["tmp"].unlink(missing_ok=True)
