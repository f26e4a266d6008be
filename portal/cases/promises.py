"""Promises to pay: capture (with field-level validation), fulfilment by payments (FIFO), undo
on reversal, and the daily job that marks broken promises.

Nothing here commits: the caller commits the change with its events and audit rows.

Allocation order (``allocate_payment``): a payment on loan L counts first towards the open
promises (pending or partially kept) made for loan L, then towards the customer's promises made
without a loan (customer level) — each group oldest promised date first, then oldest promise.
Promises made for *another* loan of the customer are not touched: money paid into one loan does
not keep a promise about another. What is left after every eligible promise is covered stays
unallocated (over-payment). A payment is allocated once: calling again returns its allocations.

One pending promise: a customer has at most one pending promise per loan, and one made for the
whole customer (no loan; a card's counts there) — two partial unique indexes say so. A new
promise where one is pending is refused with a message that offers to replace it; replacing
(``replace_pending``) marks the old one ``superseded`` (when, by whom, ``replacement_id``), with
an audit row and a line on the case's timeline. A superseded promise is closed: payments are
not allocated to it and the KPIs count it neither kept nor broken.

Business dates (promise dates, "today") are in ``BANK_TIMEZONE`` (portal.clock).
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from decimal import Decimal

from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from sqlalchemy import case as sql_case
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal import audit, clock
from portal.cases.contact_rules import get_promise_rules
from portal.cases.queue import collectible_products, recompute_priorities
from portal.events import publish
from portal.i18n import default_language, format_date
from portal.labels import label
from portal.models import (
    Action,
    Case,
    Loan,
    Payment,
    PaymentPlan,
    PlanAllocation,
    Promise,
    PromiseAllocation,
    User,
)
from portal.money import bank_currency, format_money, parse_money

log = logging.getLogger(__name__)

OPEN_STATUSES = ("pending", "partially_kept")
CLOSED_LOAN_STATUSES = ("CLOSED",)  # a written-off loan is still recovered: promises allowed
MAX_AMOUNT = Decimal("9999999999999999.99")  # Numeric(18, 2)


class PromiseValidationError(ValueError):
    """``errors``: field (amount, promised_date, account_number) → message for the agent."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _currency() -> str:
    return bank_currency()


def _parse_amount(amount, currency: str) -> tuple[Decimal | None, str | None]:
    """(the amount, None) or (None, why it is not one): portal.money's one parser."""
    if isinstance(amount, float):  # money is never a float
        return None, _("Enter the amount as a whole number of đồng, such as 5.000.000.")
    try:
        return parse_money(amount, currency), None
    except ValueError as exc:
        return None, str(exc)


def customer_total_due(session: Session, cif: str) -> Decimal:
    """What the customer owes now: the overdue of every product still in collection — the
    same figure as the case header's total overdue (``queue.collectible_products``)."""
    products = collectible_products(cif).subquery()
    return Decimal(session.scalar(select(func.coalesce(func.sum(products.c.overdue), 0))) or 0)


def validate_promise(session: Session, *, cif: str, account_number: str | None, amount,
                     promised_date: date | None, today: date) -> tuple[dict[str, str],
                                                                      Decimal | None,
                                                                      Loan | None]:
    """Field errors of a promise (empty when valid), the parsed amount and the loan."""
    errors: dict[str, str] = {}
    max_days = get_promise_rules(session).max_days

    if promised_date is None:
        errors["promised_date"] = _("Enter the date the customer promised to pay.")
    elif promised_date < today:
        errors["promised_date"] = _("The date is in the past: it must be %(date)s or later.",
                                    date=format_date(today))
    elif (promised_date - today).days > max_days:
        latest = date.fromordinal(today.toordinal() + max_days)
        errors["promised_date"] = ngettext(
            "A promise can be at most %(num)d day ahead (until %(date)s).",
            "A promise can be at most %(num)d days ahead (until %(date)s).",
            max_days, date=format_date(latest))

    loan = None
    if account_number:
        loan = session.scalar(select(Loan).where(Loan.account_number == account_number))
        if loan is None:
            errors["account_number"] = _("There is no loan %(account)s.",
                                         account=account_number)
        elif loan.cif != cif:
            errors["account_number"] = _("Loan %(account)s belongs to another customer.",
                                         account=account_number)
            loan = None
        elif loan.status in CLOSED_LOAN_STATUSES:
            errors["account_number"] = _("Loan %(account)s is %(status)s.",
                                         account=account_number,
                                         status=label(loan.status).lower())
            loan = None

    currency = loan.currency if loan is not None and loan.currency else _currency()
    value, problem = _parse_amount(amount, currency)
    if problem is None and value is None:
        errors["amount"] = _("Enter the amount the customer promised.")
    elif problem is not None:
        errors["amount"] = problem
    elif value <= 0:
        errors["amount"] = _("The amount must be greater than zero.")
    elif value > MAX_AMOUNT:
        errors["amount"] = _("The amount is too large.")
    elif "account_number" not in errors:
        due = loan.due_amount if loan is not None else customer_total_due(session, cif)
        if value > due and loan is not None:
            errors["amount"] = _("The amount is more than due on loan %(account)s (%(due)s).",
                                 account=loan.account_number,
                                 due=format_money(due or Decimal(0), currency))
        elif value > due:
            errors["amount"] = _("The amount is more than the customer's total due (%(due)s).",
                                 due=format_money(due or Decimal(0), currency))
    return errors, value, loan


