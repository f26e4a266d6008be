"""Fixtures of the message tests: a customer with a loan, a case, a verified mobile and an
e-mail address; message templates; the sandbox SMS gateway and the capturing SMTP server."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest

from integrations.sandbox import sms_server
from integrations.sandbox._api import Faults, ServerThread
from integrations.sandbox.smtp_server import CapturingSmtpServer
from portal import clock

TEST_SMS_SECRET = "whsec_dGVzdC1zbXMtc2VjcmV0"  # TestConfig.SMS_WEBHOOK_SECRETS


@pytest.fixture
def make_template(db):
    from portal.models import MessageTemplate

    def make(code="SMS_REMINDER", channel="sms", **kwargs):
        kwargs.setdefault("name", code.replace("_", " ").title())
        kwargs.setdefault("body_vi", "Kính gửi {customer_name}, khoản vay {account_number} "
                                     "đến hạn {amount_due} ngày {due_date}.")
        kwargs.setdefault("body_en", "Dear {customer_name}, loan {account_number} has "
                                     "{amount_due} due on {due_date}.")
        if channel != "sms":
            kwargs.setdefault("subject_vi", "Nhắc thanh toán khoản vay {account_number}")
            kwargs.setdefault("subject_en", "Payment reminder for {account_number}")
        template = MessageTemplate(code=code, channel=channel, **kwargs)
        db.session.add(template)
        db.session.commit()
        return template

    return make


@pytest.fixture
def msg_customer(db, ws_case, make_phone, make_user):
    """A case (agent assigned) whose customer has a verified primary mobile and a primary
    e-mail address. Returns the case (``case.loan``, ``case.phone``, ``case.email``)."""
    from portal.models import Email

    agent = make_user("agent", full_name="Trần Thị Bích")
    case = ws_case(agent, dpd=12, overdue="5000000")
    from portal.models import Customer

    customer = db.session.scalar(db.select(Customer).where(Customer.cif == case.cif))
    customer.name = "Nguyễn Văn An"
    case.phone = make_phone(case.cif, "0912345678", is_primary=True, is_verified=True,
                            verified_at=clock.now() - timedelta(days=30))
    case.email = Email(cif=case.cif, type="PERSONAL", address="an.nguyen@example.vn",
                       is_primary=True, is_verified=True, source_system="CRM")
    db.session.add(case.email)
    db.session.commit()
    case.agent = agent
    return case


@pytest.fixture
def sms_gateway(app, live_server):
    """The sandbox SMS gateway on a thread, reporting to the test's live portal; the app's
    config points at it for the test."""
    sandbox = sms_server.create_app(faults=Faults(), api_key="test-sms-key",
                                    secret=TEST_SMS_SECRET, scheme="standard",
                                    portal_url=live_server.url, delivery_delay=0.2,
                                    undelivered_rate=0.0)
    saved = {k: app.config.get(k) for k in ("SMS_GATEWAY_URL", "SMS_GATEWAY_API_KEY",
                                            "SMS_DELIVERY_REPORT_URL")}
    with ServerThread(sandbox) as server:
        app.config.update(SMS_GATEWAY_URL=server.url, SMS_GATEWAY_API_KEY="test-sms-key",
                          SMS_DELIVERY_REPORT_URL=None)
        server.gateway = sandbox.extensions["sandbox"]
        try:
            yield server
        finally:
            app.config.update(saved)


@pytest.fixture
def smtp_sandbox(app):
    saved = {k: app.config.get(k) for k in ("SMTP_HOST", "SMTP_PORT")}
    with CapturingSmtpServer() as smtp:
        app.config.update(SMTP_HOST=smtp.host, SMTP_PORT=smtp.port)
        try:
            yield smtp
        finally:
            app.config.update(saved)


def bank_time(day_offset: int, hour: int, minute: int = 0) -> datetime:
    """``hour:minute`` bank time, ``day_offset`` days from the running clock's business date."""
    from datetime import time as dtime

    day = clock.bank_today(clock.running_now()) + timedelta(days=day_offset)
    return clock.bank_datetime(day, dtime(hour, minute))


def wait_until(predicate, timeout: float = 10.0, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)
