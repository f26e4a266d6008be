"""Promises to pay: capture (with field-level validation), fulfilment by payments (FIFO), undo
on reversal, and the daily job that marks broken promises.

Nothing here commits: the caller commits the change with its events and audit rows.

Allocation order (``allocate_payment``): a payment on loan L counts first towards the open
promises (pending or partially kept) made for loan L, then towards the customer's promises made
without a loan (customer level) — each group oldest promised date first, then oldest promise.
Promises made for *another* loan of the customer are not touched: money paid into one loan does
not keep a promise about another. What is left after every eligible promise is covered stays
unallocated (over-payment). A payment is allocated once: calling again returns its allocations.

Business dates (promise dates, "today") are in ``BANK_TIMEZONE`` (portal.clock).
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from flask import current_app, has_app_context
from sqlalchemy import case as sql_case
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import audit, clock
from portal.cases.contact_rules import get_promise_rules
from portal.cases.queue import collectible_products, recompute_priorities
from portal.events import publish
from portal.models import Case, Loan, Payment, Promise, PromiseAllocation, User

log = logging.getLogger(__name__)

OPEN_STATUSES = ("pending", "partially_kept")
CLOSED_LOAN_STATUSES = ("CLOSED",)  # a written-off loan is still recovered: promises allowed
CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("9999999999999999.99")  # Numeric(18, 2)


class PromiseValidationError(ValueError):
    """``errors``: field (amount, promised_date, account_number) → message for the agent."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _currency() -> str:
    return current_app.config.get("BANK_CURRENCY", "VND") if has_app_context() else "VND"


def _parse_amount(amount) -> Decimal | None:
    if isinstance(amount, float):  # money is never a float
        return None
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(str(amount).strip()
                                                                   .replace(",", ""))
    except (InvalidOperation, TypeError, ValueError):
        return None
    if not value.is_finite() or value.as_tuple().exponent < -2:
        return None
    return value


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
        errors["promised_date"] = "Enter the date the customer promised to pay."
    elif promised_date < today:
        errors["promised_date"] = (f"The date is in the past: it must be {today:%d/%m/%Y} "
                                   "or later.")
    elif (promised_date - today).days > max_days:
        latest = date.fromordinal(today.toordinal() + max_days)
        errors["promised_date"] = (f"A promise can be at most {max_days} days ahead "
                                   f"(until {latest:%d/%m/%Y}).")

    loan = None
    if account_number:
        loan = session.scalar(select(Loan).where(Loan.account_number == account_number))
        if loan is None:
            errors["account_number"] = f"There is no loan {account_number}."
        elif loan.cif != cif:
            errors["account_number"] = f"Loan {account_number} belongs to another customer."
            loan = None
        elif loan.status in CLOSED_LOAN_STATUSES:
            errors["account_number"] = f"Loan {account_number} is {loan.status.lower()}."
            loan = None

    value = _parse_amount(amount) if amount is not None and amount != "" else None
    if amount is None or amount == "":
        errors["amount"] = "Enter the amount the customer promised."
    elif value is None:
        errors["amount"] = "Enter an amount such as 1500000 (at most 2 decimals)."
    elif value <= 0:
        errors["amount"] = "The amount must be greater than zero."
    elif value > MAX_AMOUNT:
        errors["amount"] = "The amount is too large."
    elif "account_number" not in errors:
        if loan is not None:
            due, what = loan.due_amount, f"due on loan {loan.account_number}"
        else:
            due, what = customer_total_due(session, cif), "the customer's total due"
        if value > due:
            errors["amount"] = (f"The amount is more than {what} "
                                f"({due.quantize(CENT) if due else Decimal(0):,} "
                                f"{loan.currency if loan else _currency()}).")
    return errors, value, loan


def create_promise(session: Session, *, agent_id: int, cif: str, account_number: str | None,
                   amount: Decimal, promised_date: date, action_id: int | None,
                   today: date | None = None) -> Promise:
    """Validate and add a pending promise; publishes PROMISE_CREATED and an audit row.
    Raises ``PromiseValidationError`` with field-level messages. No commit."""
    today = today or clock.bank_today()
    errors, value, loan = validate_promise(session, cif=cif, account_number=account_number,
                                           amount=amount, promised_date=promised_date,
                                           today=today)
    if errors:
        raise PromiseValidationError(errors)
    promise = Promise(
        cif=cif, account_number=loan.account_number if loan else None, agent_id=agent_id,
        action_id=action_id, amount=value, currency=loan.currency if loan else _currency(),
        promised_date=promised_date, status="pending", paid_amount=Decimal(0),
    )
    session.add(promise)
    session.flush()
    publish("PROMISE_CREATED", {
        "promise_id": promise.id, "cif": cif, "agent_id": agent_id, "amount": value,
        "promised_date": promised_date, "account_number": promise.account_number,
        "action_id": action_id, "currency": promise.currency,
    }, session=session)
    audit.record(session, session.get(User, agent_id), "promise.create", "promise", promise.id,
                 after=_snapshot(promise))
    return promise


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
    remaining = Decimal(payment.amount) - sum((a.amount for a in active.values()), Decimal(0))
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
        else:
            promise.status = "pending" if promise.paid_amount == 0 else "partially_kept"
            promise.resolved_at = None
    session.flush()
    if reallocate and allocations:
        _reallocate_leftovers(session, payment)
    return allocations


def _reallocate_leftovers(session: Session, reversed_payment: Payment) -> None:
    """Top up the customer's reopened promises from received payments with money left over."""
    allocated = (
        select(func.coalesce(func.sum(PromiseAllocation.amount), 0))
        .where(PromiseAllocation.payment_id == Payment.id,
               PromiseAllocation.reversed_at.is_(None))
        .correlate(Payment).scalar_subquery()
    )
    leftovers = session.scalars(
        select(Payment)
        .where(Payment.cif == reversed_payment.cif, Payment.status == "received",
               Payment.original_reference.is_(None), Payment.id != reversed_payment.id,
               Payment.amount > allocated)
        .order_by(Payment.paid_at, Payment.id)
    ).all()
    for other in leftovers:
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
