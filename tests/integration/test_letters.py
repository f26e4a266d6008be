"""Letters as PDF and the print batch: a Vietnamese letter keeps every diacritic (pdftotext
reads back exactly what was written, the PNG from pdftoppm is not blank, the only font in the
PDF is the vendored DejaVu Sans), the VietQR block carries the loan's code, and the daily
batch writes one PDF per letter, a combined PDF and a manifest whose checksums match the files,
marks the letters sent (delivered once handed over) and is built once per business date."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import struct
import subprocess
import zlib
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from portal.messages import letters
from portal.messages.vietqr import payment_reference
from portal.models import Address, AuditLog, Message, MessageTemplate
from portal.models.print_batches import PrintBatch, PrintBatchLetter

NOW = "2026-11-24T02:00:00+00:00"  # 09:00 bank time
DAY = date(2026, 11, 24)
SUBJECT = "Thông báo khoản vay quá hạn"
BODY = ("Kính gửi Ông/Bà Nguyễn Thị Hằng, khoản vay quá hạn của Ông/Bà cần được thanh toán "
        "trước ngày 30/11/2026.\n\nXin trân trọng cảm ơn Quý khách đã hợp tác. Mọi thắc mắc "
        "xin liên hệ Trung tâm Thu hồi nợ.")

# poppler-utils (pdftoppm, pdftotext) is a test requirement (.ci/run installs it): a missing tool
# fails these tests rather than skipping them


@pytest.fixture
def print_root(app, tmp_path):
    previous = app.config.get("PRINT_BATCH_DIR")
    app.config["PRINT_BATCH_DIR"] = str(tmp_path / "print")
    yield tmp_path / "print"
    app.config["PRINT_BATCH_DIR"] = previous


@pytest.fixture
def letter_world(db, frozen_now, make_customer, make_loan):
    frozen_now(NOW)
    template = MessageTemplate(code="LETTER_DPD30", channel="letter", name="Thư nhắc nợ 30 ngày",
                               subject_vi=SUBJECT, subject_en="Overdue loan notice",
                               body_vi=BODY, body_en="Dear {customer_name}, your loan "
                               "{account_number} is overdue.{unknown}", include_vietqr=True)
    customer = make_customer(name="Nguyễn Thị Hằng")
    loan = make_loan(customer, dpd=35, account_number="LD2432800018",
                     due_amount=Decimal("2450000"), next_payment_date=date(2026, 11, 30))
    address = Address(cif=customer.cif, type="HOME", line1="12 Ngõ Huế, phường Phạm Đình Hổ",
                      district="Quận Hai Bà Trưng", city="Hà Nội", is_primary=True,
                      source_system="T24")
    db.session.add_all([template, address])
    db.session.commit()
    return {"template": template, "customer": customer, "loan": loan, "address": address}


def queue_letter(db, world, *, body=BODY, subject=SUBJECT, language="vi", day=DAY,
                 account="LD2432800018", with_address=True, customer=None) -> Message:
    customer = customer or world["customer"]
    message = Message(cif=customer.cif, account_number=account, channel="letter",
                      template_id=world["template"].id, language=language, subject=subject,
                      body=body, business_date=day, source="strategy",
                      address_id=world["address"].id if with_address else None)
    db.session.add(message)
    db.session.commit()
    return message


def pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout


def png_pixels(path: Path) -> tuple[int, int, bytes]:
    """(width, height, raw rows) of an 8-bit greyscale or RGB PNG as pdftoppm writes it."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + size]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + size
    width, height = header[0], header[1]
    return width, height, zlib.decompress(idat)


def test_a_vietnamese_letter_keeps_its_diacritics(app, db, letter_world, tmp_path):
    message = queue_letter(db, letter_world)
    pdf = tmp_path / "letter.pdf"
    pdf.write_bytes(letters.letter_pdf(db.session, message))

    text = pdf_text(pdf)
    flat = " ".join(text.split())
    for line in [SUBJECT, *BODY.split("\n\n")]:
        assert " ".join(line.split()) in flat, line
    assert "Nguyễn Thị Hằng" in flat and "Quận Hai Bà Trưng" in flat
    assert "2.450.000 ₫" in flat and "LD2432800018" in flat
    assert payment_reference("LD2432800018") in flat  # the VietQR block's transfer content
    assert "Ngày: 24/11/2026" in flat

    # the only fonts in the file are the vendored DejaVu Sans, embedded under the family name
    # of the letter's @font-face (no system font has it): regular and bold
    fonts = subprocess.run(["pdffonts", str(pdf)], check=True, capture_output=True,
                           text=True).stdout.splitlines()[2:]
    names = sorted(line.split()[0].split("+", 1)[1] for line in fonts)
    assert names == ["CRM-Letter-Sans", "CRM-Letter-Sans-Bold"], fonts
    assert all(line.split()[-5] == "yes" for line in fonts)  # emb

    # the page as a picture (looked at by a person: test-results/screenshots/letter-vi.png)
    out = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-singlefile", str(pdf),
                    str(out / "letter-vi")], check=True)
    width, height, raw = png_pixels(out / "letter-vi.png")
    assert (width, height) == (662, 936)  # A4 (210 x 297 mm) at 80 dpi, rounded up
    dark = sum(1 for byte in raw if byte < 128)
    assert dark > 20000  # text, a table and a QR code: far from a blank page


