"""The message pages through HTTP: templates (supervisors and admins; unknown variables refused
next to the field; a preview with a real account's data), the case view's one-off message
(held with its reason, queued and sent), the opt-out toggle of the contact list."""

from __future__ import annotations

from sqlalchemy import select

from portal import clock
from portal.messages import dispatch
from portal.messages.operations import queue_message
from portal.models import AuditLog, Message, MessageTemplate, Phone
from tests.conftest import csrf_token_from
from tests.messages_support import bank_time


def _token(client, path="/messages/templates"):
    return csrf_token_from(client.get(path).get_data(as_text=True))


def test_only_supervisors_and_admins_manage_templates(client, login_as, db):
    login_as("agent")
    assert client.get("/messages/templates").status_code == 403
    login_as("supervisor")
    assert client.get("/messages/templates").status_code == 200
    login_as("admin")
    assert client.get("/messages/templates/new").status_code == 200


def test_a_supervisor_creates_an_sms_template_and_unknown_variables_are_refused(
        client, login_as, db, msg_customer):
    login_as("supervisor")
    token = _token(client)
    bad = client.post("/messages/templates/new", data={
        "csrf_token": token, "code": "SMS_DPD3", "channel": "sms", "name": "Nhắc DPD 3",
        "body_vi": "Kính gửi {customer_name}, số dư {balance}.", "body_en": "Dear {customer}"})
    assert bad.status_code == 422
    page = bad.get_data(as_text=True)
    assert 'data-error-for="body_vi"' in page and "{balance}" in page
    assert 'data-error-for="body_en"' in page and "{customer}" in page
    assert db.session.scalar(select(MessageTemplate)) is None

    good = client.post("/messages/templates/new", data={
        "csrf_token": token, "code": "sms_dpd3", "channel": "sms", "name": "Nhắc DPD 3",
        "body_vi": "Kính gửi {customer_name}, khoản {account_number} đến hạn {amount_due}.",
        "body_en": "Dear {customer_name}, {amount_due} is due on {account_number}."})
    assert good.status_code == 302
    template = db.session.scalar(select(MessageTemplate))
    assert template.code == "SMS_DPD3" and template.subject_vi is None
    assert db.session.scalar(select(AuditLog).where(
        AuditLog.action == "message_template.create")).entity_id == str(template.id)

    account = msg_customer.loan.account_number
    edit = client.get(f"/messages/templates/{template.id}?account={account}")
    html = edit.get_data(as_text=True)
    assert f"Kính gửi Nguyễn Văn An, khoản {account} đến hạn 5.000.000\u00a0₫." in html
    assert f"Dear Nguyễn Văn An, 5,000,000\u00a0₫ is due on {account}." in html
    assert 'data-testid="segments-vi"' in html and "UCS-2" in html

    listing = client.get("/messages/templates").get_data(as_text=True)
    assert 'data-testid="template-SMS_DPD3"' in listing


def test_the_preview_says_when_the_account_does_not_exist(client, login_as, db):
    login_as("supervisor")
    response = client.post("/messages/templates/preview", data={
        "csrf_token": _token(client), "channel": "sms", "body_vi": "x", "body_en": "y",
        "preview_account": "NO-SUCH-1"})
    assert response.status_code == 200
    assert 'data-error-for="preview_account"' in response.get_data(as_text=True)


def test_an_email_template_needs_subjects_and_retiring_is_audited(client, login_as, db,
                                                                  make_template):
    login_as("admin")
    token = _token(client)
    response = client.post("/messages/templates/new", data={
        "csrf_token": token, "code": "EMAIL_X", "channel": "email", "name": "E-mail",
        "body_vi": "a", "body_en": "b"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'data-error-for="subject_vi"' in page and 'data-error-for="subject_en"' in page

    template = make_template("LETTER_30", channel="letter")
    assert client.post(f"/messages/templates/{template.id}/active",
                       data={"csrf_token": token}).status_code == 302
    db.session.refresh(template)
    assert template.active is False
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "message_template.retire"))


