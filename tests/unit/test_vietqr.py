"""VietQR (NAPAS 247) payloads and the payment reference: every field of a built payload read
back by a TLV parser, the CRC checked independently, the published example matched byte for
byte, and the reference's check digits refusing typos."""

from __future__ import annotations

import binascii
import itertools
import string
from decimal import Decimal

import pytest

from portal.messages import vietqr
from portal.messages.vietqr import (
    account_from_reference,
    crc_ok,
    parse_tlv,
    payload,
    payment_reference,
    references_in,
)

# published in the README of github.com/subiz/vietqr (VietinBank, 120 000 VND)
PUBLISHED = ("00020101021238570010A00000072701270006970415011300110019324180208QRIBFTTA"
             "530370454061200005802VN62170813ung ho lu lut6304C15C")


def crc_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE through the standard library (binascii.crc_hqx, initial 0xFFFF)."""
    return binascii.crc_hqx(data, 0xFFFF)


def test_the_published_example_byte_for_byte():
    built = payload(bin_code="970415", account="0011001932418", amount=120000,
                    purpose="ung ho lu lut")
    assert built == PUBLISHED
    assert crc_ok(PUBLISHED)


def test_every_field_of_a_dynamic_payload():
    reference = payment_reference("LD2432800017")
    code = payload(bin_code="970436", account="0011009999999", amount=Decimal("12345678.40"),
                   purpose=reference)
    fields = parse_tlv(code)
    assert list(fields) == ["00", "01", "38", "53", "54", "58", "62", "63"]
    assert fields["00"] == "01"
    assert fields["01"] == "12"  # dynamic: it carries the amount
    merchant = parse_tlv(fields["38"])
    assert merchant == {"00": "A000000727", "01": merchant["01"], "02": "QRIBFTTA"}
    assert parse_tlv(merchant["01"]) == {"00": "970436", "01": "0011009999999"}
    assert fields["53"] == "704"
    assert fields["54"] == "12345678"  # whole dong
    assert fields["58"] == "VN"
    assert parse_tlv(fields["62"]) == {"08": reference}
    # the CRC covers everything before it, "6304" included
    assert code[-8:-4] == "6304"
    assert fields["63"] == f"{crc_ccitt_false(code[:-4].encode()):04X}"
    assert vietqr.crc16(b"123456789") == 0x29B1  # the CRC catalogue's check value


def test_a_static_code_has_no_amount_and_a_changed_byte_fails_the_crc():
    code = payload(bin_code="970436", account="0011009999999",
                   purpose=payment_reference("LD2432800017"))
    fields = parse_tlv(code)
    assert fields["01"] == "11" and "54" not in fields
    assert crc_ok(code)
    tampered = code.replace("0011009999999", "0011009999998")
    assert not crc_ok(tampered)


@pytest.mark.parametrize("kwargs", [
    {"bin_code": "97043", "account": "1"},
    {"bin_code": "970436", "account": "12345678901234567890"},
    {"bin_code": "970436", "account": "1", "purpose": "Trả nợ"},
    {"bin_code": "970436", "account": "1", "purpose": "X" * 26},
    {"bin_code": "970436", "account": "1", "amount": 0},
])
def test_values_a_payload_cannot_carry_are_refused(kwargs):
    with pytest.raises(vietqr.VietQRError):
        payload(**kwargs)


def test_the_reference_round_trip_and_its_form():
    for account in ("LD2432800017", "LN0000000001", "AA1234567890", "123456789012345678901"):
        reference = payment_reference(account)
        assert reference.startswith("TN") and reference[-2:].isdigit()
        assert len(reference) <= vietqr.PURPOSE_MAX
        assert reference.isalnum() and reference.isascii()
        assert account_from_reference(reference) == account
        # as a person or a bank may write it: spaced in fours, lower case
        spaced = " ".join(reference[i:i + 4] for i in range(0, len(reference), 4)).lower()
        assert account_from_reference(spaced) == account
    assert payment_reference("LD2432800017") == "TNLD2432800017" + (
        f"{int('LD2432800017', 36) % 97:02d}")
    # an ISO 11649 creditor reference is not ours
    assert account_from_reference("RF18 5390 0754 7034") is None
    with pytest.raises(ValueError):
        payment_reference("LD-24328")
    with pytest.raises(ValueError):
        payment_reference("A" * 22)


def test_a_typo_in_the_reference_names_no_loan():
    reference = payment_reference("LD2432800017")
    alphabet = string.digits + string.ascii_uppercase
    # every single-character substitution (a letter for a digit too) and every swap of two
    # neighbours, the check digits included
    for i in range(2, len(reference)):
        for ch in alphabet:
            if ch != reference[i]:
                typo = reference[:i] + ch + reference[i + 1:]
                assert account_from_reference(typo) is None, typo
    for i in range(2, len(reference) - 1):
        if reference[i] != reference[i + 1]:
            swapped = reference[:i] + reference[i + 1] + reference[i] + reference[i + 2:]
            assert account_from_reference(swapped) is None, swapped
    assert account_from_reference("") is None and account_from_reference(None) is None
    assert account_from_reference("LD2432800017") is None


def test_references_found_in_transfer_text():
    first, second = payment_reference("LD2432800017"), payment_reference("LD2432800018")
    text = f"MBVCB.7712.{first}.CT tu 0011 NGUYEN THI HANG; {second} {first}"
    assert references_in(text) == ["LD2432800017", "LD2432800018"]
    # glued to other letters or with a wrong check digit: not a reference
    bad = first[:-2] + f"{(int(first[-2:]) + 1) % 100:02d}"
    assert references_in(f"XX{first} {bad}") == []
    assert list(itertools.islice(references_in(first.lower()), 1)) == ["LD2432800017"]


def test_the_image_encodes_the_payload():
    code = vietqr.PayCode(payload=PUBLISHED, bank_bin="970415", bank_name="VietinBank",
                          account="0011001932418", account_name="X", amount=Decimal(120000),
                          reference="ung ho lu lut")
    svg = code.svg()
    assert svg.startswith("<svg") and "<title>VietQR</title>" in svg
    assert code.png()[:8] == b"\x89PNG\r\n\x1a\n"