def pending_promise(session: Session, cif: str, account_number: str | None, *,
                    lock: bool = False) -> Promise | None:
    """The customer's pending promise for ``account_number`` (None: the whole-customer one)."""
    query = select(Promise).where(
        Promise.cif == cif, Promise.status == "pending",
        Promise.account_number == account_number if account_number is not None
        else Promise.account_number.is_(None))
    return session.scalar(query.with_for_update() if lock else query)


def _promise_text(promise: Promise) -> str:
    return _("%(amount)s by %(date)s", amount=format_money(promise.amount, promise.currency),
             date=format_date(promise.promised_date))


def _pending_message(pending: Promise) -> str:
    amount = format_money(pending.amount, pending.currency)
    when = format_date(pending.promised_date)
    if pending.account_number:
        return _("A promise of %(amount)s by %(date)s is already pending for loan %(account)s. "
                 "Tick “Replace the pending promise” to supersede it with this one.",
                 amount=amount, date=when, account=pending.account_number)
    return _("A promise of %(amount)s by %(date)s is already pending for this customer. "
             "Tick “Replace the pending promise” to supersede it with this one.",
             amount=amount, date=when)


def create_promise(session: Session, *, agent_id: int, cif: str, account_number: str | None,
                   amount: Decimal, promised_date: date, action_id: int | None,
                   today: date | None = None, replace_pending: bool = False) -> Promise:
    """Validate and add a pending promise; publishes PROMISE_CREATED and an audit row.
    Where one is pending for the same loan (or the whole customer), it is superseded when
    ``replace_pending``, else the promise is refused (``replace_pending`` error: the form offers
    to replace it). Raises ``PromiseValidationError`` with field-level messages. No commit."""
    today = today or clock.bank_today()
    errors, value, loan = validate_promise(session, cif=cif, account_number=account_number,
                                           amount=amount, promised_date=promised_date,
                                           today=today)
    key = loan.account_number if loan else None
    pending = None if "account_number" in errors else \
        pending_promise(session, cif, key, lock=True)
    if pending is not None and not replace_pending:
        errors["replace_pending"] = _pending_message(pending)
    if session.scalar(select(PaymentPlan.id).where(PaymentPlan.cif == cif,
                                                   PaymentPlan.status == "active")):
        errors["promised_date"] = _(  # one open arrangement at a time (cases/plans.py)
            "This customer has an active payment plan: payments go to its instalments. "
            "Cancel the plan before taking a promise.")
    if errors:
        raise PromiseValidationError(errors)
    actor = session.get(User, agent_id)
    now = clock.now()
    if pending is not None:
        pending.status, pending.resolved_at = "superseded", now
        pending.superseded_at, pending.superseded_by_id = now, agent_id
        session.flush()  # the pending slot is free before the new promise takes it
    promise = Promise(
        cif=cif, account_number=key, agent_id=agent_id,
        action_id=action_id, amount=value, currency=loan.currency if loan else _currency(),
        promised_date=promised_date, status="pending", paid_amount=Decimal(0),
    )
    try:
        with session.begin_nested():  # another agent's promise may have just taken the slot
            session.add(promise)
            session.flush()
    except IntegrityError as exc:
        raise PromiseValidationError({"replace_pending": _(
            "Another promise was just saved for the same account: reload the case and "
            "replace it if this one stands.")}) from exc
    publish("PROMISE_CREATED", {
        "promise_id": promise.id, "cif": cif, "agent_id": agent_id, "amount": value,
        "promised_date": promised_date, "account_number": promise.account_number,
        "action_id": action_id, "currency": promise.currency,
        "supersedes": pending.id if pending is not None else None,
    }, session=session)
    audit.record(session, actor, "promise.create", "promise", promise.id,
                 after=_snapshot(promise))
    if pending is not None:
        _superseded(session, actor, pending, promise, now)
    return promise


