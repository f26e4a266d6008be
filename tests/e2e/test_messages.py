"""Messages in the browser, in Vietnamese (issue 23), at 1440 px and on a phone (390 px): a
supervisor writes an SMS template (an unknown variable refused next to the field) and previews
it with a real account's data and its length in segments; an agent sends a one-off SMS from
the case view, sees the preview, and the timeline follows it to delivered through the sandbox
gateway's delivery report."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal import clock
from portal.messages import dispatch
from portal.models import Email, Message, MessageTemplate
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.test_vietnamese_walk import page_problems
from tests.factories import DEFAULT_PASSWORD
from tests.messages_support import wait_until

BUSY = ".htmx-request, .htmx-swapping, .htmx-settling, .htmx-added"


def settled(page) -> None:
    expect(page.locator(BUSY)).to_have_count(0)


def choose(page, test_id: str, value: str) -> None:
    """Select ``value`` once htmx has settled the card (a swapped select answers at once)."""
    settled(page)
    page.get_by_test_id(test_id).select_option(value)
    settled(page)


WIDTHS = {1440: {"width": 1440, "height": 900}, 390: {"width": 390, "height": 844}}


@pytest.mark.parametrize("width", WIDTHS)
def test_a_supervisor_writes_an_sms_template_and_previews_it_on_a_real_account(
        page, live_server, db, make_user, ws_case, bank_hours, sign_in, screenshot, width):
    sup = make_user("supervisor", full_name="Lê Văn Giám", language="vi")
    case = ws_case(None, dpd=12, overdue="5000000")
    account = case.loan.account_number
    page.set_viewport_size(WIDTHS[width])
    sign_in(page, sup.username, DEFAULT_PASSWORD)

    page.goto(f"{live_server.url}/messages/templates")
    expect(page.locator("h1")).to_have_text("Mẫu tin nhắn")
    page.get_by_test_id("new-template").click()
    page.get_by_test_id("tpl-code").fill("SMS_NHAC_NO")
    page.get_by_test_id("tpl-name").fill("Nhắc nợ trước hạn")
    page.get_by_test_id("tpl-body_vi").fill(
        "Kính gửi {customer_name}, khoản vay {account_number} đến hạn {amount_due} "
        "ngày {due_date}. Số dư {balance}.")
    page.get_by_test_id("tpl-body_en").fill(
        "Dear {customer_name}, loan {account_number} has {amount_due} due on {due_date}.")
    page.get_by_test_id("template-save").click()
    error = page.locator('[data-error-for="body_vi"]')
    expect(error).to_contain_text("Biến không hợp lệ: {balance}")
    assert db.session.scalar(select(MessageTemplate)) is None
    screenshot(page, f"message-template-error-vi-{width}")

    page.get_by_test_id("tpl-body_vi").fill(
        "Kính gửi {customer_name}, khoản vay {account_number} đến hạn {amount_due} "
        "ngày {due_date}.")
    page.get_by_test_id("template-save").click()
    expect(page.locator(".flash, .alert-success").first).to_contain_text("Đã lưu mẫu SMS_NHAC_NO")

    page.get_by_test_id("preview-account").fill(account)
    preview = page.get_by_test_id("preview-vi")
    expect(preview).to_contain_text(f"khoản vay {account} đến hạn 5.000.000 ₫")
    expect(page.get_by_test_id("segments-vi")).to_contain_text("UCS-2")
    expect(page.get_by_test_id("preview-en")).to_contain_text("5,000,000 ₫")
    template = db.session.scalar(select(MessageTemplate))
    assert template.code == "SMS_NHAC_NO" and "{balance}" not in template.body_vi
    screenshot(page, f"message-template-preview-vi-{width}")
    assert page_problems(page) == []

    page.goto(f"{live_server.url}/messages/templates")
    expect(page.get_by_test_id("template-SMS_NHAC_NO")).to_contain_text("Đang dùng")
    screenshot(page, f"message-templates-vi-{width}")
    assert page_problems(page) == []


@pytest.mark.parametrize("width", WIDTHS)
def test_an_agent_sends_a_one_off_sms_and_the_timeline_shows_it_delivered(
        page, live_server, db, make_user, ws_case, make_phone, make_template, bank_hours,
        sign_in, screenshot, sms_gateway, width):
    agent = make_user("agent", full_name="Trần Thị Thu", language="vi")
    case = ws_case(agent, dpd=12, overdue="5000000")
    phone = make_phone(case.cif, "0912345678", is_primary=True, is_verified=True,
                       verified_at=bank_hours - timedelta(days=40))
    blocked = make_phone(case.cif, "0987654321", type="HOME", is_verified=True,
                         do_not_contact=True)
    db.session.add(Email(cif=case.cif, type="PERSONAL", address="khach@example.vn",
                         is_primary=True, source_system="CRM"))
    db.session.commit()
    template = make_template("SMS_NHAC", name="Nhắc nợ SMS")
    page.set_viewport_size(WIDTHS[width])
    sign_in(page, agent.username, DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/cases/{case.cif}")

    card = page.get_by_test_id("panel-send-message")
    expect(card).to_contain_text("Gửi tin nhắn")
    choose(page, "send-template", str(template.id))
    expect(page.get_by_test_id("send-preview")).to_contain_text(
        f"khoản vay {case.loan.account_number} đến hạn 5.000.000 ₫")
    # the number marked do-not-contact: the card says the rules would hold it, before sending
    choose(page, "send-point", f"sms:{blocked.id}")
    expect(page.get_by_test_id("send-would-hold")).to_contain_text(
        "Liên hệ bị đánh dấu không liên lạc")
    choose(page, "send-point", f"sms:{phone.id}")
    expect(page.get_by_test_id("send-would-hold")).to_have_count(0)
    page.get_by_test_id("panel-send-message").screenshot(
        path=str(SCREENSHOTS / f"panel-send-message-vi-{width}.png"))
    settled(page)
    page.get_by_test_id("send-submit").click()
    expect(page.get_by_test_id("send-notice")).to_contain_text("Đã xếp hàng")

    message = wait_until(lambda: db.session.scalar(select(Message)))
    assert message.status == "queued" and message.phone_id == phone.id
    assert dispatch.dispatch_due(db.session, clock.now()) == {"sent": 1}

    def delivered():
        db.session.expire_all()
        return db.session.get(Message, message.id).status == "delivered"

    assert wait_until(delivered), "no delivery report"
    page.reload()
    status = page.get_by_test_id("message-status").first
    expect(status).to_have_attribute("data-message-status", "delivered")
    expect(status).to_contain_text("Đã đến người nhận")
    screenshot(page, f"case-message-delivered-vi-{width}")
    assert page_problems(page) == []


@pytest.mark.parametrize("width", WIDTHS)
def test_ops_see_the_channels_and_retry_a_failed_sms(page, live_server, db, make_user, ws_case,
                                                    bank_hours, sign_in, screenshot, width):
    from portal.models import AuditLog

    ops = make_user("ops", full_name="Vũ Văn Vận", language="vi")
    case = ws_case(None, dpd=40, overdue="7000000")
    failed = Message(cif=case.cif, channel="sms", status="failed", body="x", attempts=5,
                     business_date=clock.bank_today(bank_hours), failed_at=bank_hours,
                     status_detail="SMS gateway unavailable: 503 service_unavailable")
    db.session.add(failed)
    db.session.commit()
    page.set_viewport_size(WIDTHS[width])
    sign_in(page, ops.username, DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/ops/integrations")
    slot = page.get_by_test_id("message-channels-slot")
    expect(slot.get_by_test_id("count-sms-failed")).to_have_text("1")
    screenshot(page, f"ops-integrations-with-messages-vi-{width}")
    assert page_problems(page) == []
    page.get_by_test_id("ops-messages-link").click()
    expect(page.locator("h1")).to_have_text("Tin nhắn")
    expect(page.get_by_test_id("count-sms-failed")).to_have_text("1")
    expect(page.get_by_test_id("channel-sms")).to_contain_text("503 service_unavailable")
    screenshot(page, f"ops-messages-vi-{width}")
    assert page_problems(page) == []
    page.get_by_test_id(f"retry-{failed.id}").click()
    expect(page.locator(".alert-success").first).to_contain_text(
        f"Tin nhắn #{failed.id} đã được xếp hàng gửi lại.")
    db.session.expire_all()
    assert db.session.get(Message, failed.id).status == "queued"
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "message.retry"))
