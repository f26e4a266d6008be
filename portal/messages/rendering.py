"""A template's text filled with an account's data, and the length of an SMS in segments.

    variables = template_variables(session, cif, account_number, "vi")
    subject, body = render(template, variables, "vi")

Variables are written ``{name}`` in a template's subject and body. ``VARIABLES`` is the whole
list; a template that names another is refused by the admin form (``unknown_variables``).
Money and dates are written for the message's language (vi: "5.000.000 ₫", en: "5,000,000 ₫";
dates dd/mm/yyyy in both). ``{pay_link}`` is filled by whoever passes it in ``extra`` (the
VietQR pay page of portal/messages/letters and pay); without it, it renders as nothing.
"""

from __future__ import annotations

import re
import string
from datetime import date
from decimal import Decimal

from babel.numbers import format_decimal
from flask import current_app, has_app_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.messages import vietqr
from portal.models import Card, Case, Customer, Loan, MessageTemplate, User

VARIABLES = ("customer_name", "account_number", "amount_due", "due_date", "agent_name",
             "payment_instructions", "pay_link")
LANGUAGES = ("vi", "en")
_FIELD = re.compile(r"\{([^{}]*)\}")

DEFAULT_INSTRUCTIONS = {
    "vi": "Chuyển khoản tới tài khoản thu nợ của ngân hàng, nội dung: {account_number}",
    "en": "Transfer to the bank's repayment account with the reference {account_number}",
}

def template_fields(text: str | None) -> list[str]:
    """The ``{names}`` a template text uses, in order (``{{`` and ``}}`` are literal braces)."""
    if not text:
        return []
    try:
        return [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError:
        return [match.group(1) for match in _FIELD.finditer(text)]


def unknown_variables(text: str | None) -> list[str]:
    """The names in ``text`` that are not template variables (or a malformed brace: "{")."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(text or "")
                 if name is not None]
    except ValueError:
        return ["{"]
    return [name for name in dict.fromkeys(names) if name not in VARIABLES]


def format_amount(amount: Decimal | int | None, language: str, currency: str = "VND") -> str:
    if amount is None:
        return ""
    amount = Decimal(amount)
    places = 0 if amount == amount.to_integral_value() else 2
    pattern = "#,##0" + ("." + "0" * places if places else "")
    sign = "₫" if currency == "VND" else currency
    return f"{format_decimal(amount, format=pattern, locale=language)}\u00a0{sign}"


def format_day(day: date | None) -> str:
    return "" if day is None else day.strftime("%d/%m/%Y")


def _instructions(language: str, account_number: str) -> str:
    config = current_app.config if has_app_context() else {}
    text = config.get(f"MESSAGES_PAYMENT_INSTRUCTIONS_{language.upper()}") \
        or DEFAULT_INSTRUCTIONS[language]
    return text.replace("{account_number}", account_number)


def template_variables(session: Session, cif: str, account_number: str | None,
                       language: str, *, extra: dict[str, str] | None = None,
                       ) -> dict[str, str]:
    """Every variable of ``VARIABLES`` for customer ``cif`` and ``account_number`` (a loan or
    a card contract; None: the customer's most overdue one), written for ``language``.
    ``extra`` fills or overrides names. ``pay_link``: the pay page of a loan in dong."""
    language = language if language in LANGUAGES else "vi"
    customer = session.scalar(select(Customer).where(Customer.cif == cif))
    amount: Decimal | None = None
    due: date | None = None
    currency = "VND"
    if account_number is None:
        loan = session.scalar(select(Loan).where(Loan.cif == cif)
                              .order_by(Loan.dpd.desc(), Loan.account_number).limit(1))
        account_number = loan.account_number if loan else None
    loan = session.scalar(select(Loan).where(Loan.account_number == account_number)) \
        if account_number else None
    if loan is not None:
        amount, due, currency = loan.due_amount, loan.next_payment_date, loan.currency
    elif account_number:
        card = session.scalar(select(Card).where(Card.contract_number == account_number))
        if card is not None:
            amount, due, currency = card.min_due, card.due_date, card.currency
    agent = session.scalar(select(User).join(Case, Case.assigned_agent_id == User.id)
                           .where(Case.cif == cif))
    values = {
        "customer_name": (customer.name if customer else "") or "",
        "account_number": account_number or "",
        "amount_due": format_amount(amount, language, currency),
        "due_date": format_day(due),
        "agent_name": (agent.full_name or agent.username) if agent else "",
        "payment_instructions": _instructions(language, account_number or ""),
        # the public page with the loan's VietQR code (dong only: VietQR pays VND)
        "pay_link": vietqr.pay_link(account_number, amount, language)
        if loan is not None and currency == "VND" and has_app_context() else "",
    }
    values.update(extra or {})
    return values


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


def fill(text: str | None, variables: dict[str, str]) -> str:
    """``text`` with its ``{variables}`` filled (an unknown or missing one: nothing)."""
    if not text:
        return ""
    try:
        return string.Formatter().vformat(text, (), _Blank(variables))
    except (ValueError, IndexError, AttributeError, KeyError):
        return _FIELD.sub(lambda m: str(variables.get(m.group(1), "")), text)


def render(template: MessageTemplate, variables: dict[str, str],
           language: str) -> tuple[str | None, str]:
    """(subject, body) of ``template`` in ``language`` (vi when unknown) with ``variables``
    filled; the subject is None for an SMS."""
    language = language if language in LANGUAGES else "vi"
    subject = getattr(template, f"subject_{language}") or template.subject_vi
    body = getattr(template, f"body_{language}") or template.body_vi
    return (None if template.channel == "sms" else fill(subject, variables).strip() or None,
            fill(body, variables))