def _superseded(session: Session, actor: User | None, old: Promise, new: Promise,
                now: datetime) -> None:
    """``old`` was replaced by ``new``: the link, an audit row and a line on the timeline."""
    old.replacement_id = new.id
    audit.record(session, actor, "promise.supersede", "promise", old.id,
                 before={"status": "pending"},
                 after={"status": "superseded", "replacement_id": new.id})
    with force_locale(default_language()):  # a note on the timeline: the bank's language
        notes = _("Promise of %(old)s replaced by a promise of %(new)s.",
                  old=_promise_text(old), new=_promise_text(new))
    session.add(Action(
        cif=old.cif, account_number=old.account_number, agent_id=actor.id if actor else None,
        type="SYSTEM", subtype="PROMISE", result="SUPERSEDED", at=now, source="system",
        notes=notes))
    session.flush()


def _snapshot(promise: Promise) -> dict:
    return {
        "cif": promise.cif, "account_number": promise.account_number,
        "amount": format(promise.amount, "f"), "currency": promise.currency,
        "promised_date": promise.promised_date.isoformat(), "status": promise.status,
        "paid_amount": format(promise.paid_amount or Decimal(0), "f"),
    }


# -- fulfilment ----------------------------------------------------------------------------------


def _open_promises_for(session: Session, payment: Payment) -> list[Promise]:
    loan_first = sql_case((Promise.account_number == payment.account_number, 0), else_=1)
    return list(session.scalars(
        select(Promise)
        .where(Promise.cif == payment.cif, Promise.status.in_(OPEN_STATUSES),
               Promise.paid_amount < Promise.amount,
               (Promise.account_number == payment.account_number)
               | Promise.account_number.is_(None))
        .order_by(loan_first, Promise.promised_date, Promise.id)
        .with_for_update()
    ))


def allocate_payment(session: Session, payment: Payment, *,
                     top_up: bool = False) -> list[PromiseAllocation]:
    """Allocate ``payment`` to the customer's open promises, FIFO (see the module doc).
    Publishes PROMISE_KEPT for each promise it touches. No commit.

    ``top_up``: allocate what is still unallocated of a payment allocated before (used after
    another payment's reversal reopened promises); returns the allocations it made or grew."""
    existing = list(session.scalars(
        select(PromiseAllocation).where(PromiseAllocation.payment_id == payment.id)
        .order_by(PromiseAllocation.id)
    ))
    if (existing and not top_up) or payment.status != "received":
        return [a for a in existing if a.reversed_at is None]
    active = {a.promise_id: a for a in existing if a.reversed_at is None}
    undone = {a.promise_id for a in existing if a.reversed_at is not None}
    remaining = Decimal(payment.amount) - allocated(session, payment.id)
    if remaining <= 0:
        return []
    now = clock.now()
    allocations: list[PromiseAllocation] = []
    for promise in _open_promises_for(session, payment):
        if remaining <= 0:
            break
        if promise.currency != payment.currency or promise.id in undone:
            continue
        take = min(promise.amount - promise.paid_amount, remaining)
        if take <= 0:
            continue
        remaining -= take
        allocation = active.get(promise.id)
        if allocation is not None:
            allocation.amount = allocation.amount + take
        else:
            allocation = PromiseAllocation(promise_id=promise.id, payment_id=payment.id,
                                           amount=take, allocated_at=now)
            session.add(allocation)
        allocations.append(allocation)
        promise.paid_amount = promise.paid_amount + take
        if promise.paid_amount >= promise.amount:
            promise.status, promise.resolved_at = "kept", now
        else:
            promise.status = "partially_kept"
        publish("PROMISE_KEPT", {
            "promise_id": promise.id, "cif": promise.cif, "status": promise.status,
            "amount": promise.amount, "paid_amount": promise.paid_amount,
            "account_number": promise.account_number, "agent_id": promise.agent_id,
            "payment_reference": payment.reference_number,
        }, session=session)
    session.flush()
    return allocations


def allocated_to(payment_id):
    """What a payment gives promises and payment plan instalments now (their standing
    allocations), as one SQL expression: for a payment id, or correlated to ``Payment.id``.
    The one definition of a payment's money already given (portal/cases/plans.py gives the
    rest of a payment after the promises)."""
    def standing(model):
        return (select(func.coalesce(func.sum(model.amount), 0))
                .where(model.payment_id == payment_id, model.reversed_at.is_(None))
                .correlate_except(model).scalar_subquery())
    return standing(PromiseAllocation) + standing(PlanAllocation)


def allocated(session: Session, payment_id: int) -> Decimal:
    return Decimal(session.scalar(select(allocated_to(payment_id))))


def leftover_payments(session: Session, cif: str, except_id: int) -> list[Payment]:
    """The customer's received payments (other than ``except_id``) with money not yet given
    to promises or instalments, oldest first: what tops up after a reversal."""
    return list(session.scalars(
        select(Payment)
        .where(Payment.cif == cif, Payment.status == "received",
               Payment.original_reference.is_(None), Payment.id != except_id,
               Payment.amount > allocated_to(Payment.id))
        .order_by(Payment.paid_at, Payment.id)))


