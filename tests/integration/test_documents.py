"""Documents (portal/documents): upload checked by content and size with the refusal next to
the field and nothing half-written, a safe name for any path sent, the file stored whole under
a generated key (and removed when its row cannot be written), every opening and download
logged with the user and the correlation id, the visit photo of a field agent, who may see and
upload, and the invariant that the store holds every document's file."""

from __future__ import annotations

import hashlib
import html as html_text
import io
import os
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from portal.documents import operations, storage
from portal.models import AuditLog, Document, DocumentDownload, Visit
from portal.ops import invariants
from tests.conftest import csrf_token_from
from tests.documents_support import WINDOWS_PROGRAM, small_pdf, small_png

NOW = datetime(2026, 11, 24, 3, 30, tzinfo=UTC)


def store_files(app) -> set[str]:
    """Every file in the document store (temporary ones included)."""
    root = app.config["DOCUMENT_STORAGE_DIR"]
    return {os.path.join(d, f) for d, _dirs, files in os.walk(root) for f in files}


def written(db) -> tuple:
    return tuple(db.session.scalar(select(func.count()).select_from(model))
                 for model in (Document, DocumentDownload, AuditLog))


def token(client) -> str:
    return csrf_token_from(client.get("/").get_data(as_text=True))


def upload(client, cif, data: bytes | None, name="bien-lai.pdf", kind="receipt", account="",
           **headers):
    form = {"csrf_token": token(client), "kind": kind, "account": account}
    if data is not None:
        form["file"] = (io.BytesIO(data), name)
    return client.post(f"/documents/customers/{cif}", data=form,
                       content_type="multipart/form-data",
                       headers={"HX-Request": "true", **headers})


def error_for(html: str, name: str) -> str | None:
    match = re.search(rf'data-error-for="{name}">([^<]*)<', html)
    return html_text.unescape(match.group(1)) if match else None


@pytest.fixture
def agent_case(db, make_user, ws_case, login, frozen_now):
    frozen_now(NOW)
    agent = make_user("agent", full_name="Trần Thị Thu")
    case = ws_case(agent, dpd=45)
    login(agent)
    return agent, case


# --- a document comes in ---------------------------------------------------------------------


def test_an_agent_uploads_a_receipt_for_a_loan(app, db, client, agent_case):
    agent, case = agent_case
    pdf = small_pdf("Bien lai 5.000.000 VND")
    response = upload(client, case.cif, pdf, account=case.loan.account_number,
                      **{"X-Request-ID": "req-doc-upload-1"})
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    html = response.get_data(as_text=True)
    assert "bien-lai.pdf" in html and "Receipt" in html and "Trần Thị Thu" in html

    document = db.session.scalar(select(Document))
    assert (document.cif, document.kind, document.account_number) == (
        case.cif, "receipt", case.loan.account_number)
    assert (document.content_type, document.size_bytes, document.sha256) == (
        "application/pdf", len(pdf), hashlib.sha256(pdf).hexdigest())
    assert document.uploaded_by_id == agent.id and document.uploaded_at == NOW
    assert re.fullmatch(r"[0-9a-f]{2}/[0-9a-f]{32}", document.storage_key)
    with open(storage.path_of(document.storage_key), "rb") as stored:
        assert stored.read() == pdf
    assert not [f for f in store_files(app) if os.path.basename(f).startswith(".incoming-")]
    row = db.session.scalar(select(AuditLog).where(AuditLog.action == "document.upload"))
    assert row.entity_id == str(document.id) and row.actor_id == agent.id
    assert row.correlation_id == "req-doc-upload-1"
    assert row.after["sha256"] == document.sha256 and row.after["name"] == "bien-lai.pdf"


def test_without_scripts_the_form_goes_back_to_the_case_with_a_message(db, client, agent_case):
    _agent, case = agent_case
    form = {"csrf_token": token(client), "kind": "receipt", "account": "",
            "file": (io.BytesIO(small_pdf()), "bien-lai.pdf")}
    response = client.post(f"/documents/customers/{case.cif}", data=form,
                           content_type="multipart/form-data")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/cases/{case.cif}#panel-documents")
    assert "“bien-lai.pdf” uploaded." in client.get(f"/cases/{case.cif}").get_data(
        as_text=True)
    form.update(file=(io.BytesIO(WINDOWS_PROGRAM), "x.pdf"))
    assert client.post(f"/documents/customers/{case.cif}", data=form,
                       content_type="multipart/form-data").status_code == 302
    page = html_text.unescape(client.get(f"/cases/{case.cif}").get_data(as_text=True))
    assert "Document not uploaded: “x.pdf” is a Windows program" in page
    assert db.session.scalar(select(func.count()).select_from(Document)) == 1


