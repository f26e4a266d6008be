"""Signed webhooks (payment system, call centre): one rule for signing and verifying.

Headers: ``X-Timestamp: <unix seconds>`` and ``X-Signature: sha256=<hex>`` where ``<hex>`` is
HMAC-SHA256, keyed with a shared secret, of ``"{timestamp}." + raw body``. Two secrets may be
configured at once (current and next) so the sender can rotate without a gap. A timestamp
outside the replay window (default 300 s, either direction) is refused, so a captured request
cannot be replayed later; a replay inside the window is caught by the receiver's idempotency key
(``event_id``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from portal import clock

TIMESTAMP_HEADER = "X-Timestamp"
SIGNATURE_HEADER = "X-Signature"
DEFAULT_WINDOW_SECONDS = 300


@dataclass
class SignatureError(Exception):
    """A request whose signature headers do not prove it came from the sender.

    ``code`` is stable for clients and tests (missing_timestamp, bad_timestamp,
    timestamp_expired, missing_signature, bad_signature_format, signature_mismatch,
    no_secret_configured); ``field`` names the header at fault.
    """

    code: str
    message: str
    field: str

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message

    def to_json(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


def signature(secret: str, timestamp: str | int, body: bytes) -> str:
    """The ``X-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """Headers a sender (or a test, or a sandbox) attaches to ``body``."""
    ts = str(int(clock.running_now().timestamp()) if timestamp is None else timestamp)
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: signature(secret, ts, body),
    }


def parse_secrets(value: str | Iterable[str] | None) -> list[str]:
    """Secrets from configuration: a comma-separated string or a list; blanks dropped."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [s.strip() for s in items if s and s.strip()]


def verify(headers: Mapping[str, str], body: bytes, secrets: Iterable[str], *,
           window_seconds: int = DEFAULT_WINDOW_SECONDS, now: float | None = None) -> int:
    """Check the signature headers of a request; return its timestamp or raise SignatureError."""
    keys = parse_secrets(secrets)
    if not keys:
        raise SignatureError("no_secret_configured",
                             "the receiver has no signing secret configured", SIGNATURE_HEADER)
    raw_ts = (headers.get(TIMESTAMP_HEADER) or "").strip()
    if not raw_ts:
        raise SignatureError("missing_timestamp", f"{TIMESTAMP_HEADER} header is required",
                             TIMESTAMP_HEADER)
    # ASCII digits only: str.isdigit() also accepts '²' or '١', which int() refuses or reads
    if not (raw_ts.isascii() and raw_ts.isdigit()) or len(raw_ts) > 12:
        raise SignatureError("bad_timestamp",
                             f"{TIMESTAMP_HEADER} must be unix seconds, got {raw_ts[:20]!r}",
                             TIMESTAMP_HEADER)
    ts = int(raw_ts)
    current = clock.running_now().timestamp() if now is None else now
    if abs(current - ts) > window_seconds:
        raise SignatureError(
            "timestamp_expired",
            f"{TIMESTAMP_HEADER} is {int(current - ts)} s from the receiver's clock; "
            f"the window is ±{window_seconds} s",
            TIMESTAMP_HEADER,
        )
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
    return ts