def test_a_letter_without_text_is_rendered_from_its_template_in_english(
        app, db, letter_world, tmp_path):
    message = queue_letter(db, letter_world, body="", subject=None, language="en")
    pdf = tmp_path / "en.pdf"
    pdf.write_bytes(letters.letter_pdf(db.session, message))
    flat = " ".join(pdf_text(pdf).split())
    assert "Overdue loan notice" in flat
    assert "Dear Nguyễn Thị Hằng, your loan LD2432800018 is overdue." in flat
    assert "2,450,000 ₫" in flat and "Date: 24/11/2026" in flat


def test_the_print_batch_is_built_once_per_business_date(app, db, letter_world, print_root,
                                                         make_customer, make_user):
    ops = make_user("ops")
    first = queue_letter(db, letter_world)
    second = queue_letter(db, letter_world, language="en", body="Dear customer,\n\nPlease pay.")
    # no postal address at all: fails with why, and is not in the batch
    nowhere = make_customer(name="Trần Văn Bình")
    lost = queue_letter(db, letter_world, customer=nowhere, with_address=False, account=None)
    later = queue_letter(db, letter_world, day=date(2026, 11, 25))  # tomorrow's: not yet

    batch = letters.build_print_batch(db.session, DAY, actor=ops)
    db.session.commit()
    assert (batch.letters, batch.status) == (2, "built") and batch.pages >= 2
    folder = print_root / "2026-11-24" / str(batch.id)
    assert folder == letters.batch_dir(batch)
    files = sorted(p.name for p in folder.iterdir())
    assert files == sorted([f"0001-{first.id}.pdf", f"0002-{second.id}.pdf",
                            f"batch-2026-11-24-{batch.id}.pdf", "manifest.csv",
                            "manifest.json"])
    manifest_bytes = (folder / "manifest.json").read_bytes()
    manifest = json.loads(manifest_bytes)
    assert batch.manifest_sha256 == hashlib.sha256(manifest_bytes).hexdigest()
    assert (manifest["letters"], manifest["failed"], manifest["pages"]) == (2, 1, batch.pages)
    for item in manifest["items"]:
        assert hashlib.sha256((folder / item["file"]).read_bytes()).hexdigest() == item["sha256"]
    combined = folder / manifest["combined"]["file"]
    assert hashlib.sha256(combined.read_bytes()).hexdigest() == manifest["combined"]["sha256"]
    info = subprocess.run(["pdfinfo", str(combined)], check=True, capture_output=True,
                          text=True).stdout
    assert int(info.split("Pages:")[1].split()[0]) == batch.pages  # every letter's pages
    rows = list(csv.DictReader(io.StringIO((folder / "manifest.csv").read_text("utf-8"))))
    assert [(int(r["message_id"]), r["sha256"]) for r in rows] == [
        (i["message_id"], i["sha256"]) for i in manifest["items"]]

    db.session.expire_all()
    states = {m.id: (m.status, m.provider_id) for m in db.session.scalars(select(Message))}
    assert states[first.id] == ("sent", f"PB{batch.id}-0001")
    assert db.session.get(Message, first.id).payment_reference == payment_reference(
        "LD2432800018")  # the letter carried the VietQR code of its loan
    assert states[second.id] == ("sent", f"PB{batch.id}-0002")
    assert states[lost.id][0] == "failed" and states[later.id][0] == "queued"
    assert db.session.get(Message, lost.id).status_detail.startswith("no_address")

    # again for the same date: the same batch, nothing written, nothing re-sent
    queue_letter(db, letter_world)  # queued after the batch: waits for the next date's
    mtimes = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    again = letters.build_print_batch(db.session, DAY, actor=ops)
    db.session.commit()
    assert again.id == batch.id and again.letters == 2
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == mtimes
    assert db.session.scalar(select(func.count()).select_from(PrintBatch)) == 1
    assert db.session.scalar(select(func.count()).select_from(PrintBatchLetter)) == 2

    # handed to the vendor: delivered, once
    assert letters.hand_over(db.session, batch, actor=ops) is True
    db.session.commit()
    assert letters.hand_over(db.session, batch, actor=ops) is False
    db.session.expire_all()
    assert db.session.get(Message, first.id).status == "delivered"
    assert db.session.get(Message, second.id).delivered_at is not None
    assert db.session.get(Message, lost.id).status == "failed"
    actions = db.session.scalars(select(AuditLog.action).where(
        AuditLog.entity_type == "print_batch").order_by(AuditLog.id)).all()
    assert actions == ["print_batch.build", "print_batch.hand_over"]


