"""Messages through their real channels: the sandbox SMS gateway over HTTP (with its signed
delivery reports back to a live portal), a real SMTP server (aiosmtpd), the contact rules that
hold messages and say why, retries with backoff and the failure after them."""

from __future__ import annotations

from datetime import timedelta

import requests
from sqlalchemy import select

from portal import clock
from portal.cases.contact_rules import MessageRules, save_message_rules
from portal.messages import dispatch
from portal.messages.operations import queue_message
from portal.models import Action, AuditLog, Message
from tests.conftest import csrf_token_from
from tests.messages_support import bank_time, wait_until


def _strategy_sms(db, case, template, at):
    """What a strategy's daily run inserts: queued, a template, an empty body."""
    message = Message(cif=case.cif, case_id=case.id, account_number=case.loan.account_number,
                      channel="sms", template_id=template.id, language="vi", status="queued",
                      next_attempt_at=at, business_date=clock.bank_today(at), source="strategy",
                      dedupe_key=f"strategy:{clock.bank_today(at)}:{case.loan.account_number}:1")
    db.session.add(message)
    db.session.commit()
    return message


def test_a_strategy_sms_is_rendered_sent_and_delivered_on_the_timeline(
        db, frozen_now, msg_customer, make_template, sms_gateway, client, login):
    at = frozen_now(bank_time(0, 10, 30))
    template = make_template()
    message = _strategy_sms(db, msg_customer, template, at)

    counts = dispatch.dispatch_due(db.session, at, limit=50)

    assert counts == {"sent": 1}
    db.session.refresh(message)
    assert message.status == "sent" and message.provider_id and message.attempts == 1
    assert message.phone_id == msg_customer.phone.id and message.recipient == "+84912345678"
    assert message.body.startswith("Kính gửi Nguyễn Văn An, khoản vay "
                                   f"{msg_customer.loan.account_number} đến hạn 5.000.000\u00a0₫")
    accepted = sms_gateway.gateway.messages[message.provider_id]
    assert accepted["text"] == message.body and accepted["encoding"] == "UCS-2"
    action = db.session.get(Action, message.action_id)
    assert action.type == "SMS" and action.source == "system" and action.cif == msg_customer.cif

    def delivered():
        db.session.expire_all()
        return db.session.get(Message, message.id).status == "delivered"

    assert wait_until(delivered), "the delivery report did not arrive"
    assert db.session.get(Message, message.id).delivered_at is not None

    login(msg_customer.agent)
    page = client.get(f"/cases/{msg_customer.cif}").get_data(as_text=True)
    assert 'data-message-status="delivered"' in page


def test_quiet_hours_hold_the_sms_and_say_why_then_it_goes_when_the_hours_open(
        db, frozen_now, msg_customer, make_template, sms_gateway, client, login):
    night = frozen_now(bank_time(0, 22, 15))
    message = _strategy_sms(db, msg_customer, make_template(), night)

    assert dispatch.dispatch_due(db.session, night) == {"held": 1}
    db.session.refresh(message)
    assert (message.status, message.hold_reason) == ("held", "quiet_hours")
    assert message.next_attempt_at == bank_time(1, 8, 0)  # the SMS hours open at 08:00
    assert sms_gateway.gateway.messages == {}

    login(msg_customer.agent)
    page = client.get(f"/cases/{msg_customer.cif}").get_data(as_text=True)
    assert "Quiet hours: waits for the sending hours" in page

    assert dispatch.dispatch_due(db.session, bank_time(1, 7, 59)) == {}
    morning = frozen_now(bank_time(1, 8, 1))
    assert dispatch.dispatch_due(db.session, morning) == {"sent": 1}
    db.session.refresh(message)
    assert message.status == "sent" and message.hold_reason is None


def test_the_cap_holds_the_third_sms_in_seven_days(db, frozen_now, msg_customer, make_template,
                                                   sms_gateway):
    at = frozen_now(bank_time(0, 10, 0))
    save_message_rules(db.session, MessageRules(sms_cap=2, sms_cap_days=7), "test")
    template = make_template()
    for days_ago in (6, 1):
        db.session.add(Message(cif=msg_customer.cif, channel="sms", status="delivered",
                               body="x", business_date=clock.bank_today(at),
                               sent_at=at - timedelta(days=days_ago)))
    db.session.commit()

    message = queue_message(db.session, cif=msg_customer.cif,
                            account_number=msg_customer.loan.account_number, channel="sms",
                            template=template, language="vi", actor=msg_customer.agent)
    db.session.commit()

    assert (message.status, message.hold_reason) == ("held", "cap_reached")
    assert sms_gateway.gateway.messages == {}
    # a week after the oldest one, the cap lets one through again
    later = frozen_now(at + timedelta(days=1, minutes=1))
    again = queue_message(db.session, cif=msg_customer.cif, account_number=None, channel="sms",
                          template=template, language="vi", actor=msg_customer.agent, at=later)
    db.session.commit()
    assert again.status == "queued"
    assert dispatch.dispatch_due(db.session, later) == {"sent": 1}


