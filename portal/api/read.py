"""Read API for other bank systems: customer 360 under /api/v1 (scope ``api.cases``).

Every route here declares its OpenAPI description with ``@documented`` (summary, query
parameters, response schema name); portal/api/openapi.py builds /api/v1/openapi.json from the
URL map and these declarations, so the document is generated from what the code does.
Lists are paged by keyset: ``limit`` (1..200, default 50) and ``after`` (the ``next_cursor`` of
the previous page). National ids and phone numbers are masked unless the principal's role has
``customers.view_pii`` (system tokens without a user never do).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from flask import g, jsonify, request
from sqlalchemy import select

from portal.api.views import bp
from portal.extensions import db
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
from portal.money import decimal_text
from portal.permissions.decorators import api_error, api_permission_required
from portal.permissions.roles import permissions_for_role
from portal.permissions.scopes import principal_cif_scope
from portal.text import mask_national_id, mask_phone

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


# --- serialisation (one function per resource; schemas in portal/api/openapi.py) -----------------


def view_pii() -> bool:
    principal = g.api_principal
    return "customers.view_pii" in permissions_for_role(principal.role)


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _num(value) -> float | None:
    return None if value is None else float(value)


def customer_json(c: Customer, pii: bool) -> dict:
    return {
        "cif": c.cif, "type": c.type, "name": c.name, "date_of_birth": _iso(c.date_of_birth),
        "national_id": c.national_id if pii else (mask_national_id(c.national_id) or None),
        "gender": c.gender, "company_name": c.company_name, "segment": c.segment,
        "status": c.status, "source_system": c.source_system,
        "last_synced_at": _iso(c.last_synced_at), "updated_at": _iso(c.updated_at),
    }


def phone_json(p: Phone, pii: bool) -> dict:
    return {"id": p.id, "type": p.type,
            "number": p.number if pii else mask_phone(p.number),
            "is_primary": p.is_primary, "is_verified": p.is_verified,
            "do_not_contact": p.do_not_contact, "source_system": p.source_system}


def address_json(a: Address) -> dict:
    return {"id": a.id, "type": a.type, "line1": a.line1, "line2": a.line2, "ward": a.ward,
            "district": a.district, "city": a.city, "province": a.province,
            "country": a.country, "lat": _num(a.lat), "lon": _num(a.lon),
            "is_primary": a.is_primary, "is_verified": a.is_verified,
            "source_system": a.source_system}


def email_json(e: Email) -> dict:
    return {"id": e.id, "type": e.type, "address": e.address, "is_primary": e.is_primary,
            "is_verified": e.is_verified, "source_system": e.source_system}


def loan_json(ln: Loan) -> dict:
    return {"account_number": ln.account_number, "cif": ln.cif,
            "product_type": ln.product_type, "currency": ln.currency,
            "original_amount": decimal_text(ln.original_amount),
            "outstanding": decimal_text(ln.outstanding),
            "due_amount": decimal_text(ln.due_amount), "min_pay": decimal_text(ln.min_pay),
            "next_payment_date": _iso(ln.next_payment_date), "dpd": ln.dpd,
            "bucket": ln.bucket, "status": ln.status,
            "disbursement_date": _iso(ln.disbursement_date),
            "maturity_date": _iso(ln.maturity_date), "source_system": ln.source_system}


def card_json(c: Card) -> dict:
    return {"contract_number": c.contract_number, "cif": c.cif,
            "masked_card_number": c.masked_card_number, "product": c.product,
            "currency": c.currency, "credit_limit": decimal_text(c.credit_limit),
            "outstanding": decimal_text(c.outstanding), "min_due": decimal_text(c.min_due),
            "due_date": _iso(c.due_date), "days_overdue": c.days_overdue, "bucket": c.bucket,
            "status": c.status}


def collateral_json(c: Collateral, accounts: list[str]) -> dict:
    return {"collateral_number": c.collateral_number, "cif": c.cif, "type": c.type,
            "description": c.description, "value": decimal_text(c.value), "currency": c.currency,
            "valuation_date": _iso(c.valuation_date), "accounts": accounts}


def case_json(k: Case, agents: dict[int, str]) -> dict:
    return {"id": k.id, "cif": k.cif, "status": k.status,
            "processing_state": k.processing_state, "priority": k.priority,
            "max_dpd": k.max_dpd, "total_overdue": decimal_text(k.total_overdue),
            "total_outstanding": decimal_text(k.total_outstanding),
            "assigned_agent": agents.get(k.assigned_agent_id),
            "assigned_field_agent": agents.get(k.assigned_field_agent_id),
            "next_action_at": _iso(k.next_action_at), "last_contact_at": _iso(k.last_contact_at)}


def action_json(a: Action) -> dict:
    return {"id": a.id, "cif": a.cif, "account_number": a.account_number, "type": a.type,
            "subtype": a.subtype, "result": a.result, "at": _iso(a.at), "agent_id": a.agent_id,
            "notes": a.notes, "source": a.source, "follow_up_date": _iso(a.follow_up_date)}


def promise_json(p: Promise) -> dict:
    return {"id": p.id, "cif": p.cif, "account_number": p.account_number,
            "amount": decimal_text(p.amount), "currency": p.currency,
            "promised_date": _iso(p.promised_date), "status": p.status,
            "paid_amount": decimal_text(p.paid_amount), "agent_id": p.agent_id,
            "created_at": _iso(p.created_at), "resolved_at": _iso(p.resolved_at)}


def payment_json(p: Payment) -> dict:
    return {"id": p.id, "reference_number": p.reference_number, "cif": p.cif,
            "account_number": p.account_number, "amount": decimal_text(p.amount),
            "currency": p.currency, "paid_at": _iso(p.paid_at), "channel": p.channel,
            "status": p.status, "source": p.source}


def agent_names(ids) -> dict[int, str]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return dict(db.session.execute(select(User.id, User.username).where(User.id.in_(ids))).all())


def page(items: list[dict], limit: int, cursor_of) -> dict:
    more = len(items) > limit
    items = items[:limit]
    return {"data": items, "limit": limit,
            "next_cursor": cursor_of(items[-1]) if more and items else None}


def visible(query, column):
    """``query`` limited to the customers (by ``column``, a cif) the caller may open — every one
    for a system token (the REST lists and GraphQL)."""
    scope = principal_cif_scope(db.session, g.api_principal, column)
    return query if scope is None else query.where(scope)


def _newest_first(model, cif: str, a: dict, to_json, *conditions):
    """A customer's rows of ``model``, by id descending, filtered by ``conditions`` (None:
    no filter), paged by the numeric ``after`` cursor: the JSON page."""
    q = select(model).where(model.cif == cif, *(c for c in conditions if c is not None))
    after = _int_cursor(a["after"])
    if after is not None:
        q = q.where(model.id < after)
    q = q.order_by(model.id.desc()).limit(a["limit"] + 1)
    rows = [to_json(x) for x in db.session.scalars(q)]
    return jsonify(page(rows, a["limit"], lambda r: str(r["id"])))


def _customer_or_404(cif: str) -> Customer | None:
    return db.session.scalar(select(Customer).where(Customer.cif == cif))


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
    q = visible(select(Customer).order_by(Customer.cif), Customer.cif)
    if a["status"]:
        q = q.where(Customer.status == a["status"])
    if a["type"]:
        q = q.where(Customer.type == a["type"])
    if a["segment"]:
        q = q.where(Customer.segment == a["segment"])
    if a["updated_since"]:
        q = q.where(Customer.updated_at >= a["updated_since"])
    if a["after"]:
        q = q.where(Customer.cif > a["after"])
    pii = view_pii()
    rows = [customer_json(c, pii) for c in db.session.scalars(q.limit(a["limit"] + 1))]
    return jsonify(page(rows, a["limit"], lambda r: r["cif"]))


@bp.get("/customers/<cif>")
@api_permission_required(SCOPE)
@documented("One customer", "Customer", not_found=True)
def get_customer(cif: str):
    """A customer by cif."""
    args_for(get_customer)
    customer = _customer_or_404(cif)
    if customer is None:
        return _not_found(cif)
    return jsonify(customer_json(customer, view_pii()))


@bp.get("/customers/<cif>/contacts")
@api_permission_required(SCOPE)
@documented("A customer's phones, addresses and emails", "Contacts", not_found=True)
def get_contacts(cif: str):
    """Contacts of record (bank and collection team), primary first."""
    args_for(get_contacts)
    if _customer_or_404(cif) is None:
        return _not_found(cif)
    pii = view_pii()

    def of(model):
        return db.session.scalars(select(model).where(model.cif == cif)
                                  .order_by(model.is_primary.desc(), model.id))

    return jsonify({"cif": cif, "phones": [phone_json(p, pii) for p in of(Phone)],
                    "addresses": [address_json(a) for a in of(Address)],
                    "emails": [email_json(e) for e in of(Email)]})


@bp.get("/customers/<cif>/loans")
@api_permission_required(SCOPE)
@documented("A customer's loans", "LoanList", (
    enum("status", LOAN_STATUSES, "Loan status."),
    enum("bucket", BUCKET_NAMES, "DPD bucket.")), not_found=True)
def get_loans(cif: str):
    """Loans of the customer (T24), by account number."""
    a = args_for(get_loans)
    if _customer_or_404(cif) is None:
        return _not_found(cif)
    q = select(Loan).where(Loan.cif == cif).order_by(Loan.account_number)
    if a["status"]:
        q = q.where(Loan.status == a["status"])
    if a["bucket"]:
        q = q.where(Loan.bucket == a["bucket"])
    return jsonify({"data": [loan_json(x) for x in db.session.scalars(q)]})


@bp.get("/customers/<cif>/cards")
@api_permission_required(SCOPE)
@documented("A customer's cards", "CardList", (enum("status", CARD_STATUSES, "Card status."),),
            not_found=True)
def get_cards(cif: str):
    """Card contracts of the customer (W4)."""
    a = args_for(get_cards)
    if _customer_or_404(cif) is None:
        return _not_found(cif)
    q = select(Card).where(Card.cif == cif).order_by(Card.contract_number)
    if a["status"]:
        q = q.where(Card.status == a["status"])
    return jsonify({"data": [card_json(x) for x in db.session.scalars(q)]})


@bp.get("/customers/<cif>/collaterals")
@api_permission_required(SCOPE)
@documented("A customer's collaterals", "CollateralList", not_found=True)
def get_collaterals(cif: str):
    """Collaterals of the customer with the loan accounts they secure."""
    args_for(get_collaterals)
    if _customer_or_404(cif) is None:
        return _not_found(cif)
    rows = list(db.session.scalars(select(Collateral).where(Collateral.cif == cif)
                                   .order_by(Collateral.collateral_number)))
    links: dict[str, list[str]] = {}
    for number, account in db.session.execute(
        select(LoanCollateral.collateral_number, LoanCollateral.account_number)
        .where(LoanCollateral.collateral_number.in_([c.collateral_number for c in rows] or [""]))
        .order_by(LoanCollateral.account_number)
    ):
        links.setdefault(number, []).append(account)
    return jsonify({"data": [collateral_json(c, links.get(c.collateral_number, []))
                             for c in rows]})


@bp.get("/customers/<cif>/case")
@api_permission_required(SCOPE)
@documented("A customer's collection case", "Case", not_found=True)
def get_case(cif: str):
    """The collection case of the customer (404 when there is none)."""
    args_for(get_case)
    case = db.session.scalar(select(Case).where(Case.cif == cif))
    if case is None:
        return api_error(404, "not_found", f"No case for cif {cif}.")
    return jsonify(case_json(case, agent_names([case.assigned_agent_id,
                                                case.assigned_field_agent_id])))


@bp.get("/customers/<cif>/actions")
@api_permission_required(SCOPE)
@documented("A customer's actions, newest first", "ActionPage", (
    enum("type", (*ACTION_TYPES, "SYSTEM"), "Action type."),
    Param("since", {"type": "string", "format": "date-time"}, "Actions at or after this time."),
    LIMIT, AFTER("action id", numeric=True)), paged=True, not_found=True)
def get_actions(cif: str):
    """Calls, visits and other actions recorded on the customer, by id descending."""
    a = args_for(get_actions)
    if _customer_or_404(cif) is None:
        return _not_found(cif)
    return _newest_first(Action, cif, a, action_json,
                         Action.type == a["type"] if a["type"] else None,
                         Action.at >= a["since"] if a["since"] else None)


@bp.get("/customers/<cif>/promises")
@api_permission_required(SCOPE)
@documented("A customer's promises to pay, newest first", "PromisePage", (
    enum("status", PROMISE_STATUSES, "Promise status."), LIMIT, AFTER("promise id", numeric=True)),
    paged=True, not_found=True)
def get_promises(cif: str):
    """Promises to pay of the customer, by id descending."""
    a = args_for(get_promises)
    if _customer_or_404(cif) is None:
        return _not_found(cif)
    return _newest_first(Promise, cif, a, promise_json,
                         Promise.status == a["status"] if a["status"] else None)


@bp.get("/customers/<cif>/payments")
@api_permission_required(SCOPE)
@documented("A customer's payments, newest first", "PaymentPage", (
    enum("status", PAYMENT_STATUSES, "Payment status."), LIMIT, AFTER("payment id", numeric=True)),
    paged=True, not_found=True)
def get_payments(cif: str):
    """Payments of the customer from the payment system, by id descending."""
    a = args_for(get_payments)
    if _customer_or_404(cif) is None:
        return _not_found(cif)
    return _newest_first(Payment, cif, a, payment_json,
                         Payment.status == a["status"] if a["status"] else None)


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
    q = visible(select(Case).order_by(Case.id), Case.cif)
    if a["status"]:
        q = q.where(Case.status == a["status"])
    if a["assigned_agent"]:
        q = q.where(Case.assigned_agent_id.in_(select(User.id).where(
            User.username == a["assigned_agent"])))
    if a["min_dpd"] is not None:
        q = q.where(Case.max_dpd >= a["min_dpd"])
    after = _int_cursor(a["after"])
    if after is not None:
        q = q.where(Case.id > after)
    cases = list(db.session.scalars(q.limit(a["limit"] + 1)))
    names = agent_names([c.assigned_agent_id for c in cases]
                        + [c.assigned_field_agent_id for c in cases])
    rows = [case_json(c, names) for c in cases]
    return jsonify(page(rows, a["limit"], lambda r: str(r["id"])))


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
    q = visible(select(Loan).order_by(Loan.account_number), Loan.cif)
    if a["status"]:
        q = q.where(Loan.status == a["status"])
    if a["bucket"]:
        q = q.where(Loan.bucket == a["bucket"])
    if a["product_type"]:
        q = q.where(Loan.product_type == a["product_type"])
    if a["after"]:
        q = q.where(Loan.account_number > a["after"])
    rows = [loan_json(x) for x in db.session.scalars(q.limit(a["limit"] + 1))]
    return jsonify(page(rows, a["limit"], lambda r: r["account_number"]))
