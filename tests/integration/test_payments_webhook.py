"""The payment webhook: signature (rotation, resend, expiry, tampering), size limit, JSON and
field validation (each refusal specific and logged for ops), exactly-once storage with the
event in the same transaction (duplicates, concurrent copies, Redis down), and the effects
(loan, promise, case, timeline, agents) once the events are delivered."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from redis import Redis
from sqlalchemy import func, select

from portal import clock
from portal.models import Action, Case, Event, Loan, Notification, Payment, Promise
from portal.models.payments import RejectedNotification
from portal.signing import signed_headers
from tests.integration.test_events_support import drain

URL = "/api/v1/payments/notifications"
SECRET = "test-payments-current"
NEXT_SECRET = "test-payments-next"


def now_seconds() -> int:
    """The unix time a sender signs with: the product's running clock (signing.verify)."""
    return int(clock.running_now().timestamp())


def notification(loan, **overrides) -> dict:
    n = overrides.pop("n", 1)
    body = {
        "event_id": f"evt-{loan.account_number}-{n}", "type": "payment.received",
        "reference_number": f"REF-{loan.account_number}-{n}",
        "loan_account_number": loan.account_number, "cif": loan.cif, "amount": "3000000.00",
        "currency": "VND", "paid_at": clock.now().isoformat(timespec="seconds"),
        "channel": "MOBILE_BANKING", "metadata": {"payer": "customer"},
    }
    body.update(overrides)
    return body


def encode(body) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def post(client, body, *, secret: str = SECRET, timestamp: int | None = None,
         headers: dict | None = None):
    raw = encode(body)
    return client.post(URL, data=raw,
                       headers=headers or signed_headers(secret, raw, timestamp=timestamp))


def count(db, model, *where) -> int:
    value = db.session.scalar(select(func.count()).select_from(model).where(*where))
    db.session.rollback()
    return value


@pytest.fixture
def world(db, make_user, make_customer, make_loan, make_case, make_promise):
    """An agent's case: one VND loan owing 10M (80M outstanding) and a 3M promise in 5 days."""
    agent = make_user(role="agent")
    customer = make_customer()
    loan = make_loan(customer, dpd=12, currency="VND", due_amount=Decimal("10000000"),
                     outstanding=Decimal("80000000"))
    case = make_case(customer, agent, total_overdue=Decimal("10000000"), max_dpd=12,
                     next_action_at=clock.now() + timedelta(days=1))
    promise = make_promise(customer, "3000000", clock.bank_today() + timedelta(days=5), loan=loan,
                           agent=agent)
    return {"agent": agent, "customer": customer, "loan": loan, "case": case,
            "promise": promise}


# -- accepted, exactly once ---------------------------------------------------------------------


def test_payment_is_stored_with_raw_body_and_event(client, db, world):
    loan = world["loan"]
    body = notification(loan)
    response = post(client, body)
    assert response.status_code == 201, response.get_json()
    data = response.get_json()
    assert data["duplicate"] is False and data["status"] == "received"
    payment = db.session.get(Payment, data["payment_id"])
    assert payment.reference_number == body["reference_number"]
    assert payment.event_id == body["event_id"] and payment.cif == loan.cif
    assert payment.amount == Decimal("3000000.00") and payment.source == "webhook"
    assert json.loads(payment.raw_body) == body
    assert payment.signature.startswith("sha256=")
    event = db.session.scalar(select(Event).where(Event.type == "PAYMENT_RECEIVED"))
    assert event.payload["payment_id"] == payment.id
    assert event.payload["amount"] == "3000000.00"


def test_duplicates_by_event_id_or_reference_answer_200_and_change_nothing(client, db, world):
    loan = world["loan"]
    body = notification(loan)
    first = post(client, body)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    time.sleep(1)  # re-signed later: a sender's retry of the same message gets its answer
    again = post(client, body)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    # another message (event id) for the same payment (reference): a duplicate
    same_reference = post(client, {**body, "event_id": "another-event"})
    assert same_reference.status_code == 200
    assert same_reference.get_json() == {**first.get_json(), "duplicate": True}
    # the same event id with another body: a conflict, refused and logged
    same_event = post(client, {**body, "reference_number": "OTHER-REF"})
    assert same_event.status_code == 409
    assert same_event.get_json()["error"]["code"] == "message_conflict"
    assert same_event.get_json()["error"]["field"] == "event_id"
    assert count(db, RejectedNotification, RejectedNotification.code == "message_conflict") == 1
    assert count(db, Payment) == 1
    assert count(db, Event, Event.type == "PAYMENT_RECEIVED") == 1