def test_an_opted_out_number_gets_nothing(db, frozen_now, msg_customer, make_template,
                                          sms_gateway):
    at = frozen_now(bank_time(0, 11, 0))
    msg_customer.phone.messages_opt_out = True
    db.session.commit()
    message = _strategy_sms(db, msg_customer, make_template(), at)

    assert dispatch.dispatch_due(db.session, at) == {"held": 1}
    db.session.refresh(message)
    assert (message.status, message.hold_reason) == ("held", "opted_out")
    assert sms_gateway.gateway.messages == {}
    assert dispatch.dispatch_due(db.session, at + timedelta(days=2)) == {}  # never again


def test_unverified_do_not_contact_and_wrong_party_numbers_are_held(
        db, frozen_now, msg_customer, make_template, make_phone, sms_gateway):
    from portal.models import CallRecord

    at = frozen_now(bank_time(0, 11, 0))
    template = make_template()
    unverified = make_phone(msg_customer.cif, "0987000111", type="HOME")
    blocked = make_phone(msg_customer.cif, "0987000222", type="WORK", is_verified=True,
                         do_not_contact=True)
    wrong = make_phone(msg_customer.cif, "0987000333", type="OTHER", is_verified=True)
    action = Action(cif=msg_customer.cif, type="CALL", subtype="OUTBOUND",
                    result="WRONG_NUMBER", at=at - timedelta(hours=2))
    db.session.add(action)
    db.session.flush()
    db.session.add(CallRecord(call_id="C-wrong-1", cif=msg_customer.cif, phone="+84987000333",
                              direction="outbound", started_at=at - timedelta(hours=2),
                              action_id=action.id))
    db.session.commit()

    reasons = {}
    for phone in (unverified, blocked, wrong):
        message = queue_message(db.session, cif=msg_customer.cif, account_number=None,
                                channel="sms", template=template, language="vi",
                                actor=msg_customer.agent, contact_point_id=phone.id)
        reasons[phone.id] = message.hold_reason
    db.session.commit()
    assert reasons == {unverified.id: "unverified", blocked.id: "do_not_contact",
                       wrong.id: "wrong_party"}
    assert sms_gateway.gateway.messages == {}


def test_a_gateway_outage_retries_with_backoff_then_fails_and_ops_see_it(
        db, app, frozen_now, msg_customer, make_template, sms_gateway, client, login_as):
    at = frozen_now(bank_time(0, 9, 0))
    app.config.update(MESSAGES_MAX_ATTEMPTS=3, MESSAGES_RETRY_SECONDS=60)
    requests.put(f"{sms_gateway.url}/_sandbox/faults", json={"outage": True}, timeout=5)
    message = _strategy_sms(db, msg_customer, make_template(), at)
    try:
        assert dispatch.dispatch_due(db.session, at) == {"retrying": 1}
        db.session.refresh(message)
        assert message.status == "queued" and message.attempts == 1
        assert message.next_attempt_at == at + timedelta(seconds=60)
        assert "503" in message.status_detail or "unavailable" in message.status_detail.lower()

        assert dispatch.dispatch_due(db.session, at + timedelta(seconds=59)) == {}
        second = at + timedelta(seconds=60)
        assert dispatch.dispatch_due(db.session, second) == {"retrying": 1}
        db.session.refresh(message)
        assert message.next_attempt_at == second + timedelta(seconds=120)  # doubled
        assert dispatch.dispatch_due(db.session, second + timedelta(seconds=120)) == \
            {"failed": 1}
        db.session.refresh(message)
        assert message.status == "failed" and message.attempts == 3 and message.failed_at
    finally:
        app.config.update(MESSAGES_MAX_ATTEMPTS=5, MESSAGES_RETRY_SECONDS=60)
        requests.put(f"{sms_gateway.url}/_sandbox/faults", json={"outage": False}, timeout=5)

    login_as("ops")
    page = client.get("/ops/messages").get_data(as_text=True)
    assert f'data-failed-message="{message.id}"' in page
    assert message.status_detail[:40] in page

    response = client.post(f"/ops/messages/{message.id}/retry",
                           data={"csrf_token": csrf_token_from(page)})
    assert response.status_code in (200, 302, 303)
    db.session.expire_all()
    retried = db.session.get(Message, message.id)
    assert retried.status == "queued" and retried.attempts == 0
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "message.retry",
                                                    AuditLog.entity_id == str(message.id)))
    assert dispatch.dispatch_due(db.session, clock.now()) == {"sent": 1}