def _send(client, cif, **data):
    page = client.get(f"/cases/{cif}").get_data(as_text=True)
    return client.post(f"/messages/cases/{cif}/send",
                       data={"csrf_token": csrf_token_from(page), **data})


def test_an_agent_sends_a_one_off_sms_that_goes_through_the_gateway(
        client, login, db, frozen_now, msg_customer, make_template, sms_gateway):
    at = frozen_now(bank_time(0, 10, 0))
    template = make_template()
    login(msg_customer.agent)
    card = client.get(f"/messages/cases/{msg_customer.cif}/card").get_data(as_text=True)
    assert template.name in card

    preview = client.post(f"/messages/cases/{msg_customer.cif}/preview", data={
        "csrf_token": csrf_token_from(client.get(f"/cases/{msg_customer.cif}")
                                      .get_data(as_text=True)),
        "template_id": str(template.id), "language": "en"}).get_data(as_text=True)
    assert "Dear Nguyễn Văn An" in preview and 'data-testid="send-would-hold"' not in preview

    response = _send(client, msg_customer.cif, template_id=str(template.id), language="vi",
                     account_number=msg_customer.loan.account_number)
    assert response.status_code == 200
    assert 'data-outcome="queued"' in response.get_data(as_text=True)
    message = db.session.scalar(select(Message))
    assert message.status == "queued" and message.source == "manual"
    assert message.created_by_id == msg_customer.agent.id
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "message.queue"))

    assert dispatch.dispatch_message(db.session, message.id, at) == "sent"
    assert sms_gateway.gateway.messages[message.provider_id]["to"] == "+84912345678"
    timeline = client.get(f"/cases/{msg_customer.cif}").get_data(as_text=True)
    assert 'data-message-status="sent"' in timeline


def test_a_held_one_off_says_why_next_to_the_form_and_on_the_timeline(
        client, login, db, frozen_now, msg_customer, make_template, sms_gateway):
    frozen_now(bank_time(0, 10, 0))
    template = make_template()
    msg_customer.phone.do_not_contact = True
    db.session.commit()
    login(msg_customer.agent)
    token = csrf_token_from(client.get(f"/cases/{msg_customer.cif}").get_data(as_text=True))
    preview = client.post(f"/messages/cases/{msg_customer.cif}/preview", data={
        "csrf_token": token, "template_id": str(template.id)}).get_data(as_text=True)
    assert 'data-reason="do_not_contact"' in preview

    response = _send(client, msg_customer.cif, template_id=str(template.id))
    html = response.get_data(as_text=True)
    assert 'data-outcome="held"' in html and "Contact point marked do-not-contact" in html
    message = db.session.scalar(select(Message))
    assert (message.status, message.hold_reason) == ("held", "do_not_contact")
    timeline = client.get(f"/cases/{msg_customer.cif}").get_data(as_text=True)
    assert 'data-message-status="held"' in timeline
    assert "Contact point marked do-not-contact" in timeline
    assert sms_gateway.gateway.messages == {}


def test_the_send_form_refuses_what_is_not_the_customers(client, login, db, msg_customer,
                                                         make_template, make_customer,
                                                         make_phone):
    template = make_template()
    other = make_phone(make_customer(), "0900000999", is_verified=True)
    login(msg_customer.agent)
    response = _send(client, msg_customer.cif, template_id=str(template.id),
                     contact_point=f"sms:{other.id}", account_number="LN-NOT-HERE")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'data-error-for="account_number"' in html
    no_template = _send(client, msg_customer.cif)
    assert 'data-error-for="template_id"' in no_template.get_data(as_text=True)
    assert db.session.scalar(select(Message)) is None


