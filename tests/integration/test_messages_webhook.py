"""The SMS gateway's delivery reports: signed (Standard Webhooks or crm-hmac), idempotent,
and bad bodies refused with a 4xx JSON error naming the field."""

from __future__ import annotations

import json

import pytest

from portal import clock
from portal.models import Message
from portal.signing import CRM_HMAC, STANDARD, signed_headers
from tests.messages_support import TEST_SMS_SECRET

URL = "/api/v1/sms/delivery-reports"


def _post(client, payload, *, secret=TEST_SMS_SECRET, scheme=STANDARD, raw: bytes | None = None,
          message_id="msg_report1"):
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = signed_headers(secret, body, scheme=scheme, message_id=message_id)
    return client.post(URL, data=body, headers=headers)


@pytest.fixture
def sent_sms(db, msg_customer):
    at = clock.now()
    message = Message(cif=msg_customer.cif, channel="sms", status="sent", body="x",
                      provider_id="GW-0001", business_date=clock.bank_today(at), sent_at=at,
                      phone_id=msg_customer.phone.id, recipient="+84912345678")
    db.session.add(message)
    db.session.commit()
    return message


def test_a_delivered_report_marks_the_message_once(db, client, sent_sms):
    report = {"id": "GW-0001", "reference": f"msg-{sent_sms.id}", "status": "delivered",
              "occurred_at": "2026-12-07T03:00:00Z"}
    first = _post(client, report)
    assert first.status_code == 200
    assert first.json == {"id": "GW-0001", "message_id": sent_sms.id, "status": "delivered",
                          "changed": True}
    again = _post(client, report, message_id="msg_report2")
    assert again.status_code == 200 and again.json["changed"] is False
    late_failure = _post(client, {**report, "status": "failed"}, message_id="msg_report3")
    assert late_failure.json["status"] == "delivered"
    db.session.expire_all()
    stored = db.session.get(Message, sent_sms.id)
    assert stored.status == "delivered"
    assert stored.delivered_at.isoformat().startswith("2026-12-07T03:00:00")


def test_a_failed_report_keeps_the_gateway_reason(db, client, sent_sms):
    response = _post(client, {"id": "GW-0001", "status": "failed",
                              "error": {"code": "UNDELIVERABLE", "message": "handset off"}})
    assert response.status_code == 200 and response.json["status"] == "failed"
    db.session.expire_all()
    stored = db.session.get(Message, sent_sms.id)
    assert stored.status_detail == "UNDELIVERABLE handset off" and stored.failed_at


def test_crm_hmac_reports_are_read_too(app, db, client, sent_sms):
    saved = app.config["SMS_WEBHOOK_SECRETS"]
    app.config["SMS_WEBHOOK_SECRETS"] = f"{saved},test-sms-hmac"
    try:
        response = _post(client, {"id": "GW-0001", "status": "delivered"}, scheme=CRM_HMAC,
                         secret="test-sms-hmac")
    finally:
        app.config["SMS_WEBHOOK_SECRETS"] = saved
    assert response.status_code == 200 and response.json["status"] == "delivered"


@pytest.mark.parametrize(("payload", "raw", "status", "code", "field"), [
    (None, b"not json", 400, "bad_json", "body"),
    ([1, 2], None, 400, "bad_request", "body"),
    ({"status": "delivered"}, None, 400, "bad_field", "id"),
    ({"id": 12, "status": "delivered"}, None, 400, "bad_field", "id"),
    ({"id": "GW-0001", "status": "read"}, None, 400, "bad_field", "status"),
    ({"id": "GW-0001", "status": "delivered", "occurred_at": "yesterday"}, None, 400,
     "bad_field", "occurred_at"),
    ({"id": "GW-0001", "status": "failed", "error": "boom"}, None, 400, "bad_field", "error"),
    ({"id": "GW-0001\u0000", "status": "delivered"}, None, 400, "bad_field", "id"),
    ({"id": "GW-unknown", "status": "delivered"}, None, 404, "unknown_message", "id"),
])
def test_bad_reports_get_a_json_error_naming_the_field(db, client, sent_sms, payload, raw,
                                                       status, code, field):
    response = _post(client, payload, raw=raw)
    assert response.status_code == status
    assert response.json["error"]["code"] == code and response.json["error"]["field"] == field
    db.session.expire_all()
    assert db.session.get(Message, sent_sms.id).status == "sent"


def test_an_unsigned_or_wrongly_signed_report_is_refused(db, client, sent_sms):
    body = json.dumps({"id": "GW-0001", "status": "delivered"}).encode()
    assert client.post(URL, data=body, headers={"Content-Type": "application/json"}) \
        .status_code == 401
    wrong = _post(client, {"id": "GW-0001", "status": "delivered"},
                  secret="whsec_d3Jvbmctc2VjcmV0")
    assert wrong.status_code == 401 and "error" in wrong.json
    db.session.expire_all()
    assert db.session.get(Message, sent_sms.id).status == "sent"


def test_a_body_over_the_limit_is_refused_unread(app, db, client, sent_sms):
    big = json.dumps({"id": "GW-0001", "status": "delivered",
                      "pad": "x" * (app.config["SMS_WEBHOOK_MAX_BYTES"] + 10)}).encode()
    response = _post(client, None, raw=big)
    assert response.status_code == 413 and response.json["error"]["code"] == "body_too_large"
