"""SMS length in segments: GSM-7 (160 / 153 when split, extension characters count twice)
and UCS-2 (any Vietnamese diacritic: 70 / 67 when split)."""

from __future__ import annotations

import pytest

from integrations.sms.segments import sms_segments
from portal.messages.rendering import fill, unknown_variables


@pytest.mark.parametrize(("text", "expected"), [
    ("", ("GSM-7", 1, 0)),
    ("A" * 160, ("GSM-7", 1, 160)),
    ("A" * 161, ("GSM-7", 2, 161)),
    ("A" * 306, ("GSM-7", 2, 306)),
    ("A" * 307, ("GSM-7", 3, 307)),
    ("€" * 80, ("GSM-7", 1, 160)),  # the euro sign is an escape + a septet
    ("€" * 81, ("GSM-7", 2, 162)),
    ("Ban co khoan no den han", ("GSM-7", 1, 23)),
    ("ơ" * 70, ("UCS-2", 1, 70)),
    ("ơ" * 71, ("UCS-2", 2, 71)),
    ("a" * 133 + "đ", ("UCS-2", 2, 134)),
    ("a" * 134 + "đ", ("UCS-2", 3, 135)),
    ("😀" * 35, ("UCS-2", 1, 70)),  # outside the BMP: a surrogate pair each
])
def test_segments(text, expected):
    assert sms_segments(text) == expected


def test_one_vietnamese_letter_makes_the_whole_message_ucs2():
    plain = "Quy khach vui long thanh toan 5.000.000 VND truoc ngay 15/12/2026. " * 2
    assert sms_segments(plain)[:2] == ("GSM-7", 1)
    accented = plain.replace("Quy", "Quý", 1)  # 134 characters: two full UCS-2 parts
    assert sms_segments(accented) == ("UCS-2", 2, 134)
    assert sms_segments(accented + "!") == ("UCS-2", 3, 135)


def test_unknown_variables_are_named_and_braces_checked():
    assert unknown_variables("Dear {customer_name}, {amount_due} on {due_date}") == []
    assert unknown_variables("{customer_name} {balance} {balance} {x}") == ["balance", "x"]
    assert unknown_variables("literal {{braces}} are fine") == []
    assert unknown_variables("broken {customer_name") == ["{"]


def test_fill_leaves_missing_variables_empty():
    assert fill("{customer_name} pay at {pay_link}.", {"customer_name": "An"}) == "An pay at ."
