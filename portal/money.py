"""Money, one rule for each reader and writer.

- ``format_money``: shown to people (pages, notifications, notes), grouped by the page's locale
  (portal/i18n.py): "12.500.000 ₫" in Vietnamese, "12,500,000 ₫" in English; no decimals for a
  whole amount, which is what VND amounts are, two when there are cents ("1.500.000,50 ₫"); the
  ₫ sign for VND, else the currency code, joined by a no-break space so it never wraps onto a
  line of its own; "—" for none.
- ``decimal_text``: sent to machines (the read API, GraphQL): the exact decimal as stored
  ("3000000.00"), never rounded or grouped.
- ``parse_money``: typed by people (every amount field of every form). The bank locale's
  writing (vi-VN: dots group thousands, a comma starts the decimals) — "5.000.000",
  "1.234,50" — plain digits, digits grouped by spaces ("5 000 000"), and the grouping the pages
  print ("3,500,000", two groups or more: it cannot be read as decimals); a ₫ / đ / currency
  code around it is ignored. Ambiguous or malformed input is refused with a message that says
  what is wrong: "5,000.50" (mixed separators), "1.2.3" (groups not of three), "5,000" (a
  decimal comma or a grouping one?), decimals in a currency without a minor unit (VND).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from flask import current_app, has_app_context
from flask_babel import gettext as _

from portal.i18n import format_number

CURRENCY_SIGNS = {"VND": "₫"}
NO_BREAK_SPACE = "\u00a0"
MINOR_UNITS = {"VND": 0}  # digits after the decimal separator; 2 for a currency not listed
MAX_INTEGER_DIGITS = 16  # Numeric(18, 2)
EXAMPLE = "5.000.000"

_MARKS = re.compile(r"[₫đĐ]")
_SPACES = re.compile(r"[\s\u00a0\u202f\u2009]+")
_PLAIN = re.compile(r"\d+")
_DOT_GROUPS = re.compile(r"\d{1,3}(?:\.\d{3})+")
_SPACE_GROUPS = re.compile(r"\d{1,3}(?: \d{3})+")
_COMMA_GROUPS = re.compile(r"\d{1,3}(?:,\d{3}){2,}")  # "3,500,000": never decimals
_ONE_COMMA_GROUP = re.compile(r"\d{1,3},\d{3}")  # "5,000": 5 (vi-VN) or 5000 (en)?


def format_money(value, currency: str | None = "VND") -> str:
    """``value`` (Decimal, int, or a decimal string as events carry it) for people to read, in
    Vietnamese: 12500000 → "12.500.000 ₫", "1500000.5" → "1.500.000,50 ₫", (250, "USD") →
    "250 USD"."""
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
    sign = CURRENCY_SIGNS.get(currency, currency)
    return f"{format_number(amount, places)}{NO_BREAK_SPACE}{sign}"


def decimal_text(value: Decimal | None) -> str | None:
    """The exact decimal for a machine reader ("3000000.00"); None stays None."""
    return None if value is None else format(value, "f")


def bank_currency() -> str:
    """The bank's currency (``BANK_CURRENCY``), VND outside an application."""
    return current_app.config.get("BANK_CURRENCY", "VND") if has_app_context() else "VND"


def parse_money(raw, currency: str | None = None) -> Decimal | None:
    """An amount typed by a person, in ``currency`` (the bank's by default): "5.000.000",
    "5 000 000", "5000000", "3,500,000", "1.234,50" (a currency with decimals) → Decimal;
    empty → None. Raises ValueError with the message to show next to the field."""
    if raw is None:
        return None
    if isinstance(raw, Decimal | int) and not isinstance(raw, bool):
        return _checked(Decimal(raw), str(raw), currency)
    text = str(raw).strip()
    if not text:
        return None
    body = re.sub(re.escape(_code(currency)), "", _MARKS.sub("", text), flags=re.IGNORECASE)
    body = _SPACES.sub(" ", body).strip()
    if body.startswith("-"):
        raise ValueError(_("An amount cannot be negative."))
    if not body or not re.fullmatch(r"[\d., ]+", body) or not body[0].isdigit() \
            or not body[-1].isdigit():
        raise ValueError(_("Enter an amount such as %(example)s.", example=EXAMPLE))
    whole, comma, fraction = body, "", ""
    if "," in body and "." in body:
        if body.rfind(",") < body.rfind("."):  # "5,000.50": the English way round
            raise ValueError(_mixed(text, currency))
        whole, comma, fraction = body.rpartition(",")
        if "," in whole:
            raise ValueError(_mixed(text, currency))
    elif "," in body and not _COMMA_GROUPS.fullmatch(body):
        if body.count(",") > 1:
            raise ValueError(_("“%(text)s” is not an amount: write thousands with dots, "
                               "as in %(example)s.", text=text, example=EXAMPLE))
        whole, comma, fraction = body.rpartition(",")
        if _minor_units(currency) == 0 and _ONE_COMMA_GROUP.fullmatch(body):
            grouped, plain = f"{whole}.{fraction}", whole + fraction
            raise ValueError(_("“%(text)s” is ambiguous: a comma starts decimals here, and "
                               "%(currency)s has none. Write %(grouped)s or %(plain)s.",
                               text=text, currency=_code(currency), grouped=grouped,
                               plain=plain))
    elif "," in body:
        whole = body.replace(",", "")
    if not (_PLAIN.fullmatch(whole) or _DOT_GROUPS.fullmatch(whole)
            or _SPACE_GROUPS.fullmatch(whole)):
        raise ValueError(_("“%(text)s” is not an amount: dots group thousands in threes, "
                           "as in %(example)s.", text=text, example=EXAMPLE))
    digits = whole.replace(".", "").replace(" ", "")
    if comma:
        places = _minor_units(currency)
        if places == 0:
            raise ValueError(_("%(currency)s has no decimals: write the amount without "
                               "“,%(fraction)s”.", currency=_code(currency), fraction=fraction))
        if not _PLAIN.fullmatch(fraction) or len(fraction) > places:
            raise ValueError(_("At most %(num)d decimals, after a comma (1.234,50).",
                               num=places))
        digits += "." + fraction
    return _checked(Decimal(digits), text, currency)


def _code(currency: str | None) -> str:
    return currency or bank_currency()


def _minor_units(currency: str | None) -> int:
    return MINOR_UNITS.get(_code(currency), 2)


def _mixed(text: str, currency: str | None) -> str:
    if _minor_units(currency) == 0:
        return _("“%(text)s” mixes separators: dots group thousands (%(example)s) and "
                 "%(currency)s has no decimals.", text=text, example=EXAMPLE,
                 currency=_code(currency))
    return _("“%(text)s” mixes separators: dots group thousands and a comma starts the "
             "decimals, as in 1.234,50.", text=text)


def _checked(amount: Decimal, text: str, currency: str | None) -> Decimal:
    if not amount.is_finite():
        raise ValueError(_("Enter an amount such as %(example)s.", example=EXAMPLE))
    if amount < 0:
        raise ValueError(_("An amount cannot be negative."))
    places = _minor_units(currency)
    if amount != amount.quantize(Decimal(1).scaleb(-places), rounding="ROUND_DOWN"):
        raise ValueError(_("%(currency)s has no decimals.", currency=_code(currency))
                         if places == 0 else _("At most %(num)d decimals.", num=places))
    if amount >= Decimal(10) ** MAX_INTEGER_DIGITS:
        raise ValueError(_("The amount is too large."))
    return amount