@pytest.mark.parametrize(("data", "name", "kind", "field", "words"), [
    (WINDOWS_PROGRAM, "hoa-don.pdf", "receipt", "file", "is a Windows program"),
    (b"#!/bin/sh\necho owned\n", "scan.pdf", "receipt", "file", "is a script"),
    (b"GIF89a\x01\x00\x01\x00", "anh.png", "other", "file", "is a GIF image"),
    (b"plain words, not a document", "note.pdf", "other", "file", "is not a PDF"),
    (b"", "empty.pdf", "receipt", "file", "The file is empty"),
    (None, None, "receipt", "file", "Choose a file"),
    (small_pdf(), "ok.pdf", "bogus", "kind", "Choose what kind"),
    (small_pdf(), "ok.pdf", "", "kind", "Choose what kind"),
    (small_png(), "photo.png", "visit_photo", "kind", "Choose what kind"),  # only at a visit
])
def test_a_refused_upload_says_why_next_to_the_field_and_keeps_nothing(
        app, db, client, agent_case, data, name, kind, field, words):
    _agent, case = agent_case
    before, files = written(db), store_files(app)
    response = upload(client, case.cif, data, name=name, kind=kind)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert words in (error_for(html, field) or ""), html[:2000]
    assert written(db) == before and store_files(app) == files


def test_the_disguised_program_is_named_for_what_it_is(db, client, agent_case):
    _agent, case = agent_case
    html = upload(client, case.cif, WINDOWS_PROGRAM, name="..\\..\\hoa don.pdf").get_data(
        as_text=True)
    assert error_for(html, "file") == (
        "“hoa don.pdf” is a Windows program (.exe or .dll), not a PDF, JPEG, PNG, WebP or "
        "HEIC file: it is refused whatever its name says.")


def test_an_account_of_another_customer_is_refused(app, db, client, agent_case, ws_case):
    _agent, case = agent_case
    other = ws_case(None, dpd=10)
    before = written(db)
    response = upload(client, case.cif, small_pdf(), account=other.loan.account_number)
    assert response.status_code == 422
    assert "not one of the customer's" in error_for(response.get_data(as_text=True), "account")
    assert written(db) == before


def test_a_file_just_over_the_limit_is_refused_while_it_streams(app, db, client, agent_case):
    _agent, case = agent_case
    app.config["DOCUMENT_MAX_BYTES"] = 2000
    try:
        before, files = written(db), store_files(app)
        response = upload(client, case.cif, small_pdf() + b"%" * 3000)
        assert response.status_code == 422
        message = error_for(response.get_data(as_text=True), "file")
        assert "larger than 2,0 kB" in message or "larger than 2.0 kB" in message, message
        assert written(db) == before and store_files(app) == files
        # at the limit exactly, it is taken
        exact = small_pdf()
        exact += b"%" * (2000 - len(exact))
        assert upload(client, case.cif, exact).status_code == 200
    finally:
        app.config["DOCUMENT_MAX_BYTES"] = 10 * 1024 * 1024


class CountingStream(io.RawIOBase):
    """A request body of ``size`` bytes that counts what the server reads of it (seeking, as
    the test client does to measure it, reads nothing)."""

    def __init__(self, size: int):
        self.size, self.position, self.read_bytes = size, 0, 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=io.SEEK_SET):
        self.position = {io.SEEK_SET: 0, io.SEEK_CUR: self.position,
                         io.SEEK_END: self.size}[whence] + offset
        return self.position

    def tell(self):
        return self.position

    def readinto(self, buffer):
        n = max(0, min(len(buffer), self.size - self.position))
        buffer[:n] = b"%" * n
        self.position += n
        self.read_bytes += n
        return n


def test_a_body_far_over_the_limit_is_refused_unread(app, db, client, agent_case):
    """413 with the limit in words, before any of the body is read (the Content-Length says)."""
    _agent, case = agent_case
    app.config["DOCUMENT_MAX_BYTES"] = 2000
    try:
        tok = token(client)
        before = written(db)
        body = CountingStream(50 * 1024 * 1024)
        response = client.post(
            f"/documents/customers/{case.cif}", input_stream=body,
            content_type="multipart/form-data; boundary=xyz",
            headers={"Content-Length": str(body.size), "X-CSRFToken": tok})
        assert response.status_code == 413
        assert "larger than 2" in response.get_data(as_text=True)
        assert body.read_bytes == 0 and written(db) == before
    finally:
        app.config["DOCUMENT_MAX_BYTES"] = 10 * 1024 * 1024


