"""Placing a case with the legal team or an external collection agency, recalling it, the
agency's placement file, and what each agency collected.

Definitions (one each):

- **amount placed**: the case's total outstanding (``cases.total_outstanding``, the sum over
  its customer's products still in collection, ``cases.queue.collectible_products``) at the
  moment it is placed; stored on the placement, it does not move afterwards.
- **while placed**: from ``placed_at`` (included) until ``ended_at`` (excluded; open while
  active).
- **collected**: the sum of the customer's payments with status ``received`` paid while the
  case was placed (``collected_sql``). A reversed payment no longer counts.
- **in the agents' queues**: a case with an active placement is in nobody's work queue and
  Next case never hands it out (``cases.queue.NOT_PLACED``); recalled or returned, it is back.

Every change is audited (``portal.audit``) with the request's correlation id.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.orm import Session

from portal import audit, clock
from portal.cases import queue
from portal.models import Address, Card, Case, Customer, Loan, Payment, Phone, User
from portal.models.placements import AGENCY_KINDS, Agency, Placement
from portal.permissions import scopes

REASON_MAX = 500
NAME_MAX = 120
CONTACT_MAX = 200
CODE_FORMAT = re.compile(r"^[A-Z0-9_-]{2,20}$")
END_OUTCOMES = ("recalled", "returned")


class PlacementError(ValueError):
    """Field name → message (shown next to the field); ``status``: the HTTP status to answer
    (422 a field's value, 409 the case's state, 403 another team's case)."""

    def __init__(self, errors: dict[str, str], status: int = 422):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors
        self.status = status


# --- reading ---------------------------------------------------------------------------------


def agencies(session: Session, active_only: bool = False) -> list[Agency]:
    stmt = select(Agency).order_by(Agency.kind.desc(), Agency.name)  # the legal team first
    if active_only:
        stmt = stmt.where(Agency.active.is_(True))
    return list(session.scalars(stmt))


def active_placement(session: Session, case_id: int, lock: bool = False) -> Placement | None:
    stmt = select(Placement).where(Placement.case_id == case_id, Placement.status == "active")
    if lock:
        stmt = stmt.with_for_update(of=Placement)
    return session.scalar(stmt)


def history(session: Session, case_id: int) -> list[Placement]:
    """The case's placements, the latest first."""
    return list(session.scalars(select(Placement).where(Placement.case_id == case_id)
                                .order_by(Placement.placed_at.desc(), Placement.id.desc())))


def while_placed(payment=Payment, placement=Placement):
    """THE window: a payment counts for a placement when it was paid while the case was
    placed (``placed_at`` ≤ paid_at < ``ended_at``) and it stands (``received``)."""
    return and_(payment.status == "received", payment.paid_at >= placement.placed_at,
                or_(placement.ended_at.is_(None), payment.paid_at < placement.ended_at))


def collected_per_placement(case_scope=None):
    """SELECT (placement id, agency id, collected) over every placement (``case_scope``: only
    those of the cases a user may open)."""
    stmt = (
        select(Placement.id.label("placement_id"), Placement.agency_id.label("agency_id"),
               func.coalesce(func.sum(Payment.amount), 0).label("collected"))
        .join(Case, Case.id == Placement.case_id)
        .outerjoin(Payment, and_(Payment.cif == Case.cif, while_placed()))
        .group_by(Placement.id, Placement.agency_id)
    )
    if case_scope is not None:
        stmt = stmt.where(case_scope)
    return stmt


@dataclass
class AgencyFigures:
    agency: Agency
    placed: int = 0  # placements ever
    active: int = 0
    amount_active: Decimal = Decimal(0)  # amount placed, active placements
    amount_placed: Decimal = Decimal(0)  # amount placed, every placement
    collected: Decimal = Decimal(0)

    @property
    def recovery_rate(self) -> float | None:
        """Collected over the amount placed (every placement)."""
        return float(self.collected / self.amount_placed) if self.amount_placed else None


def collected_by_agency(session: Session, case_scope=None) -> list[AgencyFigures]:
    """Per agency (every agency listed, the legal team first): placements, active ones, the
    amounts placed and what was collected while placed."""
    per = collected_per_placement(case_scope).subquery()
    rows = session.execute(
        select(Placement.agency_id, func.count(Placement.id),
               func.count(Placement.id).filter(Placement.status == "active"),
               func.coalesce(func.sum(Placement.amount).filter(Placement.status == "active"), 0),
               func.coalesce(func.sum(Placement.amount), 0),
               func.coalesce(func.sum(per.c.collected), 0))
        .join(per, per.c.placement_id == Placement.id)
        .group_by(Placement.agency_id)).all()
    found = {row[0]: row[1:] for row in rows}
    out = []
    for agency in agencies(session):
        figures = AgencyFigures(agency)
        if agency.id in found:
            (figures.placed, figures.active, figures.amount_active, figures.amount_placed,
             figures.collected) = found[agency.id]
        out.append(figures)
    return out


@dataclass
class PlacedCase:
    placement: Placement
    cif: str
    name: str
    collected: Decimal
    placed_by: str | None = None


def placed_cases(session: Session, case_scope=None, agency_id: int | None = None,
                 limit: int = 200) -> list[PlacedCase]:
    """The active placements (of ``case_scope``'s cases; of one agency), the latest first."""
    per = collected_per_placement(case_scope).subquery()
    stmt = (select(Placement, Case.cif, Customer.name, per.c.collected)
            .join(Case, Case.id == Placement.case_id)
            .join(Customer, Customer.cif == Case.cif)
            .join(per, per.c.placement_id == Placement.id)
            .where(Placement.status == "active")
            .order_by(Placement.placed_at.desc(), Placement.id.desc()).limit(limit))
    if agency_id is not None:
        stmt = stmt.where(Placement.agency_id == agency_id)
    return [PlacedCase(p, cif, name, collected,
                       p.placed_by.full_name if p.placed_by else None)
            for p, cif, name, collected in session.execute(stmt)]


# --- placing and recalling -------------------------------------------------------------------


def _reason(raw: str | None, errors: dict, key: str = "reason") -> str:
    reason = (raw or "").strip()
    if not reason:
        errors[key] = _("Give the reason.")
    elif len(reason) > REASON_MAX:
        errors[key] = _("At most %(max)s characters (this one has %(num)s).",
                        max=REASON_MAX, num=len(reason))
    return reason


def _in_scope(session: Session, actor: User, case: Case) -> None:
    if actor is not None and not scopes.may_access_case(session, actor, case.cif):
        raise PlacementError({"case": _("This case belongs to another team: you can place "
                                        "and recall only your teams' cases.")}, 403)


def place(session: Session, actor: User, case: Case, agency_id: int | None,
          expected_return_on: date | None, reason: str | None,
          now: datetime | None = None) -> Placement:
    """Place ``case`` with an agency from now until it is recalled or returned. Refused (and
    nothing written): another team's case, a closed case, a case already placed, an unknown or
    retired agency, no expected return date or one before today's business date, no reason.
    The case's lock (Next case) is released: it leaves the agents' queues. No commit."""
    now = now or clock.now()
    today = clock.bank_today(now)
    _in_scope(session, actor, case)
    session.execute(select(Case.id).where(Case.id == case.id).with_for_update())  # one at once
    current = active_placement(session, case.id)
    if current is not None:
        raise PlacementError({"case": _("This case is already placed with %(agency)s since "
                                        "%(date)s: recall it first.", agency=current.agency.name,
                                        date=current.placed_on.strftime("%d/%m/%Y"))}, 409)
    if case.status == "closed":
        raise PlacementError({"case": _("A closed case cannot be placed.")}, 409)
    errors: dict[str, str] = {}
    agency = session.get(Agency, agency_id) if agency_id else None
    if agency is None:
        errors["agency_id"] = _("Choose the agency.")
    elif not agency.active:
        errors["agency_id"] = _("This agency no longer takes cases.")
    if expected_return_on is None:
        errors["expected_return_on"] = _("Enter the expected return date.")
    elif expected_return_on < today:
        errors["expected_return_on"] = _(
            "The expected return date cannot be before the placement date (%(date)s).",
            date=today.strftime("%d/%m/%Y"))
    text_reason = _reason(reason, errors)
    if errors:
        raise PlacementError(errors)
    placement = Placement(case_id=case.id, agency_id=agency.id, status="active", placed_on=today,
                          placed_at=now, expected_return_on=expected_return_on,
                          amount=case.total_outstanding or Decimal(0), reason=text_reason,
                          placed_by_id=getattr(actor, "id", None))
    session.add(placement)
    case.locked_by_id, case.locked_until = None, None
    session.flush()
    audit.record(session, actor, "placement.placed", "case", case.cif, before=None, after={
        "placement_id": placement.id, "agency": agency.code, "amount": str(placement.amount),
        "placed_on": today.isoformat(), "expected_return_on": expected_return_on.isoformat(),
        "reason": text_reason})
    queue.forget_queue_counts(case.assigned_agent_id, case.assigned_field_agent_id)
    return placement


def end(session: Session, actor: User, case: Case, placement_id: int | None, outcome: str,
        reason: str | None, now: datetime | None = None) -> Placement:
    """End the case's active placement: ``recalled`` (the bank takes it back) or ``returned``
    (the agency gives it back). ``placement_id`` must be that active placement (a form shown
    before someone else recalled it is refused). The case is back in its agents' queues.
    No commit."""
    now = now or clock.now()
    _in_scope(session, actor, case)
    current = active_placement(session, case.id, lock=True)
    if current is None or current.id != placement_id:
        raise PlacementError({"placement": _("This placement is no longer active: it was "
                                             "already recalled or returned.")}, 409)
    errors: dict[str, str] = {}
    if outcome not in END_OUTCOMES:
        errors["outcome"] = _("Choose whether the case is recalled or returned.")
    text_reason = _reason(reason, errors, "end_reason")
    if errors:
        raise PlacementError(errors)
    current.status, current.ended_at = outcome, max(now, current.placed_at)
    current.end_reason, current.ended_by_id = text_reason, getattr(actor, "id", None)
    audit.record(session, actor, f"placement.{outcome}", "case", case.cif,
                 before={"placement_id": current.id, "status": "active"},
                 after={"placement_id": current.id, "status": outcome,
                        "agency": current.agency.code, "reason": text_reason})
    queue.forget_queue_counts(case.assigned_agent_id, case.assigned_field_agent_id)
    return current


# --- agencies (admin) ------------------------------------------------------------------------


def save_agency(session: Session, actor: User, agency: Agency | None, values: dict) -> Agency:
    """Create (``agency`` None) or edit an agency from ``values`` (code, name, kind, contact,
    active). The code is fixed once created. No commit."""
    errors: dict[str, str] = {}
    name = (values.get("name") or "").strip()
    if not name:
        errors["name"] = _("Enter the name.")
    elif len(name) > NAME_MAX:
        errors["name"] = _("At most %(max)s characters (this one has %(num)s).",
                           max=NAME_MAX, num=len(name))
    kind = values.get("kind") or ""
    if kind not in AGENCY_KINDS:
        errors["kind"] = _("Choose the kind.")
    contact = (values.get("contact") or "").strip() or None
    if contact and len(contact) > CONTACT_MAX:
        errors["contact"] = _("At most %(max)s characters (this one has %(num)s).",
                              max=CONTACT_MAX, num=len(contact))
    code = agency.code if agency is not None else (values.get("code") or "").strip().upper()
    if agency is None:
        if not CODE_FORMAT.match(code):
            errors["code"] = _("2 to 20 capital letters, digits, - or _.")
        elif session.scalar(select(Agency.id).where(Agency.code == code)) is not None:
            errors["code"] = _("An agency with this code exists.")
    if errors:
        raise PlacementError(errors)
    active = values.get("active", True) in (True, "1", "on", "true")
    if agency is None:
        agency = Agency(code=code, name=name, kind=kind, contact=contact, active=active)
        session.add(agency)
        session.flush()
        audit.record(session, actor, "agency.created", "agency", agency.code, None,
                     {"name": name, "kind": kind, "contact": contact, "active": active})
        return agency
    before = {"name": agency.name, "kind": agency.kind, "contact": agency.contact,
              "active": agency.active}
    agency.name, agency.kind, agency.contact, agency.active = name, kind, contact, active
    audit.record_changes(session, actor, "agency.updated", "agency", agency.code, before,
                         {"name": name, "kind": kind, "contact": contact, "active": active})
    return agency


# --- the placement file ----------------------------------------------------------------------

FILE_COLUMNS = ("cif", "name", "national_id", "phones", "address", "accounts", "outstanding",
                "overdue", "dpd", "placed_on", "expected_return_on", "amount_placed")


def placement_file(session: Session, actor: User, agency: Agency, case_scope=None,
                   now: datetime | None = None) -> tuple[str, int]:
    """The CSV an agency works from: one row per case it holds now (of ``case_scope``), as
    UTF-8 with a BOM (Excel reads Vietnamese). Personal data, DESIGN.md §7: what the agency
    needs to reach and identify the customer — name, national id, the phones that may be
    called (not the do-not-contact ones), the primary address — and the accounts with their
    amounts; no date of birth, e-mail, reference person or collateral. The export is audited
    (agency, cases, rows). Returns (the file's text, rows). No commit."""
    rows = placed_cases(session, case_scope, agency.id, limit=100_000)
    cifs = [r.cif for r in rows]
    phones: dict[str, list[str]] = {}
    for cif, number in session.execute(
            select(Phone.cif, func.coalesce(Phone.number_e164, Phone.number))
            .where(Phone.cif.in_(cifs), Phone.do_not_contact.is_(False))
            .order_by(Phone.cif, Phone.is_primary.desc(), Phone.id)):
        phones.setdefault(cif, []).append(number)
    addresses: dict[str, str] = {}
    for address in session.scalars(select(Address).where(Address.cif.in_(cifs))
                                   .order_by(Address.cif, Address.is_primary.desc(),
                                             Address.id)):
        addresses.setdefault(address.cif, ", ".join(
            p for p in (address.line1, address.line2, address.ward, address.district,
                        address.city, address.province) if p))
    accounts: dict[str, list[str]] = {}
    for cif, number in session.execute(
            select(Loan.cif, Loan.account_number).where(Loan.cif.in_(cifs),
                                                        Loan.status != "CLOSED")
            .order_by(Loan.cif, Loan.account_number)):
        accounts.setdefault(cif, []).append(number)
    for cif, number in session.execute(
            select(Card.cif, Card.contract_number).where(Card.cif.in_(cifs),
                                                         Card.status != "CLOSED")
            .order_by(Card.cif, Card.contract_number)):
        accounts.setdefault(cif, []).append(number)
    people = {c.cif: c for c in session.scalars(select(Customer).where(Customer.cif.in_(cifs)))}
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(FILE_COLUMNS)
    for row in rows:
        case, customer, p = row.placement.case, people[row.cif], row.placement
        writer.writerow([
            row.cif, _cell(customer.name), _cell(customer.national_id or ""),
            " ".join(phones.get(row.cif, [])), _cell(addresses.get(row.cif, "")),
            " ".join(accounts.get(row.cif, [])), f"{case.total_outstanding:f}",
            f"{case.total_overdue:f}", case.max_dpd, p.placed_on.isoformat(),
            p.expected_return_on.isoformat(), f"{p.amount:f}"])
    audit.record(session, actor, "placement.file_exported", "agency", agency.code, None,
                 {"rows": len(rows), "cifs": cifs[:500],
                  "at": (now or clock.now()).isoformat()})
    return out.getvalue(), len(rows)


def _cell(value: str) -> str:
    """A cell a spreadsheet shows as text: one starting with = + - @ (a formula) is quoted."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


# --- truths (flask check invariants) ---------------------------------------------------------


def violations(session: Session, now: datetime | None = None) -> list[dict]:
    """Placements that break their truths: two active placements of one case; two placements of
    one case whose windows overlap (a payment would count twice); a placed case still locked
    by an agent after it was placed (it is in no queue); an agency's collected figure that is
    not the sum of the distinct payments it is computed from."""
    rows = [dict(r._mapping) for r in session.execute(text("""
        SELECT case_id, 'two active placements' AS problem, array_agg(id ORDER BY id) AS ids
        FROM placements WHERE status = 'active' GROUP BY case_id HAVING count(*) > 1
        UNION ALL
        SELECT a.case_id, 'placement windows overlap', ARRAY[a.id, b.id]
        FROM placements a JOIN placements b ON b.case_id = a.case_id AND b.id > a.id
        WHERE tstzrange(a.placed_at, a.ended_at) && tstzrange(b.placed_at, b.ended_at)
        UNION ALL
        SELECT c.id, 'placed case locked by an agent', ARRAY[p.id]
        FROM placements p JOIN cases c ON c.id = p.case_id
        WHERE p.status = 'active' AND c.locked_by_id IS NOT NULL
          AND c.locked_until > p.placed_at AND c.locked_until > :now
        ORDER BY 1"""), {"now": now or clock.now()})]
    per = collected_per_placement().subquery()
    reported = dict(session.execute(
        select(per.c.agency_id, func.sum(per.c.collected)).group_by(per.c.agency_id)).all())
    # the same figure counted payment by payment: each payment once per agency
    distinct_payments = (
        select(Placement.agency_id.label("agency_id"), Payment.id.label("payment_id"),
               Payment.amount.label("amount"))
        .join(Case, Case.id == Placement.case_id)
        .join(Payment, and_(Payment.cif == Case.cif, while_placed()))
        .distinct().subquery())
    counted = dict(session.execute(
        select(distinct_payments.c.agency_id, func.sum(distinct_payments.c.amount))
        .group_by(distinct_payments.c.agency_id)).all())
    for agency_id in sorted(set(reported) | set(counted)):
        got, expected = reported.get(agency_id) or 0, counted.get(agency_id) or 0
        if Decimal(got) != Decimal(expected):
            rows.append({"agency_id": agency_id, "problem": "collected is not the sum of its "
                         "payments", "collected": str(got), "payments": str(expected)})
    return rows
