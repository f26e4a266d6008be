"""Finding customers: by CIF, name (accents ignored), phone number, or loan / card number.

One rule for every search box (the agent's queue filter, the customer search page): the
``matching_cifs`` of a query are the union of what each kind of key finds, each branch read from
its own index (trigram GIN indexes for "contains" on folded names, CIF prefixes and phone digits;
unique indexes for account and contract numbers), so a search stays an index lookup on a bank's
500k customers instead of a scan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import func, or_, select, union
from sqlalchemy.orm import Session, joinedload

from portal.models import Card, Case, Customer, Loan, Phone

PAGE_SIZE = 25
MIN_CONTAINS = 3  # trigram indexes need three characters; shorter text matches exactly only
MIN_PHONE_DIGITS = 6  # fewer digits ("0912") match a good part of the bank: refine instead
COUNT_CAP = 1000  # beyond this a search says "1,000+ matches": counting more is wasted work

_VIET = "àáạảãâầấậẩẫăằắặẳẵèéẹẻẽêềếệểễìíịỉĩòóọỏõôồốộổỗơờớợởỡùúụủũưừứựửữỳýỵỷỹđ"
_PLAIN = "aaaaaaaaaaaaaaaaaeeeeeeeeeeeiiiiiooooooooooooooooouuuuuuuuuuuyyyyyd"


def fold(text: str) -> str:
    """Lower case without Vietnamese accents: "Nguyễn Văn Đức" → "nguyen van duc"."""
    return text.lower().translate(str.maketrans(_VIET, _PLAIN))


def folded(column):
    """SQL twin of ``fold``: the IMMUTABLE ``crm_fold`` function the name index is built on
    (migrations/versions/0006_workspace_search.py)."""
    return func.crm_fold(column)


def phone_digits(q: str) -> str | None:
    """The digits of ``q`` when it looks like a phone number (6+ digits, little else)."""
    digits = "".join(c for c in q if c.isdigit())
    compact = q.replace(" ", "").replace("+", "")
    if len(digits) >= MIN_PHONE_DIGITS and len(digits) >= len(compact) - 1:
        return digits
    return None


def matching_cifs(q: str):
    """A SELECT of the CIFs whose customer matches ``q`` (one ``cif`` column, no duplicates)."""
    q = q.strip()
    upper = q.upper()
    branches = [
        select(Customer.cif).where(Customer.cif == upper),
        select(Loan.cif).where(Loan.account_number == upper),
        select(Card.cif).where(Card.contract_number == upper),
    ]
    name = fold(q)
    if len(name) >= MIN_CONTAINS:
        branches.append(select(Customer.cif).where(folded(Customer.name).contains(
            name, autoescape=True)))
        branches.append(select(Customer.cif).where(Customer.cif.startswith(
            upper, autoescape=True)))
    else:
        branches.append(select(Customer.cif).where(folded(Customer.name) == name))
    digits = phone_digits(q)
    if digits:
        tail = digits.lstrip("0") or digits
        branches.append(select(Phone.cif).where(
            Phone.cif.is_not(None),
            or_(Phone.number.contains(digits), Phone.number_e164.contains(tail))))
    return union(*branches)


@dataclass
class SearchRow:
    customer: Customer
    case: Case | None

    @property
    def cif(self) -> str:
        return self.customer.cif

    @property
    def name(self) -> str:
        return self.customer.name


@dataclass
class SearchPage:
    rows: list[SearchRow]
    total: int  # at most cap + 1 (see ``capped``)
    page: int
    per_page: int
    cap: int = COUNT_CAP

    @property
    def capped(self) -> bool:
        return self.total > self.cap

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))


def customer_search(session: Session, q: str, *, bucket_condition=None, status: str | None = None,
                    page: int = 1, per_page: int = PAGE_SIZE, case_scope=None) -> SearchPage:
    """Customers matching ``q`` — with or without a collection case — most urgent case first,
    then by name. ``bucket_condition`` / ``status`` narrow to customers whose case matches;
    ``case_scope`` (``permissions.case_scope``) leaves out the cases of other teams."""
    cifs = matching_cifs(q).subquery()
    stmt = (
        select(Customer, Case)
        .join(cifs, cifs.c.cif == Customer.cif)
        .outerjoin(Case, Case.cif == Customer.cif)
    )
    if bucket_condition is not None:
        stmt = stmt.where(bucket_condition)
    if case_scope is not None:  # a customer without a case matches it (NULL assignees)
        stmt = stmt.where(case_scope)
    if status:
        stmt = stmt.where(Case.status == status)
    cap = COUNT_CAP
    total = session.scalar(select(func.count()).select_from(
        stmt.with_only_columns(Customer.id).limit(cap + 1).subquery()))
    page = min(max(1, page), max(1, math.ceil(total / per_page)))
    found = session.execute(
        stmt.options(joinedload(Case.assigned_agent))
        .order_by(Case.priority.desc().nulls_last(), Customer.name, Customer.cif)
        .offset((page - 1) * per_page).limit(per_page)
    ).all()
    return SearchPage([SearchRow(c, case) for c, case in found], total, page, per_page, cap)
