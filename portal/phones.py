"""Phone numbers, one rule for every reader and writer: the bank files' loaders
(integrations/t24, integrations/los), the CRM's contact forms (portal/cases/contacts.py), the
call centre's numbers (portal/calls) and every page that shows a number.

- ``phone_e164``: the stored, matched and dialled form (``phones.number_e164``, call records):
  "+84903123456".
- ``phone_national``: how people read a number, one format on every page: "0903 123 456"
  (mobiles), "028 3812 3456" (landlines); a foreign number in E.164. Masking for readers without
  ``customers.view_pii`` is ``portal.text.mask_phone``, over this format.
"""

from __future__ import annotations

import re

_PHONE = re.compile(r"^\+?\d{8,15}$")
_PHONE_PUNCTUATION = re.compile(r"[\s.\-()]")


def phone_e164(number: str | None) -> str | None:
    """A Vietnamese number in E.164 form, as stored (``phones.number_e164``) and sent to the
    call centre: "0901 234 567", "84901234567", "+84 (0)901 234 567" -> "+84901234567"; a
    foreign number keeps its country code ("+1 415 555 0100" -> "+14155550100"). None when it
    is not a phone number."""
    digits = _PHONE_PUNCTUATION.sub("", number or "")
    if not _PHONE.match(digits):
        return None
    if digits.startswith("+840"):  # "+84 (0)90…": the national trunk 0 written after +84
        digits = "+84" + digits[4:]
    if digits.startswith("+"):
        return digits
    if digits.startswith("84") and len(digits) >= 11:
        return "+" + digits
    if digits.startswith("0"):
        return "+84" + digits[1:]
    return None


def phone_national(number: str | None) -> str:
    """How a number is shown to people, one format everywhere: a Vietnamese number in its
    national form, grouped — mobiles "0903 123 456", landlines "028 3812 3456"; a foreign
    number in E.164 ("+14155550100"); what is not a phone number as it is."""
    e164 = phone_e164(number)
    if e164 is None:
        return (number or "").strip()
    if not e164.startswith("+84"):
        return e164
    national = "0" + e164[3:]
    if len(national) == 10 and not national.startswith("02"):  # mobile: 0 + 9 digits
        return f"{national[:4]} {national[4:7]} {national[7:]}"
    if len(national) == 11 and national.startswith("02"):  # landline: 02x + 8 digits
        return f"{national[:3]} {national[3:7]} {national[7:]}"
    return national
