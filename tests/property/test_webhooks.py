"""The signed webhooks (payment notifications, call-centre events) under arbitrary bodies,
headers, signatures and timestamps: every answer is JSON; a refusal is a 4xx whose error names
the field at fault (never a 500); nothing refused is stored as a payment or a call."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import func, select

from portal import clock
from portal.models import CallRecord, Payment
from portal.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signed_headers
from tests.property.conftest import examples
from tests.property.strategies import any_values, json_values

CTI_URL = "/api/v1/cti/events"
CTI_SECRET = "prop-cti-secret"
PAY_URL = "/api/v1/payments/notifications"
PAY_SECRET = "test-payments-current"  # TestConfig.PAYMENT_WEBHOOK_SECRETS


@pytest.fixture
def cti_secret(app):
    saved = app.config.get("CTI_WEBHOOK_SECRETS")
    app.config["CTI_WEBHOOK_SECRETS"] = CTI_SECRET
    yield CTI_SECRET
    app.config["CTI_WEBHOOK_SECRETS"] = saved


def stored(db, model) -> int:
    value = db.session.scalar(select(func.count()).select_from(model))
    db.session.rollback()
    return value


def assert_refusal(response, statuses=range(400, 500)):
    assert response.status_code in statuses, (response.status_code, response.get_data()[:300])
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["code"] and error["message"]
    assert error["field"], error  # names what is wrong (a header, the body or a field)
    return error


# -- signatures: arbitrary headers never get past the check, never crash it ---------------------
header_text = st.one_of(
    st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=80),
    st.sampled_from(["²", "١٧٠٠٠٠٠٠٠٠", "1e9", "-1", " 1700000000 ", "0x10", "9" * 13,
                     "sha256=", "sha256=" + "g" * 64, "sha256=" + "A" * 64, "SHA256=" + "0" * 64,
                     "sha1=" + "0" * 40]))


@examples()
@example(timestamp="²", signature=None, url=CTI_URL)  # latin-1 '²' is a digit to str.isdigit
@example(timestamp="now", signature="sha256=" + "0" * 64, url=PAY_URL)
@given(timestamp=st.one_of(st.none(), header_text, st.just("now")),
       signature=st.one_of(st.none(), header_text), url=st.sampled_from([CTI_URL, PAY_URL]))
def test_a_bad_signature_is_a_401_naming_the_header(client, db, cti_secret, timestamp,
                                                    signature, url):
    headers = {"Content-Type": "application/json"}
    if timestamp is not None:
        headers[TIMESTAMP_HEADER] = (
            str(int(clock.running_now().timestamp())) if timestamp == "now" else timestamp)
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    before = stored(db, Payment), stored(db, CallRecord)
    response = client.post(url, data=b'{"event_id": "x"}', headers=headers)
    error = assert_refusal(response, (401,))
    assert error["field"] in (TIMESTAMP_HEADER, SIGNATURE_HEADER)
    assert (stored(db, Payment), stored(db, CallRecord)) == before


# -- bodies: signed correctly, but anything at all ------------------------------------------------
def valid_cti_event(n: int) -> dict:
    return {"event_id": f"prop-{n}", "type": "call.started",
            "occurred_at": "2026-11-24T08:00:00Z",
            "data": {"call_id": f"call-{n}", "phone": "0901234567", "direction": "outbound"}}


def valid_payment(n: int) -> dict:
    return {"event_id": f"prop-{n}", "type": "payment.received", "reference_number": f"R{n}",
            "loan_account_number": "LD-NONE", "cif": "C-NONE", "amount": "1000.00",
            "currency": "VND", "paid_at": "2026-11-24T08:00:00Z"}


def mutate(valid: dict, data) -> dict:
    """A valid body with fields removed, replaced by hostile values, or added."""
    body = json.loads(json.dumps(valid))
    for _ in range(data.draw(st.integers(1, 3))):
        target = body
        if "data" in body and isinstance(body["data"], dict) and data.draw(st.booleans()):
            target = body["data"]
        key = data.draw(st.sampled_from(sorted(target) + ["extra"]))
        if data.draw(st.booleans()):
            target.pop(key, None)
        else:
            target[key] = data.draw(any_values)
    return body


def encode(body) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body, default=str).encode()


bodies = st.one_of(st.binary(max_size=200), st.builds(lambda v: json.dumps(v).encode(),
                                                      json_values))


@examples()
@given(data=st.data())
def test_any_signed_cti_body_is_answered_never_a_500(client, db, cti_secret, data):
    valid = valid_cti_event(data.draw(st.integers(0, 10**6)))
    body = data.draw(st.one_of(bodies, st.builds(lambda: mutate(valid, data))))
    raw = encode(body)
    before = stored(db, CallRecord)
    response = client.post(CTI_URL, data=raw, headers=signed_headers(CTI_SECRET, raw))
    if response.status_code == 200:
        assert response.get_json()["accepted"] is True
        assert stored(db, CallRecord) <= before + 1
    else:
        assert_refusal(response, (400,))
        assert stored(db, CallRecord) == before


@examples()
@given(data=st.data())
def test_any_signed_payment_body_is_answered_never_a_500(client, db, data):
    valid = valid_payment(data.draw(st.integers(0, 10**6)))
    body = data.draw(st.one_of(bodies, st.builds(lambda: mutate(valid, data))))
    raw = encode(body)
    before = stored(db, Payment)
    response = client.post(PAY_URL, data=raw, headers=signed_headers(PAY_SECRET, raw))
    assert response.mimetype == "application/json"
    if response.status_code < 300:
        assert stored(db, Payment) <= before + 1
    else:
        assert_refusal(response)
        assert stored(db, Payment) == before


def test_cti_json_nested_deeper_than_the_decoder_goes_is_a_400(client, db, cti_secret):
    raw = b"[" * 30_000 + b"]" * 30_000
    response = client.post(CTI_URL, data=raw, headers=signed_headers(CTI_SECRET, raw))
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "body"


def test_a_payment_body_nested_too_deep_is_a_400(client, db):
    raw = b"[" * 30_000 + b"]" * 30_000
    response = client.post(PAY_URL, data=raw, headers=signed_headers(PAY_SECRET, raw))
    assert response.status_code == 400


@pytest.mark.parametrize("url", [CTI_URL, PAY_URL])
@pytest.mark.parametrize("size", [64 * 1024 + 1, 4 * 1024 * 1024 + 1])
def test_an_oversized_body_is_refused_without_reading_it(client, db, cti_secret, url, size):
    raw = b'{"event_id": "' + b"x" * (size - 16) + b'"}'
    secret = CTI_SECRET if url == CTI_URL else PAY_SECRET
    response = client.post(url, data=raw, headers=signed_headers(secret, raw))
    assert response.status_code == 413, response.get_data()[:200]
    assert response.mimetype == "application/json"
    assert (stored(db, Payment), stored(db, CallRecord)) == (0, 0)


@pytest.mark.parametrize("name", ["event_id", "reference_number"])
def test_a_refused_notification_with_a_nul_is_logged_and_answered(client, db, name):
    raw = json.dumps({name: "R\x00"}).encode()
    response = client.post(PAY_URL, data=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 401


def test_cti_times_and_durations_out_of_range_are_a_400(client, db, cti_secret):
    now = "2026-11-24T08:00:00Z"
    cases = [("occurred_at", "0001-01-01T00:00:00+05:00", None),
             ("data.started_at", now, {"started_at": "9999-12-31T23:59:59-05:00"}),
             ("data.duration_seconds", now, {"duration_seconds": 10**18})]
    statuses = []
    for n, (_field, occurred, data) in enumerate(cases):
        body = {"event_id": f"e{n}", "type": "call.ended", "occurred_at": occurred,
                "data": {"call_id": f"c{n}", "phone": "0901234567", **(data or {})}}
        raw = json.dumps(body).encode()
        try:
            statuses.append(client.post(CTI_URL, data=raw,
                                        headers=signed_headers(CTI_SECRET, raw)).status_code)
        except OverflowError:
            statuses.append(500)
        db.session.rollback()
    assert statuses == [400, 400, 400]