def test_opting_a_number_out_from_the_contact_list_is_audited(client, login, db, msg_customer):
    login(msg_customer.agent)
    page = client.get(f"/cases/{msg_customer.cif}").get_data(as_text=True)
    phone_id = msg_customer.phone.id
    assert f'data-testid="phone-{phone_id}-opt-out-on"' in page
    response = client.post(
        f"/cases/{msg_customer.cif}/contacts/phone/{phone_id}/messages-opt-out",
        data={"csrf_token": csrf_token_from(page), "value": "1"})
    assert response.status_code == 200
    assert 'data-testid="opted-out"' in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Phone, phone_id).messages_opt_out is True
    row = db.session.scalar(select(AuditLog).where(
        AuditLog.action == "contact.messages_opt_out"))
    assert row.entity_id == str(phone_id) and row.after["messages_opt_out"] is True


def test_a_supervisor_without_cases_work_can_still_send(client, login_as, db, msg_customer,
                                                        make_template):
    make_template()
    login_as("supervisor")
    card = client.get(f"/messages/cases/{msg_customer.cif}/card")
    assert card.status_code == 200
    login_as("ops")
    assert client.get(f"/messages/cases/{msg_customer.cif}/card").status_code == 403


def test_the_message_rules_are_edited_on_the_contact_rules_page(client, login_as, db):
    from portal.cases.contact_rules import MessageRules, get_message_rules
    from tests.integration.test_admin_action_codes import MESSAGE_DEFAULTS, PLAN_DEFAULTS

    login_as("admin")
    page = client.get("/admin/contact-rules").get_data(as_text=True)
    assert 'name="sms_send_from"' in page and 'data-testid="message-rules-summary"' in page
    data = {"csrf_token": csrf_token_from(page), "window_start": "07:00",
            "window_end": "21:00", "max_call_attempts": "7", "attempt_window_days": "7",
            "promise_max_days": "30", **PLAN_DEFAULTS, **MESSAGE_DEFAULTS,
            "sms_send_from": "09:00", "sms_send_until": "18:30", "sms_cap": "1",
            "sms_cap_days": "3"}
    del data["require_verified_phone"]  # the box unticked
    assert client.post("/admin/contact-rules", data=data).status_code == 302
    rules = get_message_rules(db.session)
    assert rules.sms_send_from.isoformat() == "09:00:00" and rules.sms_cap == 1
    assert rules.sms_send_until.isoformat() == "18:30:00" and rules.sms_cap_days == 3
    assert rules.require_verified_phone is False
    assert rules.email_cap == MessageRules().email_cap

    bad = {**data, "sms_send_until": "08:00", "email_cap": "-1"}
    response = client.post("/admin/contact-rules", data=bad)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'The hours must end after they start.' in html
    assert get_message_rules(db.session) == rules


def test_a_one_off_is_handed_to_a_worker_at_once_and_the_job_sends_it(
        client, login, db, redis_client, frozen_now, msg_customer, make_template, sms_gateway):
    from portal.queues import get_queue
    from workers.jobs.messages import dispatch_message, dispatch_messages

    frozen_now(bank_time(0, 10, 0))
    template = make_template()
    queue = get_queue("integrations", redis_client)
    login(msg_customer.agent)
    assert _send(client, msg_customer.cif, template_id=str(template.id)).status_code == 200
    message = db.session.scalar(select(Message))
    jobs = [j for j in queue.get_jobs()
            if j.func_name == "workers.jobs.messages.dispatch_message"]
    assert [j.args for j in jobs] == [(message.id,)]

    assert dispatch_message(message.id) == {"outcome": "sent"}
    assert dispatch_message(message.id) == {"outcome": None}  # sent already: nothing twice
    assert dispatch_messages() == {}
    assert len(sms_gateway.gateway.messages) == 1


