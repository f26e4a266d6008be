"""Standard Webhooks beside the crm-hmac scheme, on both signed webhooks (payment system, call
centre): signatures made by the `standardwebhooks` library, key rotation, wrong / expired /
missing headers, and idempotent messages — an identical resend answers 200 with the first
answer and applies nothing again, the same id with another body is 409 — in both schemes.
Then the sandbox senders, configured for the standard scheme, over real HTTP."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import requests
from sqlalchemy import event, func, select
from standardwebhooks import Webhook

from integrations.sandbox._api import ServerThread
from integrations.sandbox.callcentre_server import create_app as create_callcentre
from integrations.sandbox.payments_server import Knobs
from integrations.sandbox.payments_server import create_app as create_payments
from portal import clock
from portal.models import Action, AgentStatusEvent, CallRecord, Event, Payment
from portal.models.payments import RejectedNotification
from portal.models.webhooks import WebhookReceipt
from portal.signing import signed_headers
from tests.integration.test_call_centre import assert_portal_holds_exactly, simulate

PAY_URL = "/api/v1/payments/notifications"
CTI_URL = "/api/v1/cti/events"
PAY_SECRET = "whsec_" + base64.b64encode(b"payments standard key 2026").decode()
PAY_OLD_SECRET = "whsec_" + base64.b64encode(b"payments standard key 2025").decode()
CTI_SECRET = "whsec_" + base64.b64encode(b"call centre standard key").decode()
CTI_CRM_SECRET = "cti-crm-hmac-secret"


def now_seconds() -> int:
    return int(clock.running_now().timestamp())


def standard(secret: str | list[str], body: bytes, msg_id: str,
             timestamp: int | None = None) -> dict[str, str]:
    """Headers as a Standard Webhooks sender makes them (the reference library signs); a list
    of secrets signs with each (a sender rotating its key)."""
    moment = datetime.fromtimestamp(now_seconds() if timestamp is None else timestamp, UTC)
    secrets = [secret] if isinstance(secret, str) else secret
    return {"Content-Type": "application/json", "webhook-id": msg_id,
            "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": " ".join(Webhook(s).sign(msg_id, moment, body)
                                          for s in secrets)}


def count(db, model, *where) -> int:
    value = db.session.scalar(select(func.count()).select_from(model).where(*where))
    db.session.rollback()
    return value


# -- payments -----------------------------------------------------------------------------------


@pytest.fixture
def payments_standard(app, monkeypatch):
    monkeypatch.setitem(app.config, "PAYMENT_WEBHOOK_SCHEME", "standard")
    monkeypatch.setitem(app.config, "PAYMENT_WEBHOOK_SECRETS", PAY_SECRET)


@pytest.fixture
def loan(db, make_customer, make_loan):
    return make_loan(make_customer(), dpd=12, currency="VND", due_amount=Decimal("10000000"),
                     outstanding=Decimal("80000000"))


def payment_body(loan, n: int = 1, **overrides) -> bytes:
    body = {"event_id": f"evt-{loan.account_number}-{n}", "type": "payment.received",
            "reference_number": f"REF-{loan.account_number}-{n}",
            "loan_account_number": loan.account_number, "cif": loan.cif,
            "amount": "3000000.00", "currency": "VND",
            "paid_at": clock.now().isoformat(timespec="seconds"), "channel": "MOBILE_BANKING"}
    body.update(overrides)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


def test_a_standard_payment_webhook_is_stored_once_and_a_resend_gets_the_first_answer(
        client, db, loan, payments_standard):
    body = payment_body(loan)
    headers = standard(PAY_SECRET, body, "msg_pay_1")
    first = client.post(PAY_URL, data=body, headers=headers)
    assert first.status_code == 201, first.get_json()
    answer = first.get_json()
    assert answer["duplicate"] is False and answer["status"] == "received"
    payment = db.session.get(Payment, answer["payment_id"])
    assert payment.event_id == f"evt-{loan.account_number}-1"
    assert payment.signature == headers["webhook-signature"]
    receipt = db.session.get(WebhookReceipt, ("PAYMENTS", "msg_pay_1"))
    assert (receipt.scheme, receipt.status_code, receipt.response) == ("standard", 201, answer)
    db.session.rollback()
    # the very same signed request again (its answer was lost), then a retry signed anew
    for again in (headers, standard(PAY_SECRET, body, "msg_pay_1", now_seconds() + 1)):
        resend = client.post(PAY_URL, data=body, headers=again)
        assert resend.status_code == 200
        assert resend.get_json() == answer
        assert resend.headers["Idempotent-Replayed"] == "true"
    assert count(db, Payment) == 1
    assert count(db, Event, Event.type == "PAYMENT_RECEIVED") == 1
    assert count(db, RejectedNotification) == 0


def test_receipts_are_kept_their_days_then_pruned_and_a_later_resend_is_not_applied_twice(
        app, client, db, loan, payments_standard, frozen_now):
    from portal.schedules import Jobs, resolve

    start = frozen_now(clock.running_now())
    body = payment_body(loan)
    assert client.post(PAY_URL, data=body, headers=standard(PAY_SECRET, body, "msg_old"))\
        .status_code == 201
    frozen_now(start + timedelta(days=app.config["WEBHOOK_RECEIPT_DAYS"], hours=1))
    other = payment_body(loan, 2)
    assert client.post(PAY_URL, data=other, headers=standard(PAY_SECRET, other, "msg_new"))\
        .status_code == 201
    db.session.rollback()
    assert resolve(Jobs.PRUNE_WEBHOOK_RECEIPTS)() == {"dropped": 1}
    db.session.rollback()
    assert [r.message_id for r in db.session.scalars(select(WebhookReceipt))] == ["msg_new"]
    # the old message sent again after its receipt is gone: its payment is still stored once
    resend = client.post(PAY_URL, data=body, headers=standard(PAY_SECRET, body, "msg_old"))
    assert resend.status_code == 200 and resend.get_json()["duplicate"] is True
    assert count(db, Payment) == 2


def test_a_scheme_setting_that_names_no_scheme_stops_the_start():
    from portal.app import build_app
    from portal.config import TestConfig

    with pytest.raises(ValueError, match="CTI_WEBHOOK_SCHEME: unknown webhook scheme 'svix'"):
        build_app(TestConfig, {"CTI_WEBHOOK_SCHEME": "standard,svix"})


def test_a_first_delivery_stays_one_statement_with_its_receipt(client, db, loan,
                                                               payments_standard):
    """The hot path: the payment, its event and the message's receipt are one statement; no
    lookup of receipts before it (only a delivery that did not apply looks)."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        if "payments" in statement or "webhook_receipts" in statement:
            seen.append(statement)

    body = payment_body(loan)
    event.listen(db.engine, "before_cursor_execute", record)
    try:
        response = client.post(PAY_URL, data=body, headers=standard(PAY_SECRET, body, "msg_hot"))
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert response.status_code == 201
    assert len(seen) == 1, seen
    assert all(f"INSERT INTO {table}" in seen[0]
               for table in ("payments", "events", "webhook_receipts"))
    assert count(db, WebhookReceipt) == 1


