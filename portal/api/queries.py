"""What the read API (REST under /api/v1 and GraphQL) reads: customers and their loans, cards,
contacts, collaterals, cases, actions, promises and payments. One function per read, shared by
both front ends; the lists take the caller (``principal``) and return only the customers it may
open. Relations take a list of cifs so that GraphQL loads them for a whole response at once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.models import (
    Action,
    Address,
    Card,
    Case,
    Collateral,
    Customer,
    Email,
    Loan,
    LoanCollateral,
    Payment,
    Phone,
    Promise,
    User,
)
from portal.permissions.scopes import principal_cif_scope
from portal.permissions.tokens import Principal

OPEN_PROMISE_STATUSES = ("pending",)


@dataclass(frozen=True)
class Page:
    """One page of a keyset-paged list: its rows and the cursor of the next page (None: the last
    page)."""

    rows: list
    limit: int
    next_cursor: str | None


def _page(session: Session, query, limit: int, cursor_of: Callable[[Any], str]) -> Page:
    """``query`` run for one row more than ``limit``: that row says whether a next page exists."""
    rows = list(session.scalars(query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, limit, cursor_of(rows[-1]) if more and rows else None)


def _visible(session: Session, principal: Principal, query, column):
    """``query`` limited to the customers (by ``column``, a cif) ``principal`` may open — every
    one for a system token."""
    scope = principal_cif_scope(session, principal, column)
    return query if scope is None else query.where(scope)


# --- customers ---------------------------------------------------------------------------------


def customer(session: Session, cif: str, principal: Principal | None = None) -> Customer | None:
    """The customer ``cif``; with ``principal``, only if the caller may open it (GraphQL — the
    REST routes check it per object before they run)."""
    query = select(Customer).where(Customer.cif == cif)
    if principal is not None:
        query = _visible(session, principal, query, Customer.cif)
    return session.scalar(query)


def customers_by_cif(session: Session, principal: Principal,
                     cifs: Sequence[str]) -> list[Customer]:
    """The customers of ``cifs`` the caller may open, by cif (unknown cifs are left out)."""
    query = select(Customer).where(Customer.cif.in_(cifs)).order_by(Customer.cif)
    return list(session.scalars(_visible(session, principal, query, Customer.cif)))


def customers_page(session: Session, principal: Principal, *, status: str | None,
                   customer_type: str | None, segment: str | None,
                   updated_since: datetime | None, after: str | None, limit: int) -> Page:
    """Customers the caller may open, by cif, after the cif ``after``."""
    query = _visible(session, principal, select(Customer).order_by(Customer.cif), Customer.cif)
    if status:
        query = query.where(Customer.status == status)
    if customer_type:
        query = query.where(Customer.type == customer_type)
    if segment:
        query = query.where(Customer.segment == segment)
    if updated_since:
        query = query.where(Customer.updated_at >= updated_since)
    if after:
        query = query.where(Customer.cif > after)
    return _page(session, query, limit, lambda c: c.cif)


# --- a customer's products and contacts (for one customer or a whole GraphQL response) ---------


def loans_of(session: Session, cifs: Sequence[str], *, status: str | None = None,
             bucket: str | None = None) -> list[Loan]:
    """Loans of ``cifs`` by cif, then account number."""
    query = select(Loan).where(Loan.cif.in_(cifs)).order_by(Loan.cif, Loan.account_number)
    if status:
        query = query.where(Loan.status == status)
    if bucket:
        query = query.where(Loan.bucket == bucket)
    return list(session.scalars(query))


def cards_of(session: Session, cifs: Sequence[str], *, status: str | None = None) -> list[Card]:
    """Card contracts of ``cifs`` by cif, then contract number."""
    query = select(Card).where(Card.cif.in_(cifs)).order_by(Card.cif, Card.contract_number)
    if status:
        query = query.where(Card.status == status)
    return list(session.scalars(query))


def _primary_first(session: Session, model, cifs: Sequence[str]) -> list:
    return list(session.scalars(select(model).where(model.cif.in_(cifs))
                                .order_by(model.cif, model.is_primary.desc(), model.id)))


def phones_of(session: Session, cifs: Sequence[str]) -> list[Phone]:
    """Phones of ``cifs`` by cif, the primary one first."""
    return _primary_first(session, Phone, cifs)


@dataclass(frozen=True)
class Contacts:
    phones: list[Phone]
    addresses: list[Address]
    emails: list[Email]


def contacts_of(session: Session, cif: str) -> Contacts:
    """A customer's contacts of record (bank and collection team), primary first."""
    return Contacts(phones_of(session, [cif]), _primary_first(session, Address, [cif]),
                    _primary_first(session, Email, [cif]))