def test_ops_builds_downloads_and_hands_over_from_the_page(app, db, client, letter_world,
                                                          print_root, login_as, csrf_token):
    first = queue_letter(db, letter_world)
    login_as("agent")
    assert client.get("/letters/batches").status_code == 403
    login_as("ops", language="vi")
    page = client.get("/letters/batches").get_data(as_text=True)
    assert "1 thư đang chờ" in page and 'data-testid="build-batch"' in page
    token = csrf_token("/letters/batches")
    assert client.post("/letters/batches", data={"csrf_token": token}).status_code == 302
    batch = db.session.scalars(select(PrintBatch)).one()
    page = client.get("/letters/batches").get_data(as_text=True)
    assert 'data-testid="build-batch"' not in page and f"batch-{DAY.isoformat()}" in page
    # the combined PDF and the manifest download; a name outside the batch does not
    pdf = client.get(f"/letters/batches/{batch.id}/files/batch-2026-11-24-{batch.id}.pdf")
    assert pdf.status_code == 200 and pdf.data[:5] == b"%PDF-"
    pdf.close()
    manifest = client.get(f"/letters/batches/{batch.id}/files/manifest.csv")
    assert str(first.id) in manifest.get_data(as_text=True)
    manifest.close()
    assert client.get(f"/letters/batches/{batch.id}/files/..%2Fsecret").status_code == 404
    assert client.get(f"/letters/batches/{batch.id}/files/other.pdf").status_code == 404

    response = client.post(f"/letters/batches/{batch.id}/hand-over", data={"csrf_token": token})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Message, first.id).status == "delivered"
    assert "Đã giao cho đơn vị in" in client.get("/letters/batches").get_data(as_text=True)


def test_the_commands_build_and_hand_over_once(app, db, letter_world, print_root):
    message = queue_letter(db, letter_world)
    runner = app.test_cli_runner()
    first = runner.invoke(args=["letters", "batch", "--date", "2026-11-24"])
    assert first.exit_code == 0, first.output
    said = first.output.strip().splitlines()[-1]  # (log lines may come before it)
    assert said.startswith("batch ") and ": 1 letters, 1 pages in " in said
    again = runner.invoke(args=["letters", "batch", "--date", "2026-11-24"])
    assert again.output.strip().splitlines()[-1] == said
    handed = runner.invoke(args=["letters", "hand-over", "--date", "2026-11-24"])
    assert "handed over" in handed.output
    db.session.expire_all()
    assert db.session.get(Message, message.id).status == "delivered"
    missing = runner.invoke(args=["letters", "hand-over", "--date", "2026-11-20"])
    assert missing.exit_code != 0


def test_the_scheduled_job_builds_todays_batch(app, db, letter_world, print_root):
    from portal.schedules import SCHEDULES, Jobs, resolve

    assert any(s.func == Jobs.BUILD_PRINT_BATCH for s in SCHEDULES)
    message = queue_letter(db, letter_world)
    result = resolve(Jobs.BUILD_PRINT_BATCH)()  # today by the frozen clock: 24/11/2026
    assert (result["business_date"], result["letters"]) == ("2026-11-24", 1)
    assert resolve(Jobs.BUILD_PRINT_BATCH)("2026-11-24")["batch_id"] == result["batch_id"]
    db.session.expire_all()
    assert db.session.get(Message, message.id).status == "sent"


def test_the_truth_check_covers_print_batches(app, db, letter_world, print_root):
    from portal.ops import invariants

    def found() -> list[dict]:
        result, = invariants.check_all(db.session, names=["print_batches"])
        db.session.rollback()
        return result.sample if result.violations else []

    message = queue_letter(db, letter_world)
    batch = letters.build_print_batch(db.session, DAY)
    db.session.commit()
    assert found() == []
    # a letter delivered while its batch is only built, and a count that lies
    db.session.execute(text("UPDATE messages SET status = 'delivered' WHERE id = :id"),
                       {"id": message.id})
    db.session.execute(text("UPDATE print_batches SET letters = 5 WHERE id = :id"),
                       {"id": batch.id})
    stray = queue_letter(db, letter_world)
    db.session.execute(text("UPDATE messages SET status = 'sent' WHERE id = :id"),
                       {"id": stray.id})
    db.session.commit()
    assert [(v["batch_id"], v["message_id"], v["problem"]) for v in found()] == [
        (batch.id, None, "counts"),
        (batch.id, message.id, "letter is delivered in a built batch"),
        (None, stray.id, "letter sent without a print batch"),
    ]


def test_print_batches_and_documents_live_under_the_instance_dir(app, monkeypatch, tmp_path):
    """make run keeps its data under INSTANCE_DIR (default instance/): the files the portal
    writes (documents, print batches) go there too, not into the checkout's instance/."""
    from portal import create_app
    from portal.documents import storage
    from portal.messages import letters

    monkeypatch.setenv("INSTANCE_DIR", str(tmp_path / "inst"))
    other = create_app(overrides={key: app.config[key] for key in (
        "SQLALCHEMY_DATABASE_URI", "REDIS_URL", "PRINT_BATCH_DIR", "DOCUMENT_STORAGE_DIR")})
    other.config.update(PRINT_BATCH_DIR="", DOCUMENT_STORAGE_DIR="")
    with other.app_context():
        assert letters.print_root() == tmp_path / "inst" / "print"
        assert storage.root() == str(tmp_path / "inst" / "documents")
