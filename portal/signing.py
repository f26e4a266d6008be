"""Signed webhooks (payment system, call centre): one rule for signing and verifying, in two
schemes a sender is configured for (``PAYMENT_WEBHOOK_SCHEME``, ``CTI_WEBHOOK_SCHEME``).

``crm-hmac`` (this product's own): ``X-Timestamp: <unix seconds>`` and
``X-Signature: sha256=<hex>`` where ``<hex>`` is HMAC-SHA256, keyed with the secret's UTF-8
bytes, of ``"{timestamp}." + raw body``. The message is identified by the body's ``event_id``.

``standard`` (Standard Webhooks, https://www.standardwebhooks.com): ``webhook-id``,
``webhook-timestamp: <unix seconds>`` and ``webhook-signature: v1,<base64>`` where ``<base64>``
is HMAC-SHA256 of ``"{id}.{timestamp}." + raw body``, keyed with the bytes of a
``whsec_<base64>`` secret (the spec's form; other secrets of the list are not used). Several
space-separated signatures may be sent (the sender rotating its key); one that matches is
enough. The message is identified by ``webhook-id``, the same on every retry.

Several secrets may be configured at once (current and next) so a key rotates without a gap;
any signature matching any secret is accepted. A sender may be configured for both schemes
(``standard,crm-hmac``) while it moves from one to the other: a request is then read in the
scheme whose signature header it carries. A timestamp outside the replay window (default 300 s,
either direction) is refused, so a captured request cannot be replayed later; a resend inside
the window is answered from the receiver's stored outcome (portal/webhook_receipts.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError

from portal import clock

CRM_HMAC, STANDARD = "crm-hmac", "standard"
SCHEMES = (CRM_HMAC, STANDARD)
SCHEME_SETTINGS = ("PAYMENT_WEBHOOK_SCHEME", "CTI_WEBHOOK_SCHEME", "SMS_WEBHOOK_SCHEME")
TIMESTAMP_HEADER = "X-Timestamp"
SIGNATURE_HEADER = "X-Signature"
ID_HEADER_STD = "webhook-id"
TIMESTAMP_HEADER_STD = "webhook-timestamp"
SIGNATURE_HEADER_STD = "webhook-signature"
DEFAULT_WINDOW_SECONDS = 300
MESSAGE_ID_MAX = 100  # webhook_receipts.message_id
STANDARD_SECRET_PREFIX = "whsec_"
SIGNATURES_MAX = 10  # signatures in one webhook-signature header (a rotation needs two)


@dataclass
class SignatureError(Exception):
    """A request whose signature headers do not prove it came from the sender.

    ``code`` is stable for clients and tests (missing_id, bad_id, missing_timestamp,
    bad_timestamp, timestamp_expired, missing_signature, bad_signature_format,
    signature_mismatch, no_secret_configured); ``field`` names the header at fault.
    """

    code: str
    message: str
    field: str

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message

    def to_json(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


@dataclass(frozen=True)
class Verified:
    """A request whose signature checked out: its scheme, its signing time, the message id
    its headers carry (``webhook-id``; None in crm-hmac, where the body's event_id is it) and
    the signature that matched (kept with what it caused)."""

    scheme: str
    timestamp: int
    message_id: str | None
    signature: str


# -- configuration ------------------------------------------------------------------------------


def parse_secrets(value: str | Iterable[str] | None) -> list[str]:
    """Secrets from configuration: a comma-separated string or a list; blanks dropped."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [s.strip() for s in items if s and s.strip()]


def parse_schemes(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """Schemes from configuration (``crm-hmac``, ``standard`` or both, comma-separated);
    unset means ``crm-hmac``. An unknown name is a configuration error (ValueError)."""
    names = parse_secrets(value) or [CRM_HMAC]
    unknown = [name for name in names if name not in SCHEMES]
    if unknown:
        raise ValueError(f"unknown webhook scheme {unknown[0]!r}: use {' or '.join(SCHEMES)}")
    return tuple(dict.fromkeys(names))


def check_schemes(config: Mapping) -> None:
    """Refuse to start with a scheme setting that names no scheme (rather than a 500 on every
    webhook): ValueError naming the setting."""
    for key in SCHEME_SETTINGS:
        try:
            parse_schemes(config.get(key))
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None


# -- signing (senders, sandboxes, tests) --------------------------------------------------------


def signature(secret: str, timestamp: str | int, body: bytes) -> str:
    """The ``X-Signature`` header value for ``body`` sent at ``timestamp`` (crm-hmac)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@lru_cache(maxsize=32)
def _standard_signer(secret: str) -> Webhook | None:
    """The library's signer for a ``whsec_<base64>`` secret; None for any other secret."""
    if not secret.startswith(STANDARD_SECRET_PREFIX):
        return None
    try:
        return Webhook(secret)
    except (binascii.Error, EmptyWebhookSecretError):
        return None


def standard_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of the Standard Webhooks scheme (its library signs)."""
    signer = _standard_signer(secret)
    if signer is None:
        raise ValueError("a Standard Webhooks secret is 'whsec_' and base64")
    return signer.sign(message_id, datetime.fromtimestamp(timestamp, UTC), body)


def signed_headers(secret: str, body: bytes, *, timestamp: int | None = None,
                   scheme: str = CRM_HMAC, message_id: str | None = None,
                   extra_secrets: Iterable[str] = ()) -> dict[str, str]:
    """Headers a sender (or a test, or a sandbox) attaches to ``body`` in ``scheme``.
    ``standard`` needs ``message_id`` (the same on every retry); ``extra_secrets`` adds one
    signature per further key to ``webhook-signature`` (a sender rotating its key)."""
    ts = int(clock.running_now().timestamp()) if timestamp is None else int(timestamp)
    if scheme == CRM_HMAC:
        return {"Content-Type": "application/json", TIMESTAMP_HEADER: str(ts),
                SIGNATURE_HEADER: signature(secret, ts, body)}
    if scheme != STANDARD or not message_id:
        raise ValueError("a standard webhook needs a message id")
    signatures = [standard_signature(key, message_id, ts, body)
                  for key in (secret, *extra_secrets)]
    return {"Content-Type": "application/json", ID_HEADER_STD: message_id,
            TIMESTAMP_HEADER_STD: str(ts), SIGNATURE_HEADER_STD: " ".join(signatures)}


# -- verifying ----------------------------------------------------------------------------------


def _timestamp(headers: Mapping[str, str], name: str, window_seconds: int,
               now: float | None) -> tuple[str, int]:
    raw_ts = (headers.get(name) or "").strip()
    if not raw_ts:
        raise SignatureError("missing_timestamp", f"{name} header is required", name)
    # ASCII digits only: str.isdigit() also accepts '²' or '١', which int() refuses or reads
    if not (raw_ts.isascii() and raw_ts.isdigit()) or len(raw_ts) > 12:
        raise SignatureError("bad_timestamp",
                             f"{name} must be unix seconds, got {raw_ts[:20]!r}", name)
    ts = int(raw_ts)
    current = clock.running_now().timestamp() if now is None else now
    if abs(current - ts) > window_seconds:
        raise SignatureError(
            "timestamp_expired",
            f"{name} is {int(current - ts)} s from the receiver's clock; "
            f"the window is ±{window_seconds} s", name)
    return raw_ts, ts


def _verify_crm_hmac(headers: Mapping[str, str], body: bytes, keys: list[str],
                     window_seconds: int, now: float | None) -> Verified:
    raw_ts, ts = _timestamp(headers, TIMESTAMP_HEADER, window_seconds, now)
    raw_sig = (headers.get(SIGNATURE_HEADER) or "").strip()
    if not raw_sig:
        raise SignatureError("missing_signature", f"{SIGNATURE_HEADER} header is required",
                             SIGNATURE_HEADER)
    if not raw_sig.startswith("sha256=") or len(raw_sig) != 7 + 64:
        raise SignatureError("bad_signature_format",
                             f"{SIGNATURE_HEADER} must be 'sha256=<64 hex digits>'",
                             SIGNATURE_HEADER)
    if not any(hmac.compare_digest(signature(k, raw_ts, body), raw_sig) for k in keys):
        raise SignatureError("signature_mismatch",
                             "signature does not match the body and timestamp",
                             SIGNATURE_HEADER)
    return Verified(CRM_HMAC, ts, None, raw_sig)


def _standard_signatures(raw: str) -> list[str]:
    """The ``v1`` signatures of a ``webhook-signature`` header; other versions are skipped
    (the spec lets a sender add them), a malformed entry is refused."""
    entries = raw.split()
    if len(entries) > SIGNATURES_MAX:
        raise SignatureError("bad_signature_format",
                             f"{SIGNATURE_HEADER_STD} holds more than {SIGNATURES_MAX} signatures",
                             SIGNATURE_HEADER_STD)
    found = []
    for entry in entries:
        version, comma, value = entry.partition(",")
        if not comma or not version or not value:
            raise SignatureError("bad_signature_format",
                                 f"{SIGNATURE_HEADER_STD} must be space-separated "
                                 "'v1,<base64>' signatures", SIGNATURE_HEADER_STD)
        if version == "v1":
            try:
                digest = base64.b64decode(value, validate=True)
            except ValueError:
                digest = b""
            if len(digest) != hashlib.sha256().digest_size:
                raise SignatureError("bad_signature_format",
                                     f"{SIGNATURE_HEADER_STD}: a v1 signature is the base64 of "
                                     "32 bytes", SIGNATURE_HEADER_STD)
            found.append(entry)
    if not found:
        raise SignatureError("bad_signature_format",
                             f"{SIGNATURE_HEADER_STD} holds no v1 signature",
                             SIGNATURE_HEADER_STD)
    return found


def _verify_standard(headers: Mapping[str, str], body: bytes, keys: list[str],
                     window_seconds: int, now: float | None) -> Verified:
    signers = [signer for signer in map(_standard_signer, keys) if signer is not None]
    if not signers:
        raise SignatureError("no_secret_configured", "the receiver has no Standard Webhooks "
                             "secret (whsec_…) configured", SIGNATURE_HEADER_STD)
    message_id = (headers.get(ID_HEADER_STD) or "").strip()
    if not message_id:
        raise SignatureError("missing_id", f"{ID_HEADER_STD} header is required",
                             ID_HEADER_STD)
    if len(message_id) > MESSAGE_ID_MAX or not message_id.isprintable() \
            or not message_id.isascii():
        raise SignatureError("bad_id", f"{ID_HEADER_STD} must be printable ASCII of at most "
                             f"{MESSAGE_ID_MAX} characters", ID_HEADER_STD)
    _, ts = _timestamp(headers, TIMESTAMP_HEADER_STD, window_seconds, now)
    raw_sig = (headers.get(SIGNATURE_HEADER_STD) or "").strip()
    if not raw_sig:
        raise SignatureError("missing_signature", f"{SIGNATURE_HEADER_STD} header is required",
                             SIGNATURE_HEADER_STD)
    presented = _standard_signatures(raw_sig)
    moment = datetime.fromtimestamp(ts, UTC)
    expected = [signer.sign(message_id, moment, body).encode() for signer in signers]
    matching = next((p for p in presented
                     if any(hmac.compare_digest(e, p.encode()) for e in expected)), None)
    if matching is None:
        raise SignatureError("signature_mismatch",
                             "no signature matches the id, timestamp and body",
                             SIGNATURE_HEADER_STD)
    return Verified(STANDARD, ts, message_id, matching)


VERIFIERS = {CRM_HMAC: _verify_crm_hmac, STANDARD: _verify_standard}
SIGNATURE_HEADERS = {CRM_HMAC: SIGNATURE_HEADER, STANDARD: SIGNATURE_HEADER_STD}


def verify_message(headers: Mapping[str, str], body: bytes, secrets: Iterable[str] | str | None,
                   *, schemes: Iterable[str] = (CRM_HMAC,),
                   window_seconds: int = DEFAULT_WINDOW_SECONDS,
                   now: float | None = None) -> Verified:
    """Check the signature headers of a request in one of ``schemes``; raise SignatureError.

    With more than one scheme the request is read in the first whose signature header it
    carries (else in the first scheme, whose missing header the error names)."""
    keys = parse_secrets(secrets)
    names = tuple(schemes)
    if not keys:
        raise SignatureError("no_secret_configured", "the receiver has no signing secret "
                             "configured", SIGNATURE_HEADERS[names[0]])
    scheme = next((name for name in names if headers.get(SIGNATURE_HEADERS[name])), names[0])
    return VERIFIERS[scheme](headers, body, keys, window_seconds, now)


def verify(headers: Mapping[str, str], body: bytes, secrets: Iterable[str] | str | None, *,
           window_seconds: int = DEFAULT_WINDOW_SECONDS, now: float | None = None) -> int:
    """Check a crm-hmac request; return its timestamp or raise SignatureError."""
    return verify_message(headers, body, secrets, window_seconds=window_seconds,
                          now=now).timestamp


# -- signed, expiring links (the public pay page) -----------------------------------------------


class _ClockSigner(TimestampSigner):
    """itsdangerous' timestamp signer on the product's clock (``portal.clock.now``: a link's
    age decides what a customer sees, so it follows the clock a test or demo sets)."""

    def get_timestamp(self) -> int:
        return int(clock.now().timestamp())


class LinkError(Exception):
    """A link token that is not ours (``code`` "invalid") or too old (``code`` "expired"; its
    ``value``, whose signature held, is kept: the page can still speak the link's language)."""

    def __init__(self, code: str, value: str | None = None):
        super().__init__(code)
        self.code, self.value = code, value


def sign_link(value: str, purpose: str, secret: str) -> str:
    """``value`` signed with the time for a link (URL-safe: ``value.timestamp.signature``);
    ``purpose`` keeps a token made for one kind of link from opening another."""
    return _ClockSigner(secret, salt=f"link:{purpose}").sign(value).decode()


def read_link(token: str, purpose: str, secret: str, max_age_seconds: int) -> str:
    """The value of a link token made by ``sign_link``; LinkError when it was altered or made
    for another purpose ("invalid"), or is older than ``max_age_seconds`` ("expired")."""
    signer = _ClockSigner(secret, salt=f"link:{purpose}")
    try:
        return signer.unsign(token, max_age=max_age_seconds).decode()
    except SignatureExpired as exc:
        value = exc.payload.decode() if isinstance(exc.payload, bytes) else None
        raise LinkError("expired", value) from None
    except BadSignature:
        raise LinkError("invalid") from None