def collaterals_of(session: Session, cif: str) -> list[tuple[Collateral, list[str]]]:
    """A customer's collaterals by number, each with the loan accounts it secures."""
    collaterals = list(session.scalars(select(Collateral).where(Collateral.cif == cif)
                                       .order_by(Collateral.collateral_number)))
    numbers = [c.collateral_number for c in collaterals]
    accounts: dict[str, list[str]] = {}
    for number, account in session.execute(
        select(LoanCollateral.collateral_number, LoanCollateral.account_number)
        .where(LoanCollateral.collateral_number.in_(numbers or [""]))
        .order_by(LoanCollateral.account_number)
    ):
        accounts.setdefault(number, []).append(account)
    return [(c, accounts.get(c.collateral_number, [])) for c in collaterals]


# --- cases -------------------------------------------------------------------------------------


def cases_of(session: Session, cifs: Sequence[str]) -> list[Case]:
    """The collection cases of ``cifs`` (a customer has at most one)."""
    return list(session.scalars(select(Case).where(Case.cif.in_(cifs))))


def case_of(session: Session, cif: str) -> Case | None:
    return next(iter(cases_of(session, [cif])), None)


def cases_page(session: Session, principal: Principal, *, status: str | None,
               assigned_agent: str | None, min_dpd: int | None, after: int | None,
               limit: int) -> Page:
    """Collection cases of the customers the caller may open, by id, after the id ``after``;
    ``assigned_agent`` is a username."""
    query = _visible(session, principal, select(Case).order_by(Case.id), Case.cif)
    if status:
        query = query.where(Case.status == status)
    if assigned_agent:
        query = query.where(Case.assigned_agent_id.in_(
            select(User.id).where(User.username == assigned_agent)))
    if min_dpd is not None:
        query = query.where(Case.max_dpd >= min_dpd)
    if after is not None:
        query = query.where(Case.id > after)
    return _page(session, query, limit, lambda k: str(k.id))


def agent_names(session: Session, ids) -> dict[int, str]:
    """Usernames by user id, for the agents named on cases (None ids are skipped)."""
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.username).where(User.id.in_(ids))).all())


# --- loans -------------------------------------------------------------------------------------


def loans_page(session: Session, principal: Principal, *, status: str | None,
               bucket: str | None, product_type: str | None, after: str | None,
               limit: int) -> Page:
    """Loans of the customers the caller may open, by account number, after ``after``."""
    query = _visible(session, principal, select(Loan).order_by(Loan.account_number), Loan.cif)
    if status:
        query = query.where(Loan.status == status)
    if bucket:
        query = query.where(Loan.bucket == bucket)
    if product_type:
        query = query.where(Loan.product_type == product_type)
    if after:
        query = query.where(Loan.account_number > after)
    return _page(session, query, limit, lambda ln: ln.account_number)


# --- a customer's history: actions, promises, payments -------------------------------------------


def _newest_first(session: Session, model, cif: str, after: int | None, limit: int,
                  *conditions) -> Page:
    """A customer's rows of ``model`` by id descending, below the id ``after``."""
    query = select(model).where(model.cif == cif, *conditions)
    if after is not None:
        query = query.where(model.id < after)
    return _page(session, query.order_by(model.id.desc()), limit, lambda row: str(row.id))


def actions_page(session: Session, cif: str, *, action_type: str | None,
                 since: datetime | None, after: int | None, limit: int) -> Page:
    conditions = [Action.type == action_type] if action_type else []
    if since:
        conditions.append(Action.at >= since)
    return _newest_first(session, Action, cif, after, limit, *conditions)


def promises_page(session: Session, cif: str, *, status: str | None, after: int | None,
                  limit: int) -> Page:
    return _newest_first(session, Promise, cif, after, limit,
                         *([Promise.status == status] if status else []))


def payments_page(session: Session, cif: str, *, status: str | None, after: int | None,
                  limit: int) -> Page:
    return _newest_first(session, Payment, cif, after, limit,
                         *([Payment.status == status] if status else []))


def _latest_per_cif(session: Session, model, cifs: Sequence[str], limit: int) -> list:
    """The ``limit`` newest rows of ``model`` per customer, in one query (window function)."""
    ranked = (select(model.id, func.row_number().over(
        partition_by=model.cif, order_by=model.id.desc()).label("n"))
        .where(model.cif.in_(cifs)).subquery())
    return list(session.scalars(select(model).join(ranked, ranked.c.id == model.id)
                                .where(ranked.c.n <= limit).order_by(model.id.desc())))


def latest_actions_of(session: Session, cifs: Sequence[str], limit: int) -> list[Action]:
    return _latest_per_cif(session, Action, cifs, limit)


def latest_promises_of(session: Session, cifs: Sequence[str], limit: int) -> list[Promise]:
    return _latest_per_cif(session, Promise, cifs, limit)


def latest_payments_of(session: Session, cifs: Sequence[str], limit: int) -> list[Payment]:
    return _latest_per_cif(session, Payment, cifs, limit)


def open_promises_of(session: Session, cifs: Sequence[str]) -> list[Promise]:
    """Promises still open of ``cifs``, by cif, then promised date."""
    return list(session.scalars(
        select(Promise).where(Promise.cif.in_(cifs), Promise.status.in_(OPEN_PROMISE_STATUSES))
        .order_by(Promise.cif, Promise.promised_date, Promise.id)))
