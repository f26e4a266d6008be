"""The public pay page on a phone (390 px) and a desktop (1440 px), in Vietnamese: the VietQR
code, amount, account and transfer content readable without signing in, an expired link's page,
and the print batches page ops uses — screenshots, no sideways scroll, no critical or serious
axe-core violation, no English left on the Vietnamese pages."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from portal import clock
from portal.messages.vietqr import pay_link, payment_reference
from portal.models import Address, Message, MessageTemplate
from tests.e2e.test_vietnamese_walk import page_problems
from tests.factories import DEFAULT_PASSWORD

WIDTHS = {1440: {"width": 1440, "height": 900}, 390: {"width": 390, "height": 844}}


@pytest.fixture
def pay_loan(db, frozen_now, make_customer, make_loan):
    frozen_now("2026-11-24T03:00:00+00:00")
    return make_loan(make_customer(name="Nguyễn Thị Hằng"), dpd=35,
                     account_number="LD2432800018", due_amount=Decimal("2450000"))


@pytest.mark.parametrize("width", WIDTHS)
def test_the_pay_page_on_a_phone_and_a_desktop(page, app, live_server, pay_loan, screenshot,
                                               width, frozen_now):
    with app.app_context():
        path = urlsplit(pay_link(pay_loan.account_number, pay_loan.due_amount, "vi")).path
    page.set_viewport_size(WIDTHS[width])
    page.goto(f"{live_server.url}{path}")
    assert page.locator("html").get_attribute("lang") == "vi"
    expect(page.get_by_role("heading", level=1)).to_have_text("Thanh toán khoản vay bằng VietQR")
    expect(page.get_by_test_id("pay-qr").locator("svg")).to_be_visible()
    expect(page.get_by_test_id("pay-amount")).to_have_text("2.450.000\u00a0₫")
    expect(page.get_by_test_id("pay-reference")).to_have_text(payment_reference("LD2432800018"))
    box = page.get_by_test_id("pay-qr").bounding_box()
    assert box["width"] >= 200  # big enough to scan from another phone's camera
    screenshot(page, f"pay-vi-{width}")
    assert page_problems(page) == []

    page.get_by_test_id("pay-language-en").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Pay your loan by VietQR")
    expect(page.get_by_test_id("pay-amount")).to_have_text("2,450,000\u00a0₫")

    frozen_now(clock.now() + timedelta(days=15))
    page.goto(f"{live_server.url}{path}")
    expect(page.get_by_test_id("pay-problem-expired")).to_contain_text(
        "Liên kết thanh toán này đã hết hạn")
    screenshot(page, f"pay-expired-vi-{width}")
    assert page_problems(page) == []


@pytest.mark.parametrize("width", WIDTHS)
def test_the_print_batches_page(page, db, live_server, make_user, pay_loan, sign_in,
                                screenshot, width, app, tmp_path):
    app.config["PRINT_BATCH_DIR"] = str(tmp_path / "print")
    try:
        template = MessageTemplate(code="LETTER_DPD30", channel="letter", name="Thư nhắc nợ",
                                   subject_vi="Thông báo khoản vay quá hạn", body_vi="Kính gửi",
                                   body_en="Dear", include_vietqr=True)
        address = Address(cif=pay_loan.cif, type="HOME", line1="12 Ngõ Huế", city="Hà Nội",
                          is_primary=True, source_system="T24")
        db.session.add_all([template, address])
        db.session.flush()
        db.session.add(Message(cif=pay_loan.cif, account_number=pay_loan.account_number,
                               channel="letter", template_id=template.id, language="vi",
                               subject="Thông báo khoản vay quá hạn",
                               body="Kính gửi Ông/Bà Nguyễn Thị Hằng, khoản vay quá hạn.",
                               business_date=date(2026, 11, 24), address_id=address.id))
        db.session.commit()
        ops = make_user("ops", full_name="Phạm Văn Vận", language="vi")
        page.set_viewport_size(WIDTHS[width])
        sign_in(page, ops.username, DEFAULT_PASSWORD)
        page.goto(f"{live_server.url}/letters/batches")
        expect(page.get_by_test_id("letters-waiting")).to_have_text("1 thư đang chờ vào lô.")
        page.get_by_test_id("build-batch").click()
        row = page.get_by_test_id("batch-2026-11-24")
        expect(row).to_contain_text("Đã tạo, chưa giao")
        screenshot(page, f"print-batches-vi-{width}")
        assert page_problems(page) == []
        row.get_by_test_id("hand-over").click()
        expect(page.get_by_test_id("batch-2026-11-24")).to_contain_text("Đã giao cho đơn vị in")
    finally:
        app.config["PRINT_BATCH_DIR"] = ""