def test_rotation_signatures_of_an_old_and_a_new_key_and_two_receiver_secrets(
        app, client, db, loan, payments_standard, monkeypatch):
    # the sender signs with its old and its new key; the portal knows only the new one
    body = payment_body(loan, 1)
    both = standard([PAY_OLD_SECRET, PAY_SECRET], body, "msg_rot_1")
    assert len(both["webhook-signature"].split(" ")) == 2
    assert client.post(PAY_URL, data=body, headers=both).status_code == 201
    # the portal knows both during the rotation; a sender still on the old key is accepted
    monkeypatch.setitem(app.config, "PAYMENT_WEBHOOK_SECRETS", f"{PAY_SECRET},{PAY_OLD_SECRET}")
    body = payment_body(loan, 2)
    assert client.post(PAY_URL, data=body,
                       headers=standard(PAY_OLD_SECRET, body, "msg_rot_2")).status_code == 201
    # once the old key is retired, only the old key's signature is no longer enough
    monkeypatch.setitem(app.config, "PAYMENT_WEBHOOK_SECRETS", PAY_SECRET)
    body = payment_body(loan, 3)
    refused = client.post(PAY_URL, data=body, headers=standard(PAY_OLD_SECRET, body, "msg_r3"))
    assert refused.status_code == 401
    assert refused.get_json()["error"]["code"] == "signature_mismatch"
    assert count(db, Payment) == 2


