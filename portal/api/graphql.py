"""Read-only GraphQL endpoint ``/api/graphql`` (strawberry) over the customer 360.

Same authentication, scope (``api.cases``) and PII masking as the REST read API; no mutations.
Queries deeper than ``GRAPHQL_MAX_DEPTH`` or costlier than ``GRAPHQL_MAX_COST`` are refused
before execution with a clear error. Lists are loaded in batches: the first customer that asks
for its loans loads the loans of every customer of the response in one query (the ``Batch``
in the request context), so a query costs a fixed number of SQL statements whatever the number
of customers (no N+1). The reads are portal/api/queries.py's, shared with the REST routes.

Example::

    { customer(cif: "CIF00000001") { name loans { accountNumber dpd bucket }
      openPromises { amount promisedDate } lastActions(limit: 5) { type result at } } }
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date, datetime

import strawberry
from flask import Blueprint, current_app, g
from graphql import GraphQLError, ValidationRule
from graphql.language import FieldNode, FragmentSpreadNode, InlineFragmentNode
from sqlalchemy.orm import Session
from strawberry.extensions import AddValidationRules, QueryDepthLimiter
from strawberry.flask.views import GraphQLView
from strawberry.types import Info

from portal.api import queries
from portal.api.serialize import may_view_pii, shown_national_id, shown_phone
from portal.extensions import db
from portal.models import Customer, Loan, Promise
from portal.money import decimal_text
from portal.permissions.decorators import api_permission_required

graphql_bp = Blueprint("graphql", __name__, url_prefix="/api")

MAX_DEPTH = 5  # customers { loans { ... } } is 3; room for fragments, not for abuse
MAX_COST = 5000
MAX_CUSTOMERS = 100
MAX_LIST = 100
# the size a list field is assumed to have when it takes no ``limit`` argument (cost only)
LIST_SIZES = {"customers": 20, "loans": 5, "cards": 3, "phones": 3, "openPromises": 5,
              "promises": 10, "lastActions": 10, "payments": 10}


# --- batched loading (one query per relation per request) -------------------------------------


class Batch:
    """Loads a relation for every customer of the response at once, on first use."""

    def __init__(self, session: Session, pii: bool):
        self.session = session
        self.pii = pii
        self.cifs: list[str] = []
        self.cache: dict[str, dict] = {}

    def register(self, customers: list[Customer]) -> None:
        self.cifs.extend(c.cif for c in customers)

    def get(self, relation: str, cif: str, load: Callable[..., Sequence], *args) -> list:
        """The rows of ``relation`` of ``cif``; ``load(session, cifs, *args)`` reads them."""
        if relation not in self.cache:
            grouped: dict[str, list] = defaultdict(list)
            for row in load(self.session, self.cifs or [cif], *args):
                grouped[row.cif].append(row)
            self.cache[relation] = grouped
        return self.cache[relation].get(cif, [])

    def agent_names(self) -> dict[int, str]:
        """Usernames of the agents assigned to the cases loaded so far, read once."""
        if "agents" not in self.cache:
            ids = [rows[0].assigned_agent_id for rows in self.cache["case"].values() if rows]
            self.cache["agents"] = queries.agent_names(self.session, ids)
        return self.cache["agents"]


def _batch(info: Info) -> Batch:
    return info.context["batch"]


# --- types ------------------------------------------------------------------------------------


@strawberry.type
class LoanT:
    account_number: str
    product_type: str
    currency: str
    outstanding: str
    due_amount: str
    dpd: int
    bucket: str
    status: str
    next_payment_date: date | None


@strawberry.type
class CardT:
    contract_number: str
    masked_card_number: str
    outstanding: str
    min_due: str
    days_overdue: int
    bucket: str
    status: str


@strawberry.type
class PhoneT:
    type: str
    number: str
    is_primary: bool
    do_not_contact: bool


@strawberry.type
class PromiseT:
    id: int
    account_number: str | None
    amount: str
    promised_date: date
    status: str
    paid_amount: str


@strawberry.type
class ActionT:
    id: int
    type: str
    subtype: str | None
    result: str | None
    at: datetime
    notes: str | None


@strawberry.type
class PaymentT:
    reference_number: str
    account_number: str
    amount: str
    paid_at: datetime
    status: str


@strawberry.type
class CaseT:
    status: str
    priority: int
    max_dpd: int
    total_overdue: str
    assigned_agent: str | None


def _loan(x: Loan) -> LoanT:
    return LoanT(account_number=x.account_number, product_type=x.product_type,
                 currency=x.currency, outstanding=decimal_text(x.outstanding),
                 due_amount=decimal_text(x.due_amount), dpd=x.dpd, bucket=x.bucket,
                 status=x.status, next_payment_date=x.next_payment_date)


def _promise(p: Promise) -> PromiseT:
    return PromiseT(id=p.id, account_number=p.account_number, amount=decimal_text(p.amount),
                    promised_date=p.promised_date, status=p.status,
                    paid_amount=decimal_text(p.paid_amount))


def _limit(value: int) -> int:
    if value < 1 or value > MAX_LIST:
        raise GraphQLError(f"limit must be between 1 and {MAX_LIST}.")
    return value


@strawberry.type
class CustomerT:
    cif: str
    name: str
    type: str
    status: str
    segment: str | None
    national_id: str | None

    @strawberry.field
    def loans(self, info: Info) -> list[LoanT]:
        rows = _batch(info).get("loans", self.cif, queries.loans_of)
        return [_loan(x) for x in rows]

    @strawberry.field
    def cards(self, info: Info) -> list[CardT]:
        rows = _batch(info).get("cards", self.cif, queries.cards_of)
        return [CardT(contract_number=c.contract_number,
                      masked_card_number=c.masked_card_number,
                      outstanding=decimal_text(c.outstanding), min_due=decimal_text(c.min_due),
                      days_overdue=c.days_overdue, bucket=c.bucket, status=c.status)
                for c in rows]

    @strawberry.field
    def phones(self, info: Info) -> list[PhoneT]:
        batch = _batch(info)
        rows = batch.get("phones", self.cif, queries.phones_of)
        return [PhoneT(type=p.type, number=shown_phone(p, batch.pii),
                       is_primary=p.is_primary, do_not_contact=p.do_not_contact) for p in rows]

    @strawberry.field
    def open_promises(self, info: Info) -> list[PromiseT]:
        rows = _batch(info).get("open_promises", self.cif, queries.open_promises_of)
        return [_promise(p) for p in rows]

    @strawberry.field
    def promises(self, info: Info, limit: int = 10) -> list[PromiseT]:
        limit = _limit(limit)
        rows = _batch(info).get(f"promises:{limit}", self.cif, queries.latest_promises_of,
                                limit)
        return [_promise(p) for p in rows]

    @strawberry.field
    def last_actions(self, info: Info, limit: int = 10) -> list[ActionT]:
        limit = _limit(limit)
        rows = _batch(info).get(f"actions:{limit}", self.cif, queries.latest_actions_of, limit)
        return [ActionT(id=a.id, type=a.type, subtype=a.subtype, result=a.result, at=a.at,
                        notes=a.notes) for a in rows]

    @strawberry.field
    def payments(self, info: Info, limit: int = 10) -> list[PaymentT]:
        limit = _limit(limit)
        rows = _batch(info).get(f"payments:{limit}", self.cif, queries.latest_payments_of,
                                limit)
        return [PaymentT(reference_number=p.reference_number, account_number=p.account_number,
                         amount=decimal_text(p.amount), paid_at=p.paid_at, status=p.status)
                for p in rows]

    @strawberry.field(name="case")
    def case(self, info: Info) -> CaseT | None:
        rows = _batch(info).get("case", self.cif, queries.cases_of)
        if not rows:
            return None
        k = rows[0]
        agents = _batch(info).agent_names()
        return CaseT(status=k.status, priority=k.priority, max_dpd=k.max_dpd,
                     total_overdue=decimal_text(k.total_overdue),
                     assigned_agent=agents.get(k.assigned_agent_id))


def _customer(c: Customer, pii: bool) -> CustomerT:
    return CustomerT(cif=c.cif, name=c.name, type=c.type, status=c.status, segment=c.segment,
                     national_id=shown_national_id(c.national_id, pii))


def _check_cifs(cifs: list[str]) -> None:
    for cif in cifs:
        if "\x00" in cif or len(cif) > 64:
            raise GraphQLError("A cif is at most 64 characters, without NUL characters.")


@strawberry.type
class Query:
    @strawberry.field
    def customer(self, info: Info, cif: str) -> CustomerT | None:
        _check_cifs([cif])
        row = queries.customer(db.session, cif, principal=info.context["principal"])
        if row is None:
            return None
        _batch(info).register([row])
        return _customer(row, _batch(info).pii)

    @strawberry.field
    def customers(self, info: Info, cifs: list[str]) -> list[CustomerT]:
        if len(cifs) > MAX_CUSTOMERS:
            raise GraphQLError(f"At most {MAX_CUSTOMERS} cifs per query.")
        _check_cifs(cifs)
        rows = queries.customers_by_cif(db.session, info.context["principal"], cifs)
        _batch(info).register(rows)
        return [_customer(c, _batch(info).pii) for c in rows]


# --- limits -----------------------------------------------------------------------------------


def query_cost(node, fragments, multiplier_default: int = 1) -> int:
    """Cost of a selection set: each field costs 1, plus its sub-selection times the list size
    (its ``limit`` argument, ``cifs`` length, or the assumed size in LIST_SIZES)."""
    total = 0
    selection_set = getattr(node, "selection_set", None)
    if selection_set is None:
        return 0
    for sel in selection_set.selections:
        if isinstance(sel, FieldNode):
            size = LIST_SIZES.get(sel.name.value, 1)
            for arg in sel.arguments or ():
                if arg.name.value == "limit" and hasattr(arg.value, "value"):
                    with contextlib.suppress(TypeError, ValueError):
                        size = int(arg.value.value)
                if arg.name.value == "cifs" and hasattr(arg.value, "values"):
                    size = len(arg.value.values)
            total += 1 + size * query_cost(sel, fragments)
        elif isinstance(sel, InlineFragmentNode):
            total += query_cost(sel, fragments)
        elif isinstance(sel, FragmentSpreadNode):
            fragment = fragments.get(sel.name.value)
            if fragment is not None:
                total += query_cost(fragment, fragments)
    return total


class CostLimitRule(ValidationRule):
    def enter_operation_definition(self, node, *_args):
        fragments = {f.name.value: f for f in self.context.document.definitions
                     if f.kind == "fragment_definition"}
        cost = query_cost(node, fragments)
        limit = current_app.config.get("GRAPHQL_MAX_COST", MAX_COST)
        if cost > limit:
            self.report_error(GraphQLError(
                f"Query cost {cost} exceeds the limit of {limit}: ask for fewer customers or "
                "smaller lists (limit arguments).", node))


schema = strawberry.Schema(
    query=Query,
    extensions=[lambda: QueryDepthLimiter(
                    max_depth=current_app.config.get("GRAPHQL_MAX_DEPTH", MAX_DEPTH)),
                lambda: AddValidationRules([CostLimitRule])],
)


class PortalGraphQLView(GraphQLView):
    def get_context(self, request, response):
        principal = g.api_principal
        return {"batch": Batch(db.session, may_view_pii(principal)), "principal": principal,
                "request": request, "response": response}


_view = PortalGraphQLView.as_view("endpoint", schema=schema, graphql_ide=None,
                                  allow_queries_via_get=True)


@graphql_bp.route("/graphql", methods=["GET", "POST"])
@api_permission_required("api.cases")
def endpoint():
    """GraphQL (read-only) over customers, loans, cards, promises, actions and payments."""
    g.api_graphql = True
    return _view()
