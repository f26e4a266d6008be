"""Documents in the browser, in Vietnamese (issue 22, case management 3): an agent uploads a
receipt (a real PDF built here) against a loan and downloads it (the same bytes), after the
refusals of a disguised program and an oversized file, shown next to the file field; a field
agent attaches a photo at a visit check-in from a phone (390 px). Screenshots at 1440 and
390 px, axe clean."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal.documents import operations
from portal.models import Document, DocumentDownload, Visit
from tests.documents_support import WINDOWS_PROGRAM, small_pdf, small_png
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.test_vietnamese_walk import page_problems
from tests.factories import DEFAULT_PASSWORD

WIDTHS = {1440: {"width": 1440, "height": 900}, 390: {"width": 390, "height": 844}}
LIMIT = 4096  # this test's document limit ("4,0 kB")


@pytest.fixture
def small_limit(app):
    previous = app.config["DOCUMENT_MAX_BYTES"]
    app.config["DOCUMENT_MAX_BYTES"] = LIMIT
    yield LIMIT
    app.config["DOCUMENT_MAX_BYTES"] = previous


def choose_file(page, name: str, mime: str, data: bytes):
    page.get_by_test_id("document-file").set_input_files(
        files=[{"name": name, "mimeType": mime, "buffer": data}])


@pytest.mark.parametrize("width", WIDTHS)
def test_an_agent_uploads_a_receipt_and_downloads_it_in_vietnamese(
        page, live_server, db, make_user, ws_case, bank_hours, sign_in, screenshot, small_limit,
        width):
    agent = make_user("agent", full_name="Trần Thị Thu", language="vi")
    case = ws_case(agent, dpd=75, overdue="18500000")
    sign_in(page, agent.username, DEFAULT_PASSWORD)
    page.set_viewport_size(WIDTHS[width])
    page.goto(f"{live_server.url}/cases/{case.cif}")
    card = page.get_by_test_id("panel-documents")
    expect(card.locator("h2")).to_have_text("Chứng từ")
    expect(card).to_contain_text("Chưa có chứng từ")

    # a Windows program named .pdf: refused for what it is, next to the file field
    choose_file(page, "hoa-don.pdf", "application/pdf", WINDOWS_PROGRAM)
    page.get_by_test_id("document-kind-input").select_option(label="Biên lai")
    page.get_by_test_id("document-upload").click()
    error = page.locator('[data-error-for="file"]')
    expect(error).to_have_text(
        "“hoa-don.pdf” là một chương trình Windows (.exe hoặc .dll), không phải tệp PDF, JPEG, "
        "PNG, WebP hoặc HEIC: tệp bị từ chối dù tên tệp ghi gì.")
    expect(page.get_by_test_id("document-kind-input").locator("option:checked")).to_have_text(
        "Biên lai")  # what was chosen stays chosen
    card.scroll_into_view_if_needed()
    screenshot(page, f"documents-refused-program-vi-{width}")
    assert page_problems(page) == []

    # a real PDF, but over this test's limit: refused while it streams in
    choose_file(page, "scan-lon.pdf", "application/pdf", small_pdf() + b"%" * LIMIT)
    page.get_by_test_id("document-upload").click()
    expect(error).to_have_text("Tệp lớn hơn 4,0 kB, mức tối đa cho một chứng từ: tệp bị từ "
                               "chối. Hãy gửi bản scan hoặc ảnh nhỏ hơn.")

    # the receipt, for the loan
    pdf = small_pdf("Bien lai thu no 5.000.000 VND")
    choose_file(page, "bien-lai-11-2026.pdf", "application/pdf", pdf)
    page.get_by_test_id("document-account-input").select_option(case.loan.account_number)
    page.get_by_test_id("document-upload").click()
    expect(page.get_by_test_id("documents-message")).to_have_text(
        "Đã tải lên “bien-lai-11-2026.pdf”.")
    expect(error).to_have_count(0)
    row = page.get_by_test_id("document-row")
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("document-kind")).to_have_text("Biên lai")
    expect(row).to_contain_text("Trần Thị Thu")
    expect(row).to_contain_text(case.loan.account_number)

    with page.expect_download() as download:
        row.get_by_test_id("document-download").click()
    saved = Path(download.value.path())
    assert download.value.suggested_filename == "bien-lai-11-2026.pdf"
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == hashlib.sha256(pdf).hexdigest()

    page.get_by_test_id("panel-documents").scroll_into_view_if_needed()
    screenshot(page, f"documents-uploaded-vi-{width}")
    page.get_by_test_id("panel-documents").screenshot(
        path=str(SCREENSHOTS / f"panel-documents-vi-{width}.png"))
    assert page_problems(page) == []

    document = db.session.scalar(select(Document))
    assert (document.kind, document.account_number, document.sha256) == (
        "receipt", case.loan.account_number, hashlib.sha256(pdf).hexdigest())
    logged = db.session.execute(select(DocumentDownload.user_id, DocumentDownload.disposition,
                                       DocumentDownload.correlation_id)).all()
    assert [(u, d) for u, d, _c in logged] == [(agent.id, "attachment")]
    assert logged[0].correlation_id  # the request's id, as in the logs
    assert operations.violations(db.session, bank_hours) == []


def test_a_field_agent_attaches_a_photo_at_a_visit_check_in_on_a_phone(
        page, live_server, db, make_user, ws_case, bank_hours, sign_in, screenshot):
    field_agent = make_user("field_agent", full_name="Lê Văn Tám", language="vi")
    case = ws_case(None, dpd=60, assigned_field_agent_id=field_agent.id)
    visit = Visit(cif=case.cif, agent_id=field_agent.id, planned_for=bank_hours.date(),
                  status="checked_in", checked_in_at=bank_hours, verification="verified")
    db.session.add(visit)
    db.session.commit()
    sign_in(page, field_agent.username, DEFAULT_PASSWORD)
    page.set_viewport_size(WIDTHS[390])
    page.goto(f"{live_server.url}/field/visits")
    form = page.get_by_test_id("visit-photo-form")
    expect(form).to_be_visible()
    photo_input = form.get_by_test_id("visit-photo-input")
    assert photo_input.get_attribute("accept") == "image/*"
    assert photo_input.get_attribute("capture") == "environment"
    form.scroll_into_view_if_needed()
    screenshot(page, "visit-photo-form-vi-390")
    assert page_problems(page) == []

    photo_input.set_input_files(files=[{"name": "IMG_2041.png", "mimeType": "image/png",
                                        "buffer": small_png(64, 48)}])
    with page.expect_navigation():
        form.get_by_test_id("visit-photo-submit").click()
    expect(page.locator(".alert").filter(
        has_text=f"Đã đính kèm ảnh vào chuyến thăm khách hàng {case.cif}.").first).to_be_visible()
    screenshot(page, "visit-photo-attached-vi-390")
    assert page_problems(page) == []

    # on the case view: a visit photo of the customer, taken at the check-in
    page.goto(f"{live_server.url}/cases/{case.cif}")
    row = page.get_by_test_id("document-row")
    expect(row.get_by_test_id("document-kind")).to_have_text("Ảnh đi thực địa")
    expect(row).to_contain_text("chụp khi check-in chuyến thăm")
    expect(row).to_contain_text("Lê Văn Tám")
    page.get_by_test_id("panel-documents").scroll_into_view_if_needed()
    screenshot(page, "case-visit-photo-vi-390")
    assert page_problems(page) == []
    document = db.session.scalar(select(Document))
    assert (document.kind, document.visit_id, document.content_type) == (
        "visit_photo", visit.id, "image/png")