@pytest.mark.parametrize("change, code, field", [
    (lambda h: {**h, "webhook-signature": standard(PAY_OLD_SECRET, b"x", "m")[
        "webhook-signature"]}, "signature_mismatch", "webhook-signature"),
    (lambda h: {k: v for k, v in h.items() if k != "webhook-id"}, "missing_id", "webhook-id"),
    (lambda h: {k: v for k, v in h.items() if k != "webhook-timestamp"}, "missing_timestamp",
     "webhook-timestamp"),
    (lambda h: {k: v for k, v in h.items() if k != "webhook-signature"}, "missing_timestamp",
     "X-Timestamp"),  # no standard signature header: not a standard request at all
    (lambda h: {**h, "webhook-signature": "v1,short"}, "bad_signature_format",
     "webhook-signature"),
])
def test_wrong_or_missing_headers_are_refused_naming_the_header(
        client, db, loan, payments_standard, app, monkeypatch, change, code, field):
    if field == "X-Timestamp":  # a sender allowed both schemes during a move
        monkeypatch.setitem(app.config, "PAYMENT_WEBHOOK_SCHEME", "crm-hmac,standard")
    body = payment_body(loan)
    response = client.post(PAY_URL, data=body,
                           headers=change(standard(PAY_SECRET, body, "msg_bad")))
    assert response.status_code == 401
    assert (response.get_json()["error"]["code"], response.get_json()["error"]["field"]) \
        == (code, field)
    rejected = db.session.scalar(select(RejectedNotification))
    assert rejected.code == code and rejected.status_code == 401
    assert count(db, Payment) == 0


def test_an_expired_timestamp_is_refused_even_for_a_known_message(client, db, loan,
                                                                  payments_standard):
    body = payment_body(loan)
    assert client.post(PAY_URL, data=body,
                       headers=standard(PAY_SECRET, body, "msg_old")).status_code == 201
    late = client.post(PAY_URL, data=body,
                       headers=standard(PAY_SECRET, body, "msg_old", now_seconds() - 301))
    assert late.status_code == 401
    assert late.get_json()["error"] == {
        "code": "timestamp_expired", "field": "webhook-timestamp",
        "message": late.get_json()["error"]["message"]}
    rejected = db.session.scalar(select(RejectedNotification))
    assert rejected.headers["webhook-id"] == "msg_old"  # kept for ops, with the signature
    assert rejected.headers["webhook-signature"].startswith("v1,")


def test_the_same_webhook_id_with_another_body_is_a_conflict(client, db, loan,
                                                             payments_standard):
    body = payment_body(loan, 1)
    assert client.post(PAY_URL, data=body,
                       headers=standard(PAY_SECRET, body, "msg_same")).status_code == 201
    # another payment altogether under the same id; then the same event changed
    for other in (payment_body(loan, 2), payment_body(loan, 1, amount="4000000.00")):
        conflict = client.post(PAY_URL, data=other,
                               headers=standard(PAY_SECRET, other, "msg_same"))
        assert conflict.status_code == 409, conflict.get_json()
        error = conflict.get_json()["error"]
        assert (error["code"], error["field"]) == ("message_conflict", "webhook-id")
    assert count(db, Payment) == 1
    assert count(db, Event, Event.type == "PAYMENT_RECEIVED") == 1
    assert count(db, RejectedNotification, RejectedNotification.code == "message_conflict") == 2


