"""Read API for other bank systems: customer 360 under /api/v1 (scope ``api.cases``).

Every route here declares its OpenAPI description with ``@documented`` (summary, query
parameters, response schema name); portal/api/openapi.py builds /api/v1/openapi.json from the
URL map and these declarations, so the document is generated from what the code does.
Lists are paged by keyset: ``limit`` (1..200, default 50) and ``after`` (the ``next_cursor`` of
the previous page). National ids and phone numbers are masked unless the principal's role has
``customers.view_pii`` (system tokens without a user never do). The routes parse their
parameters, read through portal/api/queries.py (shared with GraphQL) and shape the JSON with
portal/api/serialize.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from flask import g, jsonify, request

from portal.api import queries
from portal.api.serialize import (
    action_json,
    card_json,
    case_json,
    collateral_json,
    contacts_json,
    customer_json,
    loan_json,
    may_view_pii,
    page_json,
    payment_json,
    promise_json,
)
from portal.api.views import bp
from portal.extensions import db
from portal.models.enums import (
    ACTION_TYPES,
    BUCKET_NAMES,
    CARD_STATUSES,
    CASE_STATUSES,
    CUSTOMER_STATUSES,
    CUSTOMER_TYPES,
    LOAN_STATUSES,
    PAYMENT_STATUSES,
    PROMISE_STATUSES,
)
from portal.permissions.decorators import api_error, api_permission_required

MAX_LIMIT = 200
DEFAULT_LIMIT = 50
SCOPE = "api.cases"


# --- declarations read by the OpenAPI builder ----------------------------------------------------


@dataclass(frozen=True)
class Param:
    name: str
    schema: dict
    description: str


LIMIT = Param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                        "default": DEFAULT_LIMIT}, "Page size (at most 200).")


def AFTER(what: str, numeric: bool = False) -> Param:  # noqa: N802
    schema = {"type": "string", "pattern": "^[0-9]{1,18}$"} if numeric else \
        {"type": "string", "maxLength": 64}
    return Param("after", schema, f"Cursor: the next_cursor of the previous page ({what}).")


def enum(name: str, values, description: str) -> Param:
    return Param(name, {"type": "string", "enum": list(values)}, description)


def documented(summary: str, response: str, params: tuple[Param, ...] = (),
               paged: bool = False, not_found: bool = False):
    def decorator(view):
        view._openapi = {"summary": summary, "response": response, "params": params,
                         "paged": paged, "not_found": not_found,
                         "description": (view.__doc__ or "").strip()}
        return view

    return decorator


class BadParameter(ValueError):
    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = name


@bp.errorhandler(BadParameter)
def _bad_parameter(error: BadParameter):
    return api_error(400, "invalid_parameter", f"{error.name}: {error}")


def _declared(view) -> dict[str, Param]:
    return {p.name: p for p in view._openapi["params"]}


def args_for(view) -> dict:
    """Query parameters of ``view`` parsed and checked against its declaration; unknown
    parameters are refused, so the document and the code cannot drift apart."""
    declared = _declared(view)
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str) and ("\x00" in value or len(value) > 64):
            raise BadParameter(name, "not a valid identifier")
    for name, value in request.args.items(multi=True):
        if "\x00" in value:
            raise BadParameter(name, "contains a NUL character")
    unknown = sorted(set(request.args) - set(declared))
    if unknown:
        raise BadParameter(unknown[0], f"unknown parameter (known: {', '.join(declared)})")
    values = {}
    for name, param in declared.items():
        raw = request.args.get(name)
        if raw is None:
            values[name] = param.schema.get("default")
            continue
        schema = param.schema
        if schema.get("type") == "integer":
            try:
                value = int(raw)
            except ValueError:
                raise BadParameter(name, "must be an integer") from None
            if value < schema.get("minimum", value) or value > schema.get("maximum", value):
                raise BadParameter(name, f"must be between {schema.get('minimum')} and "
                                         f"{schema.get('maximum')}")
        elif schema.get("format") == "date-time":
            try:
                value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                raise BadParameter(name, "must be an ISO 8601 date-time") from None
            if value.tzinfo is None:
                raise BadParameter(name, "must carry a time zone (e.g. Z)")
        else:
            if "enum" in schema and raw not in schema["enum"]:
                raise BadParameter(name, f"must be one of {', '.join(schema['enum'])}")
            if len(raw) > schema.get("maxLength", 200):
                raise BadParameter(name, "too long")
            if "pattern" in schema and not re.search(schema["pattern"], raw):
                raise BadParameter(name, f"must match {schema['pattern']}")
            value = raw
        values[name] = value
    return values


def _int_cursor(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or len(value) > 18:
        raise BadParameter("after", "not a cursor of this list")
    return int(value)


def _not_found(cif: str):
    return api_error(404, "not_found", f"No customer with cif {cif}.")


# --- routes -----------------------------------------------------------------------------------


@bp.get("/customers")
@api_permission_required(SCOPE)
@documented("List customers", "CustomerPage", (
    enum("status", CUSTOMER_STATUSES, "Customer status."),
    enum("type", CUSTOMER_TYPES, "Individual or organisation."),
    Param("segment", {"type": "string", "maxLength": 32}, "Customer segment."),
    Param("updated_since", {"type": "string", "format": "date-time"},
          "Only customers changed at or after this time."),
    LIMIT, AFTER("cif")), paged=True)
def list_customers():
    """Customers ordered by cif."""
    a = args_for(list_customers)
    found = queries.customers_page(
        db.session, g.api_principal, status=a["status"], customer_type=a["type"],
        segment=a["segment"], updated_since=a["updated_since"], after=a["after"],
        limit=a["limit"])
    pii = may_view_pii(g.api_principal)
    return jsonify(page_json(found, lambda c: customer_json(c, pii)))


@bp.get("/customers/<cif>")
@api_permission_required(SCOPE)
@documented("One customer", "Customer", not_found=True)
def get_customer(cif: str):
    """A customer by cif."""
    args_for(get_customer)
    customer = queries.customer(db.session, cif)
    if customer is None:
        return _not_found(cif)
    return jsonify(customer_json(customer, may_view_pii(g.api_principal)))


@bp.get("/customers/<cif>/contacts")
@api_permission_required(SCOPE)
@documented("A customer's phones, addresses and emails", "Contacts", not_found=True)
def get_contacts(cif: str):
    """Contacts of record (bank and collection team), primary first."""
    args_for(get_contacts)
    if queries.customer(db.session, cif) is None:
        return _not_found(cif)
    pii = may_view_pii(g.api_principal)
    return jsonify(contacts_json(cif, queries.contacts_of(db.session, cif), pii))


@bp.get("/customers/<cif>/loans")
@api_permission_required(SCOPE)
@documented("A customer's loans", "LoanList", (
    enum("status", LOAN_STATUSES, "Loan status."),
    enum("bucket", BUCKET_NAMES, "DPD bucket.")), not_found=True)
def get_loans(cif: str):
    """Loans of the customer (T24), by account number."""
    a = args_for(get_loans)
    if queries.customer(db.session, cif) is None:
        return _not_found(cif)
    loans = queries.loans_of(db.session, [cif], status=a["status"], bucket=a["bucket"])
    return jsonify({"data": [loan_json(x) for x in loans]})


@bp.get("/customers/<cif>/cards")
@api_permission_required(SCOPE)
@documented("A customer's cards", "CardList", (enum("status", CARD_STATUSES, "Card status."),),
            not_found=True)
def get_cards(cif: str):
    """Card contracts of the customer (W4)."""
    a = args_for(get_cards)
    if queries.customer(db.session, cif) is None:
        return _not_found(cif)
    cards = queries.cards_of(db.session, [cif], status=a["status"])
    return jsonify({"data": [card_json(x) for x in cards]})


@bp.get("/customers/<cif>/collaterals")
@api_permission_required(SCOPE)
@documented("A customer's collaterals", "CollateralList", not_found=True)
def get_collaterals(cif: str):
    """Collaterals of the customer with the loan accounts they secure."""
    args_for(get_collaterals)
    if queries.customer(db.session, cif) is None:
        return _not_found(cif)
    return jsonify({"data": [collateral_json(c, accounts)
                             for c, accounts in queries.collaterals_of(db.session, cif)]})


@bp.get("/customers/<cif>/case")
@api_permission_required(SCOPE)
@documented("A customer's collection case", "Case", not_found=True)
def get_case(cif: str):
    """The collection case of the customer (404 when there is none)."""
    args_for(get_case)
    case = queries.case_of(db.session, cif)
    if case is None:
        return api_error(404, "not_found", f"No case for cif {cif}.")
    agents = queries.agent_names(db.session, [case.assigned_agent_id,
                                              case.assigned_field_agent_id])
    return jsonify(case_json(case, agents))


@bp.get("/customers/<cif>/actions")
@api_permission_required(SCOPE)
@documented("A customer's actions, newest first", "ActionPage", (
    enum("type", (*ACTION_TYPES, "SYSTEM"), "Action type."),
    Param("since", {"type": "string", "format": "date-time"}, "Actions at or after this time."),
    LIMIT, AFTER("action id", numeric=True)), paged=True, not_found=True)
def get_actions(cif: str):
    """Calls, visits and other actions recorded on the customer, by id descending."""
    a = args_for(get_actions)
    if queries.customer(db.session, cif) is None:
        return _not_found(cif)
    found = queries.actions_page(db.session, cif, action_type=a["type"], since=a["since"],
                                 after=_int_cursor(a["after"]), limit=a["limit"])
    return jsonify(page_json(found, action_json))


@bp.get("/customers/<cif>/promises")
@api_permission_required(SCOPE)
@documented("A customer's promises to pay, newest first", "PromisePage", (
    enum("status", PROMISE_STATUSES, "Promise status."), LIMIT, AFTER("promise id", numeric=True)),
    paged=True, not_found=True)
def get_promises(cif: str):
    """Promises to pay of the customer, by id descending."""
    a = args_for(get_promises)
    if queries.customer(db.session, cif) is None:
        return _not_found(cif)
    found = queries.promises_page(db.session, cif, status=a["status"],
                                  after=_int_cursor(a["after"]), limit=a["limit"])
    return jsonify(page_json(found, promise_json))


@bp.get("/customers/<cif>/payments")
@api_permission_required(SCOPE)
@documented("A customer's payments, newest first", "PaymentPage", (
    enum("status", PAYMENT_STATUSES, "Payment status."), LIMIT, AFTER("payment id", numeric=True)),
    paged=True, not_found=True)
def get_payments(cif: str):
    """Payments of the customer from the payment system, by id descending."""
    a = args_for(get_payments)
    if queries.customer(db.session, cif) is None:
        return _not_found(cif)
    found = queries.payments_page(db.session, cif, status=a["status"],
                                  after=_int_cursor(a["after"]), limit=a["limit"])
    return jsonify(page_json(found, payment_json))


@bp.get("/cases")
@api_permission_required(SCOPE)
@documented("List collection cases", "CasePage", (
    enum("status", CASE_STATUSES, "Case status."),
    Param("assigned_agent", {"type": "string", "maxLength": 64},
          "Username of the assigned call agent."),
    Param("min_dpd", {"type": "integer", "minimum": 0, "maximum": 100000},
          "Only cases whose highest DPD is at least this."),
    LIMIT, AFTER("case id", numeric=True)), paged=True)
def list_cases():
    """Collection cases by id."""
    a = args_for(list_cases)
    found = queries.cases_page(
        db.session, g.api_principal, status=a["status"], assigned_agent=a["assigned_agent"],
        min_dpd=a["min_dpd"], after=_int_cursor(a["after"]), limit=a["limit"])
    agents = queries.agent_names(db.session, [k.assigned_agent_id for k in found.rows]
                                 + [k.assigned_field_agent_id for k in found.rows])
    return jsonify(page_json(found, lambda k: case_json(k, agents)))


@bp.get("/loans")
@api_permission_required(SCOPE)
@documented("List loans", "LoanPage", (
    enum("status", LOAN_STATUSES, "Loan status."),
    enum("bucket", BUCKET_NAMES, "DPD bucket."),
    Param("product_type", {"type": "string", "maxLength": 32}, "Loan product type."),
    LIMIT, AFTER("account number")), paged=True)
def list_loans():
    """Loans ordered by account number."""
    a = args_for(list_loans)
    found = queries.loans_page(
        db.session, g.api_principal, status=a["status"], bucket=a["bucket"],
        product_type=a["product_type"], after=a["after"], limit=a["limit"])
    return jsonify(page_json(found, loan_json))
