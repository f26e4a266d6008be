"""Pay by VietQR: the NAPAS 247 payload (an EMVCo merchant-presented QR) that a Vietnamese
banking app scans to pay the bank's repayment account, and the payment reference that makes
the payment land on the loan it was issued for.

**Payload** (``payload``): TLV fields, each ``ID`` (2 digits) + length (2 digits) + value:

====  ==========================================================================
00    payload format indicator ``01``
01    point of initiation: ``12`` dynamic (it carries the amount), ``11`` static
38    merchant account information: 00 GUID ``A000000727`` (NAPAS), 01 beneficiary
      organisation (00 the bank's BIN, 01 the account number), 02 service code
      ``QRIBFTTA`` (inter-bank fund transfer to an account)
53    currency ``704`` (VND, ISO 4217 numeric)
54    amount (whole dong, digits only)
58    country ``VN``
62    additional data: 08 purpose of transaction = the payment reference
63    CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over everything before it including
      ``6304``, four upper-case hex digits
====  ==========================================================================

**Payment reference** (``payment_reference`` / ``account_from_reference``): ``TN`` ("trả nợ")
+ the loan's account number + two check digits, e.g. ``TNLD243280001727``. Letters and digits
only (it survives every bank's transfer text), at most 25 characters (the purpose field's
limit). The check digits are the account number read as a base-36 number, modulo 97: since
97 is prime and larger than 36, every single-character typo (a digit for a letter too: O for
0, I for 1) and every swap of two neighbours changes them, so a mistyped reference names no
loan rather than another one. (ISO 11649 ``RF`` references were the first choice; their
check reads a letter as two decimal digits, so a digit typed as a letter can pass it — the
unit test found one — and that rules them out for a reference a person may retype.) camt
files carry the reference as a structured creditor reference or in the remittance text; the
payment system's webhook as ``payment_reference`` or in its ``description``.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import segno
from flask import current_app

from portal import signing

GUID = "A000000727"
SERVICE_TO_ACCOUNT = "QRIBFTTA"
CURRENCY_VND = "704"
COUNTRY = "VN"
DYNAMIC, STATIC = "12", "11"
PURPOSE_MAX = 25  # 62/08
ACCOUNT_MAX = 19  # 38/01/01
REFERENCE_PREFIX = "TN"
REFERENCE_BODY_MAX = 21  # 2 + 21 + 2 = 25, the purpose field's limit
REFERENCE_PATTERN = re.compile(r"(?<![0-9A-Z])TN[0-9A-Z]{1,21}[0-9]{2}(?![0-9A-Z])")
_BODY = re.compile(r"^[0-9A-Z]{1,21}$")


class VietQRError(ValueError):
    """A value the payload cannot carry (too long, not digits, …)."""


# -- the payment reference ----------------------------------------------------------------------


def _check(body: str) -> str:
    """Two check digits: ``body`` as a base-36 number, modulo 97."""
    return f"{int(body, 36) % 97:02d}"


def payment_reference(account_number: str) -> str:
    """The reference a payment for loan ``account_number`` carries: ``TN`` + the account
    number + two check digits. ValueError for an account number it cannot carry."""
    body = "".join(account_number.split()).upper()
    if not _BODY.match(body):
        raise VietQRError(f"account number {account_number!r} cannot be a payment reference: "
                          f"letters and digits only, at most {REFERENCE_BODY_MAX}")
    return f"{REFERENCE_PREFIX}{body}{_check(body)}"


def account_from_reference(reference: str | None) -> str | None:
    """The account number a payment reference names, or None when ``reference`` is not one
    (wrong form or wrong check digits: a typo names no loan). Spaces and case are ignored."""
    if not reference:
        return None
    text = "".join(reference.split()).upper()
    if not REFERENCE_PATTERN.fullmatch(text):
        return None
    body, check = text[2:-2], text[-2:]
    return body if _check(body) == check else None


def references_in(text: str | None) -> list[str]:
    """The account numbers named by valid payment references found in free text (a transfer's
    description, a camt entry's remittance lines), in order, without repeats."""
    if not text:
        return []
    found = []
    for match in REFERENCE_PATTERN.finditer(text.upper()):
        account = account_from_reference(match.group(0))
        if account is not None and account not in found:
            found.append(account)
    return found


# -- the payload --------------------------------------------------------------------------------


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def tlv(tag: str, value: str) -> str:
    if len(value) > 99:
        raise VietQRError(f"field {tag} is longer than 99 characters")
    return f"{tag}{len(value):02d}{value}"


def parse_tlv(text: str) -> dict[str, str]:
    """The fields of one TLV level {id: value}; ValueError when the lengths do not add up."""
    fields, i = {}, 0
    while i < len(text):
        tag, size = text[i:i + 2], text[i + 2:i + 4]
        if len(tag) < 2 or not size.isdigit():
            raise VietQRError(f"bad TLV header at {i}")
        value = text[i + 4:i + 4 + int(size)]
        if len(value) != int(size):
            raise VietQRError(f"field {tag} is cut short")
        fields[tag] = value
        i += 4 + int(size)
    return fields


def _amount_text(amount: Decimal | int | str) -> str:
    value = Decimal(str(amount)).quantize(Decimal("1"), rounding=ROUND_HALF_UP)
    if value <= 0 or len(str(value)) > 13:
        raise VietQRError(f"amount {amount} cannot be paid by VietQR")
    return str(value)


def payload(*, bin_code: str, account: str, amount: Decimal | int | str | None = None,
            purpose: str | None = None) -> str:
    """The VietQR string for a transfer of ``amount`` VND (None: a static code, the payer
    types the amount) to ``account`` at the bank ``bin_code``, with ``purpose`` as the
    transfer text (ASCII, at most 25 characters: the payment reference)."""
    if not (bin_code.isascii() and bin_code.isdigit() and len(bin_code) == 6):
        raise VietQRError("the bank BIN is 6 digits")
    if not (account.isascii() and account.isalnum() and 0 < len(account) <= ACCOUNT_MAX):
        raise VietQRError(f"the account is letters and digits, at most {ACCOUNT_MAX}")
    if purpose is not None and (len(purpose) > PURPOSE_MAX or not purpose.isascii()
                                or not purpose.isprintable()):
        raise VietQRError(f"the purpose is printable ASCII, at most {PURPOSE_MAX}")
    beneficiary = tlv("00", bin_code) + tlv("01", account)
    merchant = tlv("00", GUID) + tlv("01", beneficiary) + tlv("02", SERVICE_TO_ACCOUNT)
    parts = [tlv("00", "01"), tlv("01", STATIC if amount is None else DYNAMIC),
             tlv("38", merchant), tlv("53", CURRENCY_VND)]
    if amount is not None:
        parts.append(tlv("54", _amount_text(amount)))
    parts.append(tlv("58", COUNTRY))
    if purpose:
        parts.append(tlv("62", tlv("08", purpose)))
    body = "".join(parts) + "6304"
    return body + f"{crc16(body.encode('ascii')):04X}"


def crc_ok(code: str) -> bool:
    """Whether the last field is a CRC ``63`` that matches everything before it."""
    return (len(code) >= 8 and code[-8:-4] == "6304"
            and f"{crc16(code[:-4].encode('ascii')):04X}" == code[-4:].upper())


# -- the bank's repayment account (configuration) and one loan's code --------------------------


@dataclass(frozen=True)
class PayCode:
    """Everything a page or a letter shows beside the code."""

    payload: str
    bank_bin: str
    bank_name: str
    account: str
    account_name: str
    amount: Decimal | None
    reference: str

    def svg(self, scale: int = 6) -> str:
        """The QR image as inline SVG (segno), with a title for screen readers."""
        out = io.BytesIO()
        segno.make(self.payload, error="m", micro=False).save(
            out, kind="svg", scale=scale, border=4, xmldecl=False, svgns=True,
            title="VietQR", nl=False)
        return out.getvalue().decode()

    def png(self, scale: int = 8) -> bytes:
        out = io.BytesIO()
        segno.make(self.payload, error="m", micro=False).save(out, kind="png", scale=scale,
                                                              border=4)
        return out.getvalue()


def pay_code(account_number: str, amount: Decimal | int | str | None,
             config=None) -> PayCode:
    """The VietQR code to repay loan ``account_number``: the bank's repayment account
    (``VIETQR_BANK_BIN``, ``VIETQR_ACCOUNT``, ``VIETQR_ACCOUNT_NAME``, ``VIETQR_BANK_NAME``),
    the amount (None or 0: the payer types it) and the loan's payment reference."""
    config = config if config is not None else current_app.config
    reference = payment_reference(account_number)
    value = Decimal(str(amount)) if amount not in (None, "") else None
    if value is not None and value <= 0:
        value = None
    code = payload(bin_code=config["VIETQR_BANK_BIN"], account=config["VIETQR_ACCOUNT"],
                   amount=value, purpose=reference)
    return PayCode(payload=code, bank_bin=config["VIETQR_BANK_BIN"],
                   bank_name=config["VIETQR_BANK_NAME"], account=config["VIETQR_ACCOUNT"],
                   account_name=config["VIETQR_ACCOUNT_NAME"],
                   amount=None if value is None else Decimal(_amount_text(value)),
                   reference=reference)


# -- the pay link of SMS and e-mail -------------------------------------------------------------

PAY_LINK_PURPOSE = "pay"


@dataclass(frozen=True)
class PayLink:
    """What a pay link's token holds."""

    account_number: str
    amount: Decimal | None
    language: str


def pay_token(account_number: str, amount: Decimal | int | str | None, language: str,
              config=None) -> str:
    """The signed token of a pay link: ``<account>.<whole dong or 0>.<language>`` with its time
    and signature (short: an SMS carries it)."""
    config = config if config is not None else current_app.config
    payment_reference(account_number)  # the account must be one a reference can carry
    whole = _amount_text(amount) if amount not in (None, "", 0) and Decimal(str(amount)) > 0 \
        else "0"
    value = f"{account_number}.{whole}.{language if language in ('vi', 'en') else 'vi'}"
    return signing.sign_link(value, PAY_LINK_PURPOSE, config["SECRET_KEY"])


def pay_link(account_number: str, amount: Decimal | int | str | None, language: str,
             config=None) -> str:
    """The absolute URL of the public page that shows the loan's VietQR code
    (``PUBLIC_BASE_URL`` + ``/pay/<token>``), valid ``PAY_LINK_MAX_AGE_DAYS``. For SMS and
    e-mail templates (portal.messages.rendering)."""
    config = config if config is not None else current_app.config
    base = (config.get("PUBLIC_BASE_URL") or "").rstrip("/")
    return f"{base}/pay/{pay_token(account_number, amount, language, config)}"


def read_pay_token(token: str, config=None) -> PayLink:
    """The pay link a token names; ``signing.LinkError`` ("invalid" or "expired")."""
    config = config if config is not None else current_app.config
    max_age = int(config.get("PAY_LINK_MAX_AGE_DAYS") or 14) * 86400
    return pay_link_of(signing.read_link(token, PAY_LINK_PURPOSE, config["SECRET_KEY"],
                                         max_age))


def pay_link_of(value: str) -> PayLink:
    """The pay link a token's signed value names; LinkError("invalid") for another shape."""
    try:
        account, whole, language = value.rsplit(".", 2)
        amount = Decimal(whole)
    except (ValueError, ArithmeticError):
        raise signing.LinkError("invalid") from None
    return PayLink(account, amount if amount > 0 else None, language)
