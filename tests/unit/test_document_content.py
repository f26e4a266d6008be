"""What a file is, read from its first bytes, and the safe name it is shown under
(portal/documents/content.py)."""

from __future__ import annotations

import pytest

from portal.documents import content
from tests.documents_support import WINDOWS_PROGRAM, small_pdf, small_png


@pytest.mark.parametrize(("head", "expected"), [
    (small_pdf()[:32], "application/pdf"),
    (small_png()[:32], "image/png"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg"),
    (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "image/heic"),
    (WINDOWS_PROGRAM[:32], None),
    (b"\x7fELF\x02\x01\x01", None),
    (b"GIF89a", None),
    (b"<svg xmlns='http://www.w3.org/2000/svg'>", None),
    (b" %PDF-1.4", None),  # the signature must open the file
    (b"", None),
])
def test_sniff_reads_the_type_from_the_first_bytes(head, expected):
    assert content.sniff(head) == expected


@pytest.mark.parametrize(("head", "words"), [
    (WINDOWS_PROGRAM, "a Windows program (.exe or .dll)"),
    (b"\x7fELF\x02", "a Linux program"),
    (b"#!/bin/sh\nrm -rf /", "a script"),
    (b"PK\x03\x04\x14\x00", "a ZIP archive (or an Office document)"),
    (b"  <html><script>", "a web page, SVG or XML text"),
    (b"just some text", None),
])
def test_a_refused_file_is_named_for_what_it_is(app, head, words):
    with app.test_request_context():
        found = content.what_it_is(head)
        assert (str(found) if found is not None else None) == words


@pytest.mark.parametrize(("sent", "content_type", "shown"), [
    ("../../etc/passwd.pdf", "application/pdf", "passwd.pdf"),
    ("C:\\x\\y.pdf", "application/pdf", "y.pdf"),
    ("/var/www/../../.ssh/authorized_keys", "image/png", "authorized_keys.png"),
    ("..", "application/pdf", "document.pdf"),
    ("bien lai\x00\r\n tháng 11.PDF", "application/pdf", "bien lai tháng 11.PDF"),
    ("ảnh.jpeg", "image/jpeg", "ảnh.jpeg"),
    ("invoice.pdf", "image/png", "invoice.pdf.png"),  # its name said otherwise: the truth added
    ("x" * 400 + ".pdf", "application/pdf", "x" * 196 + ".pdf"),
])
def test_display_name_keeps_only_a_safe_last_part(sent, content_type, shown):
    assert content.display_name(sent, content_type) == shown