def test_a_one_off_in_quiet_hours_says_when_it_goes(client, login, db, frozen_now,
                                                    msg_customer, make_template):
    frozen_now(bank_time(0, 21, 30))
    template = make_template()
    login(msg_customer.agent)
    html = _send(client, msg_customer.cif, template_id=str(template.id)).get_data(as_text=True)
    assert 'data-outcome="held"' in html
    opening = bank_time(1, 8, 0).astimezone(clock.bank_zone())
    assert f"Quiet hours: it goes out at {opening:%d/%m/%Y %H:%M}." in html


def test_letters_wait_for_the_print_batch_and_need_an_address(db, frozen_now, msg_customer,
                                                              make_template):
    from portal.models import Address

    at = frozen_now(bank_time(0, 23, 0))  # letters have no quiet hours
    template = make_template("LETTER_30", channel="letter")
    message = queue_message(db.session, cif=msg_customer.cif, account_number=None,
                            channel="letter", template=template, language="vi",
                            actor="system", source="strategy")
    db.session.commit()
    assert (message.status, message.hold_reason) == ("held", "no_contact_point")

    address = Address(cif=msg_customer.cif, type="HOME", line1="12 Lê Lợi", ward="Bến Nghé",
                      district="Quận 1", city="TP. Hồ Chí Minh", is_primary=True,
                      source_system="T24")
    db.session.add(address)
    db.session.commit()
    letter = queue_message(db.session, cif=msg_customer.cif, account_number=None,
                           channel="letter", template=template, language="vi",
                           actor="system", source="strategy")
    db.session.commit()
    assert letter.status == "queued" and letter.address_id == address.id
    assert letter.recipient == "12 Lê Lợi, Bến Nghé, Quận 1, TP. Hồ Chí Minh"
    assert letter.subject.startswith("Nhắc thanh toán") and "Nguyễn Văn An" in letter.body
    assert dispatch.dispatch_due(db.session, at) == {"letter": 1}
    db.session.refresh(letter)
    assert letter.status == "queued" and letter.next_attempt_at is None  # for the print batch
    assert dispatch.dispatch_due(db.session, at) == {}


def test_the_cli_dispatches_and_requeues_failed_messages(app, db, frozen_now, msg_customer,
                                                         make_template, sms_gateway):
    at = frozen_now(bank_time(0, 10, 0))
    template = make_template()
    failed = Message(cif=msg_customer.cif, channel="sms", status="failed", body="x",
                     template_id=template.id, business_date=clock.bank_today(at),
                     attempts=5, failed_at=at, status_detail="down")
    db.session.add(failed)
    db.session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["messages", "retry-failed", "--channel", "sms"])
    assert result.exit_code == 0 and "1 message(s) queued again" in result.output
    result = runner.invoke(args=["messages", "dispatch"])
    assert result.exit_code == 0 and '"sent": 1' in result.output
    db.session.expire_all()
    assert db.session.get(Message, failed.id).status == "sent"


def test_ids_beyond_the_columns_range_are_not_found(client, login_as, db, msg_customer,
                                                    make_template):
    make_template()
    login_as("supervisor")
    huge = "99999999999999999999"
    assert client.get(f"/messages/templates/{huge}").status_code == 404
    page = client.get(f"/cases/{msg_customer.cif}").get_data(as_text=True)
    response = client.post(f"/messages/cases/{msg_customer.cif}/send",
                           data={"csrf_token": csrf_token_from(page), "template_id": huge,
                                 "contact_point": f"sms:{huge}"})
    assert response.status_code == 422
    assert 'data-error-for="template_id"' in response.get_data(as_text=True)
    preview = client.post(f"/messages/cases/{msg_customer.cif}/preview",
                          data={"csrf_token": csrf_token_from(page), "template_id": huge,
                                "account_number": "x" * 40, "contact_point": "sms:1"})
    assert preview.status_code == 200
    login_as("ops")
    assert client.post(f"/ops/messages/{huge}/retry",
                       data={"csrf_token": csrf_token_from(page)}).status_code == 404
