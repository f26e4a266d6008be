"""portal/money.py: money for people and for machines."""

from __future__ import annotations

from decimal import Decimal

from portal.money import decimal_text, format_money


def test_whole_amounts_show_no_decimals_and_cents_show_two():
    assert format_money(Decimal("12500000.00")) == "12,500,000 ₫"
    assert format_money("1500000.5") == "1,500,000.50 ₫"
    assert format_money(0) == "0 ₫"
    assert format_money(Decimal("250.00"), "USD") == "250 USD"
    assert format_money("19.99", "USD") == "19.99 USD"


def test_nothing_and_junk():
    assert format_money(None) == "—" and format_money("") == "—"
    assert format_money("n/a") == "n/a" and format_money("NaN") == "NaN"


def test_machines_get_the_exact_decimal():
    assert decimal_text(Decimal("3000000.00")) == "3000000.00"
    assert decimal_text(None) is None
