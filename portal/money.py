"""Money, one rule for each reader.

- ``format_money``: shown to people (pages, notifications, notes). Thousands separators; no
  decimals for a whole amount, which is what VND amounts are ("12,500,000 ₫"), two when there
  are cents ("1,500,000.50 ₫"); the ₫ sign for VND, else the currency code; "—" for none.
- ``decimal_text``: sent to machines (the read API, GraphQL): the exact decimal as stored
  ("3000000.00"), never rounded or grouped.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

CURRENCY_SIGNS = {"VND": "₫"}


def format_money(value, currency: str | None = "VND") -> str:
    """``value`` (Decimal, int, or a decimal string as events carry it) for people to read:
    12500000 → "12,500,000 ₫", "1500000.5" → "1,500,000.50 ₫", (250, "USD") → "250 USD"."""
    if value is None or value == "":
        return "—"
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return str(value)
    if not amount.is_finite():
        return str(value)
    places = 0 if amount == amount.to_integral_value() else 2
    currency = currency or "VND"
    return f"{amount:,.{places}f} {CURRENCY_SIGNS.get(currency, currency)}"


def decimal_text(value: Decimal | None) -> str | None:
    """The exact decimal for a machine reader ("3000000.00"); None stays None."""
    return None if value is None else format(value, "f")