def undo_allocations(session: Session, payment: Payment,
                     today: date | None = None, *,
                     reallocate: bool = False) -> list[PromiseAllocation]:
    """Reverse ``payment``'s allocations (payment reversed): each promise loses the amount and
    reopens — pending (nothing paid left) or partially kept — or, when its date has already
    passed (bank zone), becomes broken (PROMISE_BROKEN published). No commit.

    ``reallocate``: then give the reopened promises what other received payments of the
    customer still have unallocated (oldest payment first), so the promises end up covered by
    the payments that remain, whatever order payments and reversals arrived in."""
    today = today or clock.bank_today()
    now = clock.now()
    allocations = list(session.scalars(
        select(PromiseAllocation)
        .where(PromiseAllocation.payment_id == payment.id,
               PromiseAllocation.reversed_at.is_(None))
        .order_by(PromiseAllocation.id).with_for_update()
    ))
    for allocation in allocations:
        promise = session.get(Promise, allocation.promise_id, with_for_update=True)
        allocation.reversed_at = now
        promise.paid_amount = max(Decimal(0), promise.paid_amount - allocation.amount)
        if promise.status == "cancelled" or promise.paid_amount >= promise.amount:
            continue
        previous = promise.status
        if promise.promised_date < today:
            _break(session, promise, previous, now)
        elif promise.paid_amount > 0:
            promise.status, promise.resolved_at = "partially_kept", None
        else:
            _reopen(session, promise, previous, now)
    session.flush()
    if reallocate and allocations:
        _reallocate_leftovers(session, payment)
    return allocations


def _reopen(session: Session, promise: Promise, previous: str, now: datetime) -> None:
    """A promise left with nothing paid is pending again — but one pending promise per account:
    when another is pending for the same account, the newer of the two stands and the older is
    superseded by it (by the system)."""
    other = pending_promise(session, promise.cif, promise.account_number, lock=True)
    if other is not None and other.id > promise.id:
        _supersede_by_system(session, promise, other, previous, now)
        return
    if other is not None:
        _supersede_by_system(session, other, promise, other.status, now)
        session.flush()  # the slot is free before this one is pending again
    promise.status, promise.resolved_at = "pending", None


def _supersede_by_system(session: Session, old: Promise, new: Promise, previous: str,
                         now: datetime) -> None:
    old.status, old.resolved_at = "superseded", now
    old.superseded_at, old.superseded_by_id, old.replacement_id = now, None, new.id
    audit.record(session, "system", "promise.supersede", "promise", old.id,
                 before={"status": previous},
                 after={"status": "superseded", "replacement_id": new.id})


def _reallocate_leftovers(session: Session, reversed_payment: Payment) -> None:
    """Top up the customer's reopened promises from received payments with money left over."""
    for other in leftover_payments(session, reversed_payment.cif, reversed_payment.id):
        allocate_payment(session, other, top_up=True)


# -- broken promises -----------------------------------------------------------------------------


def _break(session: Session, promise: Promise, previous: str, now: datetime) -> None:
    promise.status, promise.resolved_at = "broken", now
    publish("PROMISE_BROKEN", {
        "promise_id": promise.id, "cif": promise.cif, "amount": promise.amount,
        "promised_date": promise.promised_date, "paid_amount": promise.paid_amount,
        "account_number": promise.account_number, "agent_id": promise.agent_id,
        "previous_status": previous,
    }, session=session)
    audit.record(session, "system", "promise.broken", "promise", promise.id,
                 before={"status": previous}, after={"status": "broken"})
    _requeue_case(session, promise.cif, now)


def _requeue_case(session: Session, cif: str, now: datetime) -> None:
    """Put the customer's case back at the top of its agent's queue: follow-up due now, and the
    priority recomputed by the queue's one formula (a fresh broken promise weighs heavily)."""
    case = session.scalar(select(Case).where(Case.cif == cif).with_for_update())
    if case is None:
        return
    case.next_action_at = now
    session.flush()
    recompute_priorities(session, [case.id], now=now)


def mark_broken_promises(session: Session, today: date) -> int:
    """Promises whose date is before ``today`` (bank zone) and that are not fully paid become
    broken: PROMISE_BROKEN (its subscriber notifies the agent), audit row, case back at the top
    of the queue. Returns how many. No commit. Rows another transaction holds are skipped (the
    next run takes them)."""
    now = clock.now()
    promises = session.scalars(
        select(Promise)
        .where(Promise.status.in_(OPEN_STATUSES), Promise.promised_date < today,
               Promise.paid_amount < Promise.amount)
        .order_by(Promise.promised_date, Promise.id)
        .with_for_update(skip_locked=True)
    ).all()
    for promise in promises:
        _break(session, promise, promise.status, now)
    session.flush()
    return len(promises)