def test_a_new_message_for_a_payment_already_stored_is_a_duplicate(client, db, loan,
                                                                   payments_standard):
    body = payment_body(loan)
    first = client.post(PAY_URL, data=body, headers=standard(PAY_SECRET, body, "msg_a"))
    second = client.post(PAY_URL, data=body, headers=standard(PAY_SECRET, body, "msg_b"))
    assert second.status_code == 200 and "Idempotent-Replayed" not in second.headers
    assert second.get_json() == {**first.get_json(), "duplicate": True}
    assert count(db, Payment) == 1


def test_without_an_event_id_the_webhook_id_names_the_event(client, db, loan,
                                                            payments_standard):
    body = payment_body(loan, event_id=None)
    response = client.post(PAY_URL, data=body, headers=standard(PAY_SECRET, body, "msg_evt"))
    assert response.status_code == 201, response.get_json()
    assert db.session.get(Payment, response.get_json()["payment_id"]).event_id == "msg_evt"


def test_a_reversal_resent_is_answered_from_its_receipt(client, db, loan, payments_standard):
    paid = payment_body(loan, 1)
    client.post(PAY_URL, data=paid, headers=standard(PAY_SECRET, paid, "msg_paid"))
    reversal = payment_body(loan, 2, type="payment.reversed",
                            original_reference=f"REF-{loan.account_number}-1")
    headers = standard(PAY_SECRET, reversal, "msg_rev")
    first = client.post(PAY_URL, data=reversal, headers=headers)
    assert first.status_code == 201, first.get_json()
    again = client.post(PAY_URL, data=reversal, headers=headers)
    assert again.status_code == 200 and again.get_json() == first.get_json()
    assert count(db, Event, Event.type == "PAYMENT_REVERSED") == 1


def test_a_sender_configured_for_crm_hmac_is_not_read_as_standard(client, db, loan):
    body = payment_body(loan)
    response = client.post(PAY_URL, data=body, headers=standard(PAY_SECRET, body, "msg_x"))
    assert response.status_code == 401
    assert response.get_json()["error"]["field"] == "X-Timestamp"


def test_during_a_move_both_schemes_are_accepted_and_share_the_message_ids(
        app, client, db, loan, monkeypatch):
    monkeypatch.setitem(app.config, "PAYMENT_WEBHOOK_SCHEME", "standard,crm-hmac")
    monkeypatch.setitem(app.config, "PAYMENT_WEBHOOK_SECRETS",
                        f"test-payments-current,{PAY_SECRET}")
    old_style = payment_body(loan, 1)
    crm = client.post(PAY_URL, data=old_style,
                      headers=signed_headers("test-payments-current", old_style))
    new_style = payment_body(loan, 2)
    std = client.post(PAY_URL, data=new_style,
                      headers=standard(PAY_SECRET, new_style, "msg_move"))
    assert (crm.status_code, std.status_code) == (201, 201)
    schemes = {row.message_id: row.scheme for row in db.session.execute(
        select(WebhookReceipt.message_id, WebhookReceipt.scheme))}
    assert schemes == {f"evt-{loan.account_number}-1": "crm-hmac", "msg_move": "standard"}


# -- call centre --------------------------------------------------------------------------------


@pytest.fixture
def agent(make_user, make_customer, make_phone):
    """A call agent, and a customer whose mobile the calls go to (a call to a known number
    becomes an action on the customer's case)."""
    make_phone(make_customer(), "0901234567")
    return make_user(role="agent", phone_extension="3001", cti_agent_id="CTI-3001")


@pytest.fixture(params=["standard", "crm-hmac"])
def cti_scheme(request, app, monkeypatch):
    monkeypatch.setitem(app.config, "CTI_WEBHOOK_SCHEME", request.param)
    monkeypatch.setitem(app.config, "CTI_WEBHOOK_SECRETS", f"{CTI_CRM_SECRET},{CTI_SECRET}")
    return request.param


