"""The Standard Webhooks scheme of portal/signing.py: signatures made by the `standardwebhooks`
library (and the spec's published test vector), key rotation, and every refusal naming its
header; the choice of scheme per sender."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from portal.signing import (
    CRM_HMAC,
    STANDARD,
    SignatureError,
    parse_schemes,
    signed_headers,
    standard_signature,
    verify_message,
)

SECRET = "whsec_" + base64.b64encode(b"current standard secret").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"previous standard secret").decode()
BODY = b'{"event_id":"e-1","amount":"1500000"}'
MSG = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
NOW = 1_790_000_000


def library_headers(secret: str, *, msg_id: str = MSG, timestamp: int = NOW,
                    body: bytes = BODY) -> dict[str, str]:
    """Headers as a Standard Webhooks sender makes them: the reference library signs."""
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, UTC), body)
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature}


def refused(headers, body=BODY, secrets=(SECRET,), schemes=(STANDARD,)) -> SignatureError:
    with pytest.raises(SignatureError) as info:
        verify_message(headers, body, secrets, schemes=schemes, now=NOW)
    return info.value


def test_the_specs_published_test_vector_is_reproduced():
    # the vector of the Standard Webhooks reference libraries' tests
    assert standard_signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                              "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                              b'{"test": 2432232314}') \
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_request_signed_by_the_library_verifies_with_its_id_and_signature():
    headers = library_headers(SECRET)
    verified = verify_message(headers, BODY, [SECRET], schemes=[STANDARD], now=NOW)
    assert (verified.scheme, verified.timestamp, verified.message_id) == (STANDARD, NOW, MSG)
    assert verified.signature == headers["webhook-signature"]
    # and what the portal's sandboxes send is what the library verifies
    ours = signed_headers(SECRET, BODY, timestamp=NOW, scheme=STANDARD, message_id=MSG)
    assert ours["webhook-signature"] == headers["webhook-signature"]


def test_rotation_any_signature_against_any_secret():
    # the sender signs with its old and its new key; the receiver knows only the new one
    old, new = (library_headers(s)["webhook-signature"] for s in (OLD_SECRET, SECRET))
    headers = {**library_headers(SECRET), "webhook-signature": f"{old} {new}"}
    assert verify_message(headers, BODY, [SECRET], schemes=[STANDARD], now=NOW).signature == new
    # the receiver knows both during the rotation; the sender still signs with the old one
    only_old = library_headers(OLD_SECRET)
    assert verify_message(only_old, BODY, f"{SECRET},{OLD_SECRET}", schemes=[STANDARD],
                          now=NOW).message_id == MSG
    # a retired key no longer verifies
    assert refused(only_old).code == "signature_mismatch"
    # signatures of other versions are skipped, not refused
    mixed = {**library_headers(SECRET),
             "webhook-signature": f"v1a,c29tZXRoaW5nIGVsc2U= {new}"}
    assert verify_message(mixed, BODY, [SECRET], schemes=[STANDARD], now=NOW).signature == new


def test_a_signature_of_another_id_timestamp_or_body_is_refused():
    good = library_headers(SECRET)
    assert refused({**good, "webhook-id": "msg_other"}).code == "signature_mismatch"
    assert refused({**good, "webhook-timestamp": str(NOW + 1)}).code == "signature_mismatch"
    error = refused(good, body=BODY.replace(b"1500000", b"9500000"))
    assert (error.code, error.field) == ("signature_mismatch", "webhook-signature")


@pytest.mark.parametrize("skew, ok", [(300, True), (-300, True), (301, False), (-301, False)])
def test_the_window_is_five_minutes_either_way(skew, ok):
    headers = library_headers(SECRET, timestamp=NOW + skew)
    if ok:
        assert verify_message(headers, BODY, [SECRET], schemes=[STANDARD], now=NOW).timestamp \
            == NOW + skew
    else:
        error = refused(headers)
        assert (error.code, error.field) == ("timestamp_expired", "webhook-timestamp")


GOOD = library_headers(SECRET)


@pytest.mark.parametrize("headers, code, field", [
    ({}, "missing_id", "webhook-id"),
    ({**GOOD, "webhook-id": " "}, "missing_id", "webhook-id"),
    ({**GOOD, "webhook-id": "x" * 101}, "bad_id", "webhook-id"),
    ({**GOOD, "webhook-id": "msg\n1"}, "bad_id", "webhook-id"),
    ({"webhook-id": MSG, "webhook-signature": GOOD["webhook-signature"]},
     "missing_timestamp", "webhook-timestamp"),
    ({**GOOD, "webhook-timestamp": "1790000000.5"}, "bad_timestamp", "webhook-timestamp"),
    ({**GOOD, "webhook-timestamp": "yesterday"}, "bad_timestamp", "webhook-timestamp"),
    ({"webhook-id": MSG, "webhook-timestamp": str(NOW)}, "missing_signature",
     "webhook-signature"),
    ({**GOOD, "webhook-signature": "sha256=" + "0" * 64}, "bad_signature_format",
     "webhook-signature"),
    ({**GOOD, "webhook-signature": "v1,not-base64!"}, "bad_signature_format",
     "webhook-signature"),
    ({**GOOD, "webhook-signature": "v1,c2hvcnQ="}, "bad_signature_format", "webhook-signature"),
    ({**GOOD, "webhook-signature": "v1a,c2hvcnQ="}, "bad_signature_format",
     "webhook-signature"),
    ({**GOOD, "webhook-signature": " ".join([GOOD["webhook-signature"]] * 11)},
     "bad_signature_format", "webhook-signature"),
])
def test_malformed_headers_name_the_header(headers, code, field):
    error = refused(headers)
    assert (error.code, error.field) == (code, field)
    assert error.to_json()["error"] == {"code": code, "message": error.message, "field": field}


def test_without_a_whsec_secret_the_standard_scheme_refuses_everything():
    error = refused(GOOD, secrets=["plain-crm-secret", "whsec_"])
    assert (error.code, error.field) == ("no_secret_configured", "webhook-signature")


def test_a_sender_configured_for_both_schemes_is_read_in_the_scheme_its_headers_carry():
    both = (STANDARD, CRM_HMAC)
    crm = signed_headers("plain-crm-secret", BODY, timestamp=NOW)
    secrets = ["plain-crm-secret", SECRET]
    assert verify_message(crm, BODY, secrets, schemes=both, now=NOW).scheme == CRM_HMAC
    assert verify_message(GOOD, BODY, secrets, schemes=both, now=NOW).scheme == STANDARD
    # neither signature header: the first configured scheme names what is missing
    assert refused({}, secrets=secrets, schemes=both).field == "webhook-id"
    # configured for crm-hmac only, standard headers are not read
    error = refused(GOOD, secrets=secrets, schemes=(CRM_HMAC,))
    assert (error.code, error.field) == ("missing_timestamp", "X-Timestamp")


def test_schemes_from_configuration():
    assert parse_schemes(None) == (CRM_HMAC,) and parse_schemes("") == (CRM_HMAC,)
    assert parse_schemes("standard") == (STANDARD,)
    assert parse_schemes(" standard , crm-hmac ") == (STANDARD, CRM_HMAC)
    with pytest.raises(ValueError, match="unknown webhook scheme 'svix'"):
        parse_schemes("svix")


def test_a_sender_must_name_the_message_and_use_a_whsec_secret():
    with pytest.raises(ValueError):
        signed_headers(SECRET, BODY, timestamp=NOW, scheme=STANDARD)
    with pytest.raises(ValueError):
        signed_headers("plain", BODY, timestamp=NOW, scheme=STANDARD, message_id=MSG)