def test_the_next_secret_is_accepted_during_a_rotation(client, db, world):
    response = post(client, notification(world["loan"]), secret=NEXT_SECRET)
    assert response.status_code == 201


def test_concurrent_copies_insert_once(app, db, world, live_server):
    loan = world["loan"]
    body = encode(notification(loan))
    answers: list[tuple[int, int]] = []
    barrier = threading.Barrier(8)

    def send(i: int):
        headers = signed_headers(SECRET, body, timestamp=now_seconds() - i)  # distinct sigs
        barrier.wait()
        r = requests.post(live_server.url + URL, data=body, headers=headers, timeout=10)
        answers.append((r.status_code, r.json()["payment_id"]))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(s for s, _ in answers) == [200] * 7 + [201]
    assert len({pid for _, pid in answers}) == 1
    assert count(db, Payment) == 1
    assert count(db, Event, Event.type == "PAYMENT_RECEIVED") == 1


def test_redis_down_still_accepts_and_stores_the_event(app, client, db, world, monkeypatch):
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, socket_timeout=0.5)
    monkeypatch.setitem(app.extensions, "portal_redis", dead)
    response = post(client, notification(world["loan"]))
    assert response.status_code == 201
    event = db.session.scalar(select(Event).where(Event.type == "PAYMENT_RECEIVED"))
    assert event is not None and event.relayed_at is None  # the periodic relay will take it
    db.session.rollback()
    # Redis is back: the periodic relay publishes the event and the payment takes effect
    monkeypatch.undo()
    from portal.events.relay import relay_once

    assert relay_once(db.session) == (1, len(_payment_subscribers()))
    drain(app)
    assert db.session.get(Loan, world["loan"].id).outstanding == Decimal("77000000")


def _payment_subscribers():
    from portal.events.subscribers import subscribers_for

    return subscribers_for("PAYMENT_RECEIVED")


# -- refused: signature, size, JSON -------------------------------------------------------------


def assert_refused(db, response, status: int, code: str, field: str | None):
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["field"] == field
    assert error["message"]
    assert count(db, Payment) == 0
    row = db.session.scalar(select(RejectedNotification).order_by(RejectedNotification.id.desc()))
    assert row is not None and row.code == code and row.status_code == status
    db.session.rollback()
    return row


def test_the_same_signed_request_again_gets_the_first_answer(client, db, world):
    """A sender's retry of the very same signed request (its answer was lost) is no failure:
    200 with the first answer, nothing applied twice."""
    raw = encode(notification(world["loan"]))
    headers = signed_headers(SECRET, raw)
    first = client.post(URL, data=raw, headers=headers)
    assert first.status_code == 201
    replay = client.post(URL, data=raw, headers=headers)
    assert replay.status_code == 200, replay.get_json()
    assert replay.get_json() == first.get_json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert count(db, Payment) == 1
    assert count(db, Event, Event.type == "PAYMENT_RECEIVED") == 1
    assert count(db, RejectedNotification) == 0


def test_expired_timestamp_is_refused(client, db, world):
    old = now_seconds() - 301
    row = assert_refused(db, post(client, notification(world["loan"]), timestamp=old), 401,
                         "timestamp_expired", "X-Timestamp")
    assert row.headers["X-Timestamp"] == str(old)
    assert json.loads(row.body)["event_id"] == row.event_id


def test_wrong_secret_is_refused(client, db, world):
    assert_refused(db, post(client, notification(world["loan"]), secret="guessed"), 401,
                   "signature_mismatch", "X-Signature")


def test_tampered_body_is_refused(client, db, world):
    signed = encode(notification(world["loan"]))
    tampered = signed.replace(b"3000000.00", b"9000000.00")
    response = client.post(URL, data=tampered, headers=signed_headers(SECRET, signed))
    row = assert_refused(db, response, 401, "signature_mismatch", "X-Signature")
    assert "9000000.00" in row.body


def test_missing_signature_is_refused(client, db, world):
    response = client.post(URL, data=encode(notification(world["loan"])),
                           headers={"Content-Type": "application/json"})
    assert_refused(db, response, 401, "missing_timestamp", "X-Timestamp")