def cti_post(client, scheme: str, body: bytes, msg_id: str, timestamp: int | None = None):
    headers = standard(CTI_SECRET, body, msg_id, timestamp) if scheme == "standard" else \
        signed_headers(CTI_CRM_SECRET, body, timestamp=timestamp)
    return client.post(CTI_URL, data=body, headers=headers)


def call_ended(agent, event_id: str, **data) -> bytes:
    ended = clock.now().replace(microsecond=0)
    return json.dumps({
        "event_id": event_id, "type": "call.ended", "occurred_at": ended.isoformat(),
        "data": {"call_id": "CALL-1", "direction": "outbound", "agent_id": agent.cti_agent_id,
                 "phone": "+84901234567", "started_at": (ended - timedelta(minutes=2)).isoformat(),
                 "duration_seconds": 120, "disposition": "answered", **data}}).encode()


def test_a_cti_event_resent_gets_the_first_answer_and_logs_the_call_once(
        client, db, agent, cti_scheme):
    body = call_ended(agent, "evt-call-1")
    first = cti_post(client, cti_scheme, body, "msg_call_1")
    assert first.status_code == 200, first.get_json()
    assert first.get_json()["logged"] is True
    record = db.session.scalar(select(CallRecord))
    updated_at = record.updated_at
    db.session.rollback()
    # the same message again, re-signed a second later: the first answer (logged: true),
    # not a second application (which would answer logged: false)
    again = cti_post(client, cti_scheme, body, "msg_call_1", now_seconds() + 1)
    assert again.status_code == 200
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count(db, Action) == 1
    assert count(db, Event, Event.type == "CALL_LOGGED") == 1
    assert db.session.scalar(select(CallRecord.updated_at)) == updated_at
    message_id = "msg_call_1" if cti_scheme == "standard" else "evt-call-1"
    assert db.session.get(WebhookReceipt, ("CTI", message_id)).response == first.get_json()


def test_a_cti_message_id_with_another_body_is_a_conflict(client, db, agent, cti_scheme):
    assert cti_post(client, cti_scheme, call_ended(agent, "evt-1"), "msg_1").status_code == 200
    changed = call_ended(agent, "evt-1", disposition="voicemail")
    conflict = cti_post(client, cti_scheme, changed, "msg_1")
    assert conflict.status_code == 409, conflict.get_json()
    field = "webhook-id" if cti_scheme == "standard" else "event_id"
    assert conflict.get_json()["error"]["code"] == "message_conflict"
    assert conflict.get_json()["error"]["field"] == field
    assert db.session.scalar(select(CallRecord.disposition)) == "answered"


def test_an_agent_status_event_resent_is_applied_once(client, db, agent, cti_scheme):
    body = json.dumps({"event_id": "evt-status-1", "type": "agent.status_changed",
                       "occurred_at": clock.now().isoformat(),
                       "data": {"agent_id": agent.cti_agent_id, "status": "break"}}).encode()
    first = cti_post(client, cti_scheme, body, "msg_status_1")
    again = cti_post(client, cti_scheme, body, "msg_status_1")
    assert first.status_code == again.status_code == 200
    assert again.get_json() == first.get_json() and first.get_json()["changed"] is True
    assert count(db, AgentStatusEvent, AgentStatusEvent.agent_id == agent.id) == 1


def test_cti_standard_refusals_name_the_header(client, db, agent, app, monkeypatch):
    monkeypatch.setitem(app.config, "CTI_WEBHOOK_SCHEME", "standard")
    monkeypatch.setitem(app.config, "CTI_WEBHOOK_SECRETS", CTI_SECRET)
    body = call_ended(agent, "evt-x")
    wrong = standard(PAY_SECRET, body, "msg_x")
    expired = standard(CTI_SECRET, body, "msg_x", now_seconds() - 400)
    no_id = {k: v for k, v in standard(CTI_SECRET, body, "msg_x").items() if k != "webhook-id"}
    for headers, code, field in ((wrong, "signature_mismatch", "webhook-signature"),
                                 (expired, "timestamp_expired", "webhook-timestamp"),
                                 (no_id, "missing_id", "webhook-id")):
        response = client.post(CTI_URL, data=body, headers=headers)
        assert response.status_code == 401
        assert (response.get_json()["error"]["code"], response.get_json()["error"]["field"]) \
            == (code, field)
    assert count(db, CallRecord) == 0