def test_the_smtp_sandbox_receives_real_vietnamese_email(db, frozen_now, msg_customer,
                                                         make_template, smtp_sandbox):
    at = frozen_now(bank_time(0, 10, 0))
    template = make_template("EMAIL_REMINDER", channel="email")
    message = queue_message(db.session, cif=msg_customer.cif,
                            account_number=msg_customer.loan.account_number, channel="email",
                            template=template, language="vi", actor=msg_customer.agent)
    db.session.commit()

    assert dispatch.dispatch_due(db.session, at) == {"sent": 1}
    mails = smtp_sandbox.wait_for(1)
    assert len(mails) == 1
    mail = mails[0]
    assert mail["To"] == "an.nguyen@example.vn"
    assert mail["Subject"] == f"Nhắc thanh toán khoản vay {msg_customer.loan.account_number}"
    assert mail.get_content().strip() == message.body.strip()
    assert "Kính gửi Nguyễn Văn An" in mail.get_content()
    assert mail["X-CRM-Reference"] == f"msg-{message.id}"
    db.session.refresh(message)
    assert message.status == "sent" and message.provider_id == mail["Message-ID"]


def test_a_refused_recipient_fails_at_once_and_an_unreachable_server_retries(
        db, app, frozen_now, msg_customer, make_template, smtp_sandbox):
    at = frozen_now(bank_time(0, 10, 0))
    template = make_template("EMAIL_REMINDER", channel="email")
    smtp_sandbox.handler.refuse = {"an.nguyen@example.vn"}
    message = queue_message(db.session, cif=msg_customer.cif, account_number=None,
                            channel="email", template=template, language="en",
                            actor=msg_customer.agent)
    db.session.commit()
    assert dispatch.dispatch_due(db.session, at) == {"failed": 1}
    db.session.refresh(message)
    assert message.status == "failed" and "550" in message.status_detail

    smtp_sandbox.handler.refuse = set()
    port = app.config["SMTP_PORT"]
    app.config["SMTP_PORT"] = 1  # nothing listens there
    try:
        other = queue_message(db.session, cif=msg_customer.cif, account_number=None,
                              channel="email", template=template, language="en",
                              actor=msg_customer.agent)
        db.session.commit()
        assert dispatch.dispatch_due(db.session, at) == {"retrying": 1}
        db.session.refresh(other)
        assert other.status == "queued" and other.attempts == 1
    finally:
        app.config["SMTP_PORT"] = port


def test_a_lost_delivery_report_is_recovered_by_asking_the_gateway(
        db, app, frozen_now, msg_customer, make_template, sms_gateway):
    from workers.jobs.messages import reconcile_reports

    at = frozen_now(bank_time(0, 10, 0))
    gateway = sms_gateway.gateway
    gateway.portal_url = None  # the reports go nowhere: the portal never hears of them
    message = _strategy_sms(db, msg_customer, make_template(), at)
    assert dispatch.dispatch_due(db.session, at) == {"sent": 1}
    db.session.refresh(message)
    assert wait_until(lambda: gateway.messages[message.provider_id]["status"] == "delivered")
    assert db.session.get(Message, message.id).status == "sent"

    assert dispatch.reconcile_reports(db.session, at + timedelta(minutes=59)) == {}  # too soon
    frozen_now(at + timedelta(minutes=61))
    assert reconcile_reports() == {"asked": 1, "delivered": 1}
    db.session.expire_all()
    assert db.session.get(Message, message.id).status == "delivered"
    assert reconcile_reports() == {}


def test_an_sms_with_a_pay_link_opens_the_loans_vietqr_page_and_keeps_its_reference(
        app, db, frozen_now, msg_customer, make_template, sms_gateway, client):
    """``{pay_link}`` is the public page of the loan's VietQR code: the SMS carries it, the page
    shows the code for the loan's reference, and the message keeps that reference (what the
    payment webhook and the camt import match to the loan)."""
    from portal.messages import vietqr

    at = frozen_now(bank_time(0, 10, 30))
    template = make_template(body_vi="Thanh toán khoản vay {account_number}: {pay_link}")
    message = _strategy_sms(db, msg_customer, template, at)

    assert dispatch.dispatch_due(db.session, at, limit=50) == {"sent": 1}
    db.session.refresh(message)
    base = app.config["PUBLIC_BASE_URL"].rstrip("/")
    link = message.body.split(": ", 1)[1]
    assert link.startswith(f"{base}/pay/")
    reference = vietqr.payment_reference(msg_customer.loan.account_number)
    assert message.payment_reference == reference
    assert vietqr.account_from_reference(reference) == msg_customer.loan.account_number
    page = client.get(link[len(base):])
    assert page.status_code == 200 and reference in page.get_data(as_text=True)
