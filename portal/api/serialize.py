"""JSON of the read API: one function per resource (schemas in portal/api/openapi.py), the page
envelope, and the PII rule both the REST routes and GraphQL apply: national ids and phone numbers
are masked unless the principal's role has ``customers.view_pii`` (system tokens without a user
never do)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from portal.api.queries import Contacts, Page
from portal.models import (
    Action,
    Address,
    Card,
    Case,
    Collateral,
    Customer,
    Email,
    Loan,
    Payment,
    Phone,
    Promise,
)
from portal.money import decimal_text
from portal.permissions.roles import permissions_for_role
from portal.permissions.tokens import Principal
from portal.text import mask_national_id, mask_phone


def may_view_pii(principal: Principal) -> bool:
    return "customers.view_pii" in permissions_for_role(principal.role)


def shown_national_id(value: str | None, pii: bool) -> str | None:
    return value if pii else (mask_national_id(value) or None)


def shown_phone(phone: Phone, pii: bool) -> str:
    """A phone number for a machine reader: E.164 ("+84912345678"), as stored and as the call
    centre dials it; masked ("+••••••••678") without ``customers.view_pii``."""
    number = phone.number_e164 or phone.number
    return number if pii else mask_phone(number)


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _num(value) -> float | None:
    return None if value is None else float(value)


def page_json(page: Page, row_json: Callable[[object], dict]) -> dict:
    return {"data": [row_json(row) for row in page.rows], "limit": page.limit,
            "next_cursor": page.next_cursor}


def customer_json(c: Customer, pii: bool) -> dict:
    return {
        "cif": c.cif, "type": c.type, "name": c.name, "date_of_birth": _iso(c.date_of_birth),
        "national_id": shown_national_id(c.national_id, pii),
        "gender": c.gender, "company_name": c.company_name, "segment": c.segment,
        "status": c.status, "source_system": c.source_system,
        "last_synced_at": _iso(c.last_synced_at), "updated_at": _iso(c.updated_at),
    }


def phone_json(p: Phone, pii: bool) -> dict:
    return {"id": p.id, "type": p.type, "number": shown_phone(p, pii),
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


def contacts_json(cif: str, contacts: Contacts, pii: bool) -> dict:
    return {"cif": cif, "phones": [phone_json(p, pii) for p in contacts.phones],
            "addresses": [address_json(a) for a in contacts.addresses],
            "emails": [email_json(e) for e in contacts.emails]}


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
    """``agents``: usernames by user id (``queries.agent_names``)."""
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
