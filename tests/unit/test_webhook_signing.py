"""The one signing rule of inbound webhooks (portal/signing.py)."""

from __future__ import annotations

import pytest

from portal.signing import SignatureError, signature, signed_headers, verify

BODY = b'{"event_id": "e-1", "amount": "1500000"}'
NOW = 1_790_000_000


def refused(headers, body=BODY, secrets=("s1",), **kwargs) -> SignatureError:
    with pytest.raises(SignatureError) as info:
        verify(headers, body, secrets, now=NOW, **kwargs)
    return info.value


def test_a_signed_request_verifies_and_returns_its_timestamp():
    assert verify(signed_headers("s1", BODY, timestamp=NOW), BODY, ["s1"], now=NOW) == NOW


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    import hashlib
    import hmac

    expected = hmac.new(b"s1", f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signature("s1", NOW, BODY) == f"sha256={expected}"


def test_two_secrets_are_accepted_during_a_rotation():
    headers = signed_headers("next", BODY, timestamp=NOW)
    assert verify(headers, BODY, "current, next", now=NOW) == NOW
    assert refused(headers, secrets=["current"]).code == "signature_mismatch"


@pytest.mark.parametrize("skew, ok", [(300, True), (-300, True), (301, False), (-301, False)])
def test_the_replay_window_is_five_minutes_either_way(skew, ok):
    headers = signed_headers("s1", BODY, timestamp=NOW + skew)
    if ok:
        assert verify(headers, BODY, ["s1"], now=NOW) == NOW + skew
    else:
        error = refused(headers)
        assert (error.code, error.field) == ("timestamp_expired", "X-Timestamp")


def test_a_tampered_body_is_refused():
    headers = signed_headers("s1", BODY, timestamp=NOW)
    assert refused(headers, body=BODY.replace(b"1500000", b"9500000")).code \
        == "signature_mismatch"


@pytest.mark.parametrize("headers, code, field", [
    ({}, "missing_timestamp", "X-Timestamp"),
    ({"X-Timestamp": "yesterday"}, "bad_timestamp", "X-Timestamp"),
    ({"X-Timestamp": str(NOW)}, "missing_signature", "X-Signature"),
    ({"X-Timestamp": str(NOW), "X-Signature": "md5=abc"}, "bad_signature_format", "X-Signature"),
])
def test_malformed_headers_name_the_header(headers, code, field):
    error = refused(headers)
    assert (error.code, error.field) == (code, field)
    assert error.to_json()["error"]["field"] == field


def test_no_configured_secret_refuses_everything():
    assert refused(signed_headers("", BODY, timestamp=NOW), secrets=[" ", ""]).code \
        == "no_secret_configured"