# -- the sandbox senders over real HTTP, in the standard scheme ---------------------------------


def test_the_payments_sandbox_sends_standard_webhooks_with_duplicates_exactly_once(
        app, db, live_server, make_customer, make_loan, monkeypatch):
    secret = "whsec_" + base64.b64encode(b"sandbox standard payments").decode()
    monkeypatch.setitem(app.config, "PAYMENT_WEBHOOK_SCHEME", "standard")
    monkeypatch.setitem(app.config, "PAYMENT_WEBHOOK_SECRETS", secret)
    loans = [make_loan(make_customer(), dpd=5, due_amount=Decimal("9000000")) for _ in range(5)]
    sandbox = create_payments(portal_url=live_server.url, secret=secret, scheme="standard",
                              knobs=Knobs(duplicate_rate=1.0, bad_signature_rate=0.3,
                                          max_attempts=5), seed=3, senders=2)
    system = sandbox.extensions["payments_sandbox"]
    try:
        with ServerThread(sandbox) as server:
            items = [{"type": "payment.received", "loan_account_number": loan.account_number,
                      "cif": loan.cif, "amount": "1000000", "currency": "VND",
                      "paid_at": clock.now().isoformat(timespec="seconds")}
                     for loan in loans for _ in range(4)]
            created = requests.post(server.url + "/_sandbox/transactions",
                                    json={"transactions": items}, timeout=30)
            assert created.status_code == 201, created.text
            assert system.wait_idle(60)
            stats = requests.get(server.url + "/_sandbox/deliveries", timeout=5).json()
    finally:
        system.stop()
    assert stats["transactions"] == 20 and stats["duplicates"] == 20
    assert stats["bad_signatures"] > 0 and stats["gave_up"] == 0
    assert stats["acknowledged"] == 40  # every message and every copy answered 2xx
    assert stats["responses"].get("201") == 20 and stats["responses"].get("200") == 20
    assert count(db, Payment) == 20
    assert count(db, Event, Event.type == "PAYMENT_RECEIVED") == 20
    assert count(db, WebhookReceipt, WebhookReceipt.scheme == "standard") == 20
    assert count(db, RejectedNotification, RejectedNotification.code == "signature_mismatch") \
        == stats["bad_signatures"]


def test_the_call_centre_sandbox_sends_standard_webhooks_duplicated_and_shuffled(
        app, db, live_server, monkeypatch, make_team, make_user, make_customer, make_phone):
    secret = "whsec_" + base64.b64encode(b"sandbox standard cti").decode()
    monkeypatch.setitem(app.config, "CTI_WEBHOOK_SCHEME", "standard")
    monkeypatch.setitem(app.config, "CTI_WEBHOOK_SECRETS", secret)
    team = make_team(name=f"Calls {uuid.uuid4().hex[:6]}")
    agents = [make_user(role="agent", team_id=team.id, phone_extension=str(2101 + i),
                        cti_agent_id=f"CTI-{2101 + i}") for i in range(4)]
    numbers = {}
    for i in range(8):
        customer = make_customer()
        numbers[make_phone(customer, f"090{i:07d}").number_e164] = customer.cif
    sandbox = create_callcentre(agents=[], portal_url=live_server.url, secret=secret,
                                scheme="standard", traffic=False)
    with ServerThread(sandbox) as server:
        result = simulate(server, agents=[a.cti_agent_id for a in agents],
                          phones=sorted(numbers), minutes=30, seed=8, unknown_rate=0.1,
                          duplicate_rate=0.5, shuffle=True)
    assert result["posted"] > result["events"]  # duplicates were sent: the same messages
    assert_portal_holds_exactly(db, result, numbers, agents)
    assert count(db, WebhookReceipt, WebhookReceipt.integration == "CTI") == result["events"]