def test_malformed_json_is_refused(client, db, world):
    row = assert_refused(db, post(client, b'{"event_id": "x", "amount": '), 400,
                         "malformed_json", "body")
    assert row.body == '{"event_id": "x", "amount": '


def test_huge_body_is_refused_with_413(app, client, db, world):
    limit = app.config["PAYMENT_WEBHOOK_MAX_BYTES"]
    body = notification(world["loan"], metadata={"padding": "x" * limit})
    row = assert_refused(db, post(client, body), 413, "body_too_large", "body")
    assert row.body_size > limit and len(row.body) <= 65536


@pytest.mark.parametrize(("change", "status", "code", "field"), [
    ({"loan_account_number": "LN-NOPE"}, 422, "unknown_loan", "loan_account_number"),
    ({"cif": "CIF-SOMEONE-ELSE"}, 422, "cif_mismatch", "cif"),
    ({"amount": "0"}, 422, "invalid_amount", "amount"),
    ({"amount": "-5000"}, 422, "invalid_amount", "amount"),
    ({"amount": "12,5"}, 422, "invalid_amount", "amount"),
    ({"amount": "100.123"}, 422, "invalid_amount", "amount"),
    ({"amount": True}, 422, "invalid_amount", "amount"),
    ({"currency": "USD"}, 422, "currency_mismatch", "currency"),
    ({"currency": "dong"}, 422, "invalid_currency", "currency"),
    ({"paid_at": "yesterday"}, 422, "invalid_paid_at", "paid_at"),
    ({"paid_at": "2026-11-24T09:30:00"}, 422, "invalid_paid_at", "paid_at"),
    ({"paid_at": "2999-01-01T00:00:00+07:00"}, 422, "invalid_paid_at", "paid_at"),
    ({"type": "payment.refunded"}, 422, "invalid_type", "type"),
    ({"event_id": None}, 422, "missing_field", "event_id"),
    ({"type": "payment.reversed", "original_reference": "NEVER-PAID"}, 422, "unknown_payment",
     "original_reference"),
    ({"type": "payment.reversed"}, 422, "missing_field", "original_reference"),
])
def test_invalid_fields_are_refused_naming_the_field(client, db, world, change, status, code,
                                                     field):
    body = notification(world["loan"])
    body.update(change)
    assert_refused(db, post(client, body), status, code, field)


def test_amount_as_a_json_number_is_exact(client, db, world):
    raw = encode(notification(world["loan"])).replace(b'"3000000.00"', b"2500000.50")
    response = post(client, raw)
    assert response.status_code == 201
    assert db.session.get(Payment, response.get_json()["payment_id"]).amount == \
        Decimal("2500000.50")


def test_rejected_notifications_are_listed_for_ops_only(client, db, world, login, make_user):
    post(client, notification(world["loan"]), secret="guessed")
    login(make_user(role="ops"))
    page = client.get("/payments/rejected")
    assert page.status_code == 200
    assert "Signature mismatch" in page.get_data(as_text=True)
    as_json = client.get("/payments/rejected", headers={"Accept": "application/json"})
    assert as_json.get_json()["data"][0]["code"] == "signature_mismatch"
    login(world["agent"])
    assert client.get("/payments/rejected").status_code == 403


# -- effects ------------------------------------------------------------------------------------


def test_payment_keeps_the_promise_and_updates_loan_case_timeline_and_agent(app, client, db,
                                                                           world):
    loan, agent = world["loan"], world["agent"]
    post(client, notification(loan, amount="10000000"))
    drain(app)
    loan = db.session.get(Loan, loan.id)
    assert loan.outstanding == Decimal("70000000") and loan.due_amount == 0
    promise = db.session.get(Promise, world["promise"].id)
    assert promise.status == "kept" and promise.paid_amount == Decimal("3000000")
    case = db.session.get(Case, world["case"].id)
    assert case.total_overdue == 0 and case.total_outstanding == Decimal("70000000")
    assert case.next_action_at is None  # no longer overdue: follow-up closed
    action = db.session.scalar(select(Action).where(Action.cif == loan.cif,
                                                    Action.type == "SYSTEM"))
    assert action.result == "RECEIVED" and "Promise kept" in action.notes
    note = db.session.scalar(select(Notification).where(Notification.user_id == agent.id))
    assert note.kind == "payment_received" and "10,000,000" in note.title


