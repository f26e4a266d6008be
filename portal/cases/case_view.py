"""Everything the customer case view (customer 360) shows, read in a handful of queries (the
masking of national ids and phone numbers for roles without ``customers.view_pii`` is
portal.text's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from portal import clock
from portal.cases import account_checks, statuses
from portal.labels import label
from portal.models import (
    Action,
    ActionCode,
    Address,
    CallRecord,
    Card,
    Case,
    Collateral,
    Customer,
    Email,
    Loan,
    LoanCollateral,
    Message,
    Payment,
    Phone,
    ProductOwnerMove,
    Promise,
    ReferenceCustomer,
    User,
    Visit,
)

TIMELINE_LIMIT = 100
PAYMENTS_LIMIT = 50
CALLS_LIMIT = 50


@dataclass
class CaseView:
    customer: Customer
    case: Case | None
    loans: list[Loan]
    cards: list[Card]
    collaterals: list[tuple[Collateral, list[str]]]
    phones: list[Phone]
    addresses: list[Address]
    emails: list[Email]
    references: list[ReferenceCustomer]
    actions: list[Action]
    promises: list[Promise]
    payments: list[Payment]
    visits: list[Visit]
    calls: list[CallRecord]
    field_agent: User | None = None
    agent: User | None = None
    locked_by: User | None = None
    # products a bank sync moved between customers: {product key: the latest move} away from
    # this customer (its promises and actions stay here) and to it
    moved_out: dict[str, ProductOwnerMove] = field(default_factory=dict)
    moved_in: dict[str, ProductOwnerMove] = field(default_factory=dict)
    # {account or contract number: what its bank data contradicts} (account_checks)
    inconsistent: dict[str, list[account_checks.Inconsistency]] = field(default_factory=dict)
    # the statuses people set, their history, and the master note's versions (cases.statuses)
    statuses: list[statuses.CurrentStatus] = field(default_factory=list)
    status_history: list = field(default_factory=list)
    # {action id: the message it records} (SMS, e-mail, letters: status, hold reason)
    messages: dict[int, Message] = field(default_factory=dict)
    note_versions: list = field(default_factory=list)

    @property
    def total_overdue(self) -> Decimal:
        if self.case is not None:
            return self.case.total_overdue
        # no case yet: the same rule as queue.recompute_case_totals, over the loaded products
        return sum((ln.due_amount for ln in self.loans if ln.status != "CLOSED"), Decimal(0)) + \
            sum((c.min_due for c in self.cards if c.days_overdue and c.status != "CLOSED"),
                Decimal(0))

    @property
    def max_dpd(self) -> int:
        if self.case is not None:
            return self.case.max_dpd
        return max([ln.dpd for ln in self.loans if ln.status != "CLOSED"]
                   + [c.days_overdue for c in self.cards if c.status != "CLOSED"] + [0])

    @property
    def total_outstanding(self) -> Decimal:
        return sum((ln.outstanding for ln in self.loans), Decimal(0)) + \
            sum((c.outstanding for c in self.cards), Decimal(0))

    @property
    def active_references(self) -> list[ReferenceCustomer]:
        return [r for r in self.references if r.retired_at is None]

    @property
    def retired_references(self) -> list[ReferenceCustomer]:
        return [r for r in self.references if r.retired_at is not None]

    @property
    def pending_promises(self) -> list[Promise]:
        return [p for p in self.promises if p.status == "pending"]

    @property
    def accounts(self) -> list[tuple[str, str]]:
        return account_choices(self.loans, self.cards)


def account_choices(loans, cards) -> list[tuple[str, str]]:
    """(account number, label) of the open loans and cards an action can be for (a promise
    on a card counts for the whole customer: promises are tracked per loan), in the order given:
    "LN0001 · Personal loan · 45 DPD", "•••• 1234 · Card · 12 DPD" (the product's label)."""
    items = [(ln.account_number, f"{ln.account_number} · {label(ln.product_type)}"
                                 f" · {ln.dpd} DPD")
             for ln in loans if ln.status != "CLOSED"]
    items += [(c.contract_number, f"{c.masked_card_number} · {label('card')} · "
                                  f"{c.days_overdue} DPD")
              for c in cards if c.status != "CLOSED"]
    return items


def open_accounts(session: Session, cif: str) -> list[tuple[str, str]]:
    """``account_choices`` of ``cif``'s open loans and cards, most overdue first (as the case
    view lists them), for a form shown without the case view (the call widget)."""
    loans = session.scalars(select(Loan).where(Loan.cif == cif, Loan.status != "CLOSED")
                            .order_by(Loan.dpd.desc(), Loan.account_number)).all()
    cards = session.scalars(select(Card).where(Card.cif == cif, Card.status != "CLOSED")
                            .order_by(Card.days_overdue.desc(), Card.contract_number)).all()
    return account_choices(loans, cards)


def load_case_view(session: Session, cif: str, now: datetime | None = None) -> CaseView | None:
    customer = session.scalar(select(Customer).where(Customer.cif == cif))
    if customer is None:
        return None
    now = now or clock.now()
    case = session.scalar(select(Case).where(Case.cif == cif))
    loans = session.scalars(
        select(Loan).where(Loan.cif == cif)
        .order_by(Loan.status == "CLOSED", Loan.dpd.desc(), Loan.account_number)).all()
    cards = session.scalars(select(Card).where(Card.cif == cif)
                            .order_by(Card.days_overdue.desc(), Card.contract_number)).all()
    collaterals = session.scalars(select(Collateral).where(Collateral.cif == cif)
                                  .order_by(Collateral.collateral_number)).all()
    links: dict[str, list[str]] = {}
    if collaterals:
        for number, account in session.execute(
            select(LoanCollateral.collateral_number, LoanCollateral.account_number)
            .where(LoanCollateral.collateral_number.in_([c.collateral_number
                                                         for c in collaterals]))
        ):
            links.setdefault(number, []).append(account)
    phones = session.scalars(select(Phone).where(Phone.cif == cif)
                             .order_by(Phone.is_primary.desc(), Phone.id)).all()
    addresses = session.scalars(select(Address).where(Address.cif == cif)
                                .order_by(Address.is_primary.desc(), Address.id)).all()
    emails = session.scalars(select(Email).where(Email.cif == cif)
                             .order_by(Email.is_primary.desc(), Email.id)).all()
    references = session.scalars(  # active first, then the retired (cases.references)
        select(ReferenceCustomer).where(ReferenceCustomer.primary_cif == cif)
        .options(selectinload(ReferenceCustomer.phones),
                 selectinload(ReferenceCustomer.emails),
                 selectinload(ReferenceCustomer.addresses))
        .order_by(ReferenceCustomer.retired_at.is_not(None), ReferenceCustomer.relationship_type,
                  ReferenceCustomer.name, ReferenceCustomer.id)).all()
    actions = session.scalars(
        select(Action).where(Action.cif == cif)
        .options(selectinload(Action.agent), selectinload(Action.action_code))
        .order_by(Action.at.desc(), Action.id.desc()).limit(TIMELINE_LIMIT)).all()
    promises = session.scalars(
        select(Promise).where(Promise.cif == cif).options(selectinload(Promise.agent))
        .order_by(Promise.status != "pending", Promise.promised_date.desc(),
                  Promise.id.desc())).all()
    payments = session.scalars(select(Payment).where(Payment.cif == cif)
                               .order_by(Payment.paid_at.desc()).limit(PAYMENTS_LIMIT)).all()
    visits = session.scalars(select(Visit).where(Visit.cif == cif)
                             .options(selectinload(Visit.agent))
                             .order_by(Visit.planned_for.desc(), Visit.id.desc())).all()
    calls = session.scalars(select(CallRecord).where(CallRecord.cif == cif)
                            .order_by(CallRecord.started_at.desc()).limit(CALLS_LIMIT)).all()
    view = CaseView(customer, case, list(loans), list(cards),
                    [(c, links.get(c.collateral_number, [])) for c in collaterals],
                    list(phones), list(addresses), list(emails), list(references),
                    list(actions), list(promises), list(payments), list(visits), list(calls))
    view.moved_out, view.moved_in = product_moves(session, cif)
    message_actions = [a.id for a in actions if a.type in ("SMS", "EMAIL", "LETTER")]
    if message_actions:
        view.messages = {m.action_id: m for m in session.scalars(
            select(Message).where(Message.action_id.in_(message_actions)))}
    view.inconsistent = account_checks.by_account(session, cif, clock.bank_today(now))
    if case is not None:
        view.agent = case.assigned_agent
        view.field_agent = case.assigned_field_agent
        if case.locked_by_id and case.locked_until and case.locked_until > now:
            view.locked_by = session.get(User, case.locked_by_id)
        view.statuses = statuses.current_statuses(session, case)
        view.status_history = statuses.status_history(session, case.id)
        view.note_versions = statuses.note_versions(session, cif)
    return view


def product_moves(session: Session, cif: str) -> tuple[dict, dict]:
    """The applied moves of ``cif``'s products, the latest of each product: ({product key:
    move} away from the customer, {product key: move} to it)."""
    moves = session.scalars(
        select(ProductOwnerMove)
        .where(ProductOwnerMove.status == "applied",
               (ProductOwnerMove.old_cif == cif) | (ProductOwnerMove.new_cif == cif))
        .order_by(ProductOwnerMove.decided_at, ProductOwnerMove.id)).all()
    latest = {m.product_key: m for m in moves}
    return ({k: m for k, m in latest.items() if m.old_cif == cif},
            {k: m for k, m in latest.items() if m.new_cif == cif})


def active_action_codes(session: Session) -> list[ActionCode]:
    return list(session.scalars(
        select(ActionCode).where(ActionCode.active.is_(True))
        .order_by(ActionCode.sort_order, ActionCode.id)))
