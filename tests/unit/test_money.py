"""portal/money.py: money for people and for machines."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from flask import Flask
from flask_babel import Babel

from portal.money import decimal_text, format_money, parse_money

NBSP = "\u00a0"  # between the amount and its sign: the sign never wraps onto a line alone


def test_whole_amounts_show_no_decimals_and_cents_show_two_in_vietnamese():
    # outside a request: the deployment's language, Vietnamese by default
    assert format_money(Decimal("12500000.00")) == f"12.500.000{NBSP}₫"
    assert format_money("1500000.5") == f"1.500.000,50{NBSP}₫"
    assert format_money(0) == f"0{NBSP}₫"
    assert format_money(Decimal("250.00"), "USD") == f"250{NBSP}USD"
    assert format_money("19.99", "USD") == f"19,99{NBSP}USD"


def test_an_english_reader_gets_commas_for_thousands():
    app = Flask(__name__)
    Babel(app, locale_selector=lambda: "en")
    with app.test_request_context():
        assert format_money(Decimal("12500000.00")) == f"12,500,000{NBSP}₫"
        assert format_money("1500000.5") == f"1,500,000.50{NBSP}₫"
        assert format_money("19.99", "USD") == f"19.99{NBSP}USD"


def test_nothing_and_junk():
    assert format_money(None) == "—" and format_money("") == "—"
    assert format_money("n/a") == "n/a" and format_money("NaN") == "NaN"


def test_machines_get_the_exact_decimal():
    assert decimal_text(Decimal("3000000.00")) == "3000000.00"
    assert decimal_text(None) is None


# -- parse_money: amounts typed by people (issue 19, finding 11) --------------------------------


@pytest.mark.parametrize(("typed", "amount"), [
    ("5.000.000", "5000000"), ("5.000.000 ₫", "5000000"), ("5.000.000đ", "5000000"),
    ("5.000.000 VND", "5000000"), ("5 000 000", "5000000"), ("5\u00a0000\u00a0000", "5000000"),
    ("5000000", "5000000"), ("3,500,000", "3500000"), ("1,234,567,890", "1234567890"),
    ("0", "0"), (Decimal("5000000.00"), "5000000"), (2500, "2500"),
])
def test_the_banks_writing_and_plain_digits_are_read(typed, amount):
    assert parse_money(typed, "VND") == Decimal(amount)


@pytest.mark.parametrize(("typed", "message"), [
    ("5,000.50", "“5,000.50” mixes separators: dots group thousands (5.000.000) and VND has "
                 "no decimals."),
    ("3,500,000.00", "mixes separators"),
    ("1.2.3", "“1.2.3” is not an amount: dots group thousands in threes, as in 5.000.000."),
    ("5.5", "dots group thousands in threes"),
    ("12500000.00", "dots group thousands in threes"),
    ("5,000", "“5,000” is ambiguous: a comma starts decimals here, and VND has none. Write "
              "5.000 or 5000."),
    ("5,5", "VND has no decimals: write the amount without “,5”."),
    ("1.234,50", "VND has no decimals"),
    ("1,2,3", "write thousands with dots"),
    ("-5.000", "An amount cannot be negative."),
    ("abc", "Enter an amount such as 5.000.000."),
    ("5.000.000 USD", "Enter an amount such as 5.000.000."),
    ("99.999.999.999.999.999", "The amount is too large."),
    (Decimal("1.5"), "VND has no decimals."),
    (Decimal("NaN"), "Enter an amount"),
])
def test_ambiguous_or_malformed_input_is_refused_precisely(typed, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_money(typed, "VND")


def test_a_currency_with_decimals_takes_them_after_a_comma():
    assert parse_money("1.234,50", "USD") == Decimal("1234.50")
    assert parse_money("3,500,000", "USD") == Decimal("3500000")
    with pytest.raises(ValueError, match="mixes separators"):
        parse_money("1,234.50", "USD")
    with pytest.raises(ValueError, match="At most 2 decimals"):
        parse_money("1,234", "USD")


def test_nothing_typed_is_no_amount():
    assert parse_money(None) is None and parse_money("") is None and parse_money("  ") is None