def test_a_document_larger_than_the_app_wide_request_limit_is_taken(app, db, client,
                                                                   agent_case):
    """The upload routes raise the request limit to the document limit: a 5 MB scan passes
    although every other form stops at MAX_CONTENT_LENGTH (4 MB)."""
    _agent, case = agent_case
    assert app.config["MAX_CONTENT_LENGTH"] < 5 * 1024 * 1024
    big = small_pdf() + b"%" * (5 * 1024 * 1024)
    # encoded here into memory (the test client spools a large body to a file it never closes)
    boundary, body = encode_multipart({"csrf_token": token(client), "kind": "receipt",
                                       "file": FileStorage(io.BytesIO(big), "scan.pdf")})
    response = client.post(f"/documents/customers/{case.cif}", data=body,
                           content_type=f"multipart/form-data; boundary={boundary}",
                           headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert db.session.scalar(select(Document.size_bytes)) == len(big)


@pytest.mark.parametrize(("sent", "shown"), [
    ("../../etc/passwd.pdf", "passwd.pdf"),
    # werkzeug reads a backslash in the quoted name as an escape: "C:xy.pdf" reaches us
    # (tests/unit/test_document_content.py: the path itself is reduced too)
    ("C:\\x\\y.pdf", "xy.pdf"),
    ("..\\..\\windows\\win.ini", "windowswin.ini.pdf"),
    ("/tmp/../../root/.bashrc", "bashrc.pdf"),
])
def test_a_path_in_the_name_is_reduced_to_a_name_and_never_a_place(app, db, client, agent_case,
                                                                   sent, shown):
    _agent, case = agent_case
    files = store_files(app)
    assert upload(client, case.cif, small_pdf(), name=sent).status_code == 200
    document = db.session.scalar(select(Document))
    assert document.original_name == shown
    added = store_files(app) - files
    assert added == {storage.path_of(document.storage_key)}
    root = os.path.realpath(app.config["DOCUMENT_STORAGE_DIR"])
    assert os.path.realpath(next(iter(added))).startswith(root + os.sep)


def test_the_file_goes_when_its_row_cannot_be_written(app, db, agent_case):
    agent, _case = agent_case
    files = store_files(app)
    with pytest.raises(IntegrityError):  # no such customer: the row's foreign key refuses it
        operations.add_document(db.session, agent, cif="NO-SUCH-CIF", kind="receipt",
                                account_number=None, stream=io.BytesIO(small_pdf()),
                                filename="x.pdf", now=NOW, max_bytes=10_000)
    db.session.rollback()
    assert store_files(app) == files


def test_the_file_goes_when_the_commit_fails(app, db, agent_case, monkeypatch):
    agent, case = agent_case
    files = store_files(app)
    document = operations.add_document(
        db.session, agent, cif=case.cif, kind="receipt", account_number=None,
        stream=io.BytesIO(small_pdf()), filename="x.pdf", now=NOW, max_bytes=10_000)
    assert storage.file_size(document.storage_key) is not None

    def failing_commit():
        raise IntegrityError("COMMIT", {}, Exception("the database went away"))

    monkeypatch.setattr(db.session, "commit", failing_commit)
    with pytest.raises(IntegrityError):
        operations.commit_or_discard(db.session, document)
    monkeypatch.undo()
    assert store_files(app) == files and written(db)[0] == 0


# --- opening and downloading ----------------------------------------------------------------


def test_every_opening_and_download_is_logged(app, db, client, agent_case):
    agent, case = agent_case
    pdf = small_pdf()
    upload(client, case.cif, pdf, name="Biên lai tháng 11.pdf")
    document = db.session.scalar(select(Document))

    opened = client.get(f"/documents/{document.id}", headers={"X-Request-ID": "req-open-1"})
    assert opened.status_code == 200 and opened.data == pdf
    assert opened.headers["Content-Type"] == "application/pdf"
    assert opened.headers["Content-Disposition"].startswith("inline;")
    assert opened.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in opened.headers["Cache-Control"]
    assert "default-src 'none'" in opened.headers["Content-Security-Policy"]
    opened.close()

    saved = client.get(f"/documents/{document.id}/download",
                       headers={"X-Request-ID": "req-download-1"})
    assert saved.status_code == 200 and hashlib.sha256(saved.data).hexdigest() == document.sha256
    disposition = saved.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''Bi%C3%AAn%20lai%20th%C3%A1ng%2011.pdf" in disposition
    saved.close()

    rows = db.session.execute(select(DocumentDownload.user_id, DocumentDownload.disposition,
                                     DocumentDownload.correlation_id)
                              .order_by(DocumentDownload.id)).all()
    assert rows == [(agent.id, "inline", "req-open-1"), (agent.id, "attachment",
                                                         "req-download-1")]
    card = client.get(f"/documents/customers/{case.cif}").get_data(as_text=True)
    assert "opened 2 times" in card


def test_a_missing_file_is_a_404_and_logs_nothing(app, db, client, agent_case):
    _agent, case = agent_case
    upload(client, case.cif, small_pdf())
    document = db.session.scalar(select(Document))
    os.unlink(storage.path_of(document.storage_key))
    response = client.get(f"/documents/{document.id}/download")
    assert response.status_code == 404
    assert db.session.scalar(select(func.count()).select_from(DocumentDownload)) == 0


# --- who may -------------------------------------------------------------------------------


def test_a_supervisor_sees_the_documents_and_uploads_none(app, db, client, make_user, make_team,
                                                         ws_case, login, frozen_now):
    frozen_now(NOW)
    agent = make_user("agent")
    supervisor = make_user("supervisor")
    team = make_team(supervisor_id=supervisor.id)
    agent.team_id = supervisor.team_id = team.id
    db.session.commit()
    case = ws_case(agent, dpd=30)
    operations.add_document(db.session, agent, cif=case.cif, kind="id_document",
                            account_number=None, stream=io.BytesIO(small_png()),
                            filename="cccd.png", now=NOW, max_bytes=10_000)
    db.session.commit()
    login(supervisor)
    card = client.get(f"/documents/customers/{case.cif}")
    assert card.status_code == 200
    html = card.get_data(as_text=True)
    assert "cccd.png" in html and "document-form" not in html
    assert upload(client, case.cif, small_pdf()).status_code == 403


def test_auditors_and_admins_do_not_read_customers_documents(db, client, login_as, ws_case):
    case = ws_case(None)
    for role in ("auditor", "admin", "ops"):
        login_as(role)
        assert client.get(f"/documents/customers/{case.cif}").status_code == 403


# --- the visit photo -----------------------------------------------------------------------


@pytest.fixture
def field_visit(db, make_user, ws_case, login, bank_hours):
    field_agent = make_user("field_agent", full_name="Lê Văn Tám")
    case = ws_case(None, dpd=60, assigned_field_agent_id=field_agent.id)
    visit = Visit(cif=case.cif, agent_id=field_agent.id, planned_for=bank_hours.date(),
                  status="checked_in", checked_in_at=bank_hours, verification="verified")
    db.session.add(visit)
    db.session.commit()
    login(field_agent)
    return field_agent, case, visit


def photo(client, visit_id, data, name="IMG_0001.png"):
    return client.post(f"/documents/visits/{visit_id}/photo",
                       data={"csrf_token": token(client), "file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def test_a_field_agent_attaches_a_photo_at_a_check_in(db, client, field_visit):
    field_agent, case, visit = field_visit
    response = photo(client, visit.id, small_png())
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/field/visits#visit-{visit.id}")
    document = db.session.scalar(select(Document))
    assert (document.kind, document.visit_id, document.cif, document.content_type) == (
        "visit_photo", visit.id, case.cif, "image/png")
    assert document.uploaded_by_id == field_agent.id
    page = client.get("/field/visits").get_data(as_text=True)
    assert "Photo attached to the visit" in page
    card = client.get(f"/documents/customers/{case.cif}").get_data(as_text=True)
    assert "Visit photo" in card and "taken at a visit check-in" in card


def test_a_visit_photo_must_be_a_photo_of_a_checked_in_visit(db, client, field_visit):
    _field_agent, _case, visit = field_visit
    response = photo(client, visit.id, small_pdf(), name="photo.jpg")
    assert response.status_code == 302
    page = client.get("/field/visits").get_data(as_text=True)
    assert "A visit photo must be a photo" in page
    visit.status = "planned"
    db.session.commit()
    photo(client, visit.id, small_png())
    assert "Check in at the visit before" in client.get("/field/visits").get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Document)) == 0


def test_the_visit_page_offers_the_camera(db, client, field_visit):
    _field_agent, _case, visit = field_visit
    html = client.get("/field/visits").get_data(as_text=True)
    form = html[html.index('data-testid="visit-photo-form"') - 300:]
    assert f'/documents/visits/{visit.id}/photo' in form
    assert 'accept="image/*" capture="environment"' in form


# --- the truth -----------------------------------------------------------------------------


def test_the_invariant_finds_a_missing_or_changed_file(app, db, client, agent_case):
    _agent, case = agent_case
    upload(client, case.cif, small_pdf(), name="a.pdf")
    upload(client, case.cif, small_pdf(), name="b.pdf")
    assert operations.violations(db.session, NOW) == []
    first, second = db.session.scalars(select(Document).order_by(Document.id)).all()
    os.unlink(storage.path_of(first.storage_key))
    with open(storage.path_of(second.storage_key), "ab") as grown:
        grown.write(b"tampered")
    found = operations.violations(db.session, NOW)
    assert found == [
        {"document_id": first.id, "cif": case.cif, "expected_size": first.size_bytes,
         "stored_size": None},
        {"document_id": second.id, "cif": case.cif, "expected_size": second.size_bytes,
         "stored_size": second.size_bytes + 8}]
    result = next(r for r in invariants.check_all(db.session, names=["documents"]))
    assert result.violations == 2