def test_partial_payment_then_reversal_reopens_the_promise(app, client, db, world):
    loan = world["loan"]
    post(client, notification(loan, amount="1000000"))
    drain(app)
    assert db.session.get(Promise, world["promise"].id).status == "partially_kept"
    db.session.rollback()
    reversal = notification(loan, n=2, type="payment.reversed", amount="1000000",
                            original_reference=f"REF-{loan.account_number}-1",
                            reason="chargeback")
    response = post(client, reversal)
    assert response.status_code == 201, response.get_json()
    drain(app)
    promise = db.session.get(Promise, world["promise"].id)
    assert promise.status == "pending" and promise.paid_amount == 0
    loan = db.session.get(Loan, loan.id)
    assert loan.outstanding == Decimal("80000000") and loan.due_amount == Decimal("10000000")
    original = db.session.scalar(select(Payment).where(
        Payment.reference_number == f"REF-{loan.account_number}-1"))
    assert original.status == "reversed" and original.applied_amount == 0
    # a second reversal of the same payment is refused; the same one again is a duplicate
    db.session.rollback()
    time.sleep(1)
    assert post(client, reversal).status_code == 200
    other = post(client, {**reversal, "event_id": "e-x", "reference_number": "R-X"})
    assert other.status_code == 409
    assert other.get_json()["error"]["code"] == "already_reversed"


def test_reversal_handled_before_its_payment_changes_nothing(app, client, db, world):
    """Deliveries run in any order: the state, not the event order, decides."""
    loan = world["loan"]
    post(client, notification(loan, amount="3000000"))
    post(client, notification(loan, n=2, type="payment.reversed", amount="3000000",
                              original_reference=f"REF-{loan.account_number}-1"))
    drain(app)
    loan = db.session.get(Loan, loan.id)
    assert loan.outstanding == Decimal("80000000") and loan.due_amount == Decimal("10000000")
    assert db.session.get(Promise, world["promise"].id).status == "pending"


def test_live_partial_signals_a_change(app, client, db, world, login):
    login(world["agent"])
    cif = world["customer"].cif
    first = client.get(f"/payments/live/{cif}")
    assert first.status_code == 200 and "HX-Trigger" not in first.headers
    fingerprint = first.get_data(as_text=True).split('data-fingerprint="')[1].split('"')[0]
    same = client.get(f"/payments/live/{cif}?seen={fingerprint}")
    assert "HX-Trigger" not in same.headers
    post(client, notification(world["loan"], amount="3000000"))
    drain(app)
    changed = client.get(f"/payments/live/{cif}?seen={fingerprint}")
    assert changed.headers["HX-Trigger"] == "case-updated"
    html = changed.get_data(as_text=True)
    assert "promise kept" in html and 'data-testid="payment-live-banner"' in html
    assert 'id="bell-count"' in html and 'hx-swap-oob="true"' in html


def test_paused_payments_are_stored_and_acknowledged_then_applied_on_resume(app, client, db,
                                                                           world):
    """Ops pause payments (issue 9): notifications are still stored and answered, their effects
    wait; resuming applies each held payment once."""
    from integrations import control

    loan, ops = world["loan"], world["agent"]
    control.pause("PAYMENTS", ops, "bank asked to hold postings")
    try:
        body = notification(loan, amount="10000000")  # one body: a resend is the same message
        first = post(client, body)
        duplicate = post(client, body, timestamp=now_seconds() - 1)  # re-signed, as a resend
        second = post(client, notification(loan, amount="2000000", n=2))
        assert (first.status_code, duplicate.status_code, second.status_code) == (201, 200, 201)
        drain(app)  # the events are delivered, the effects held
        assert count(db, Payment) == 2
        assert db.session.get(Loan, loan.id).outstanding == Decimal("80000000")
        assert db.session.get(Promise, world["promise"].id).status == "pending"
        assert count(db, Action, Action.type == "SYSTEM") == 0
    finally:
        control.resume("PAYMENTS", ops, "postings allowed again")
    drain(app)  # the resume hook queued the release job
    db.session.expire_all()
    assert db.session.get(Loan, loan.id).outstanding == Decimal("68000000")
    assert db.session.get(Promise, world["promise"].id).status == "kept"
    assert count(db, Action, Action.type == "SYSTEM") == 2  # one timeline entry per payment
    assert sorted(p.applied_amount for p in db.session.scalars(select(Payment))) \
        == [Decimal("2000000"), Decimal("10000000")]
    from portal.payments.effects import release_held_payments

    assert release_held_payments(db.session) == 0  # nothing left: applied once
