"""What a file is, read from its first bytes (never from its name or the browser's word), and
the name it may be shown under.

``sniff`` answers one of the types a document may be (PDF, JPEG, PNG, WebP, HEIC) or None;
``what_it_is`` names what a refused file looks like (a Windows program, a script …) so the
refusal says so. ``display_name`` keeps only the last part of whatever path a browser sent,
without control characters: it is shown and offered as a download name, never used to find
the file (the store's key is generated, portal/documents/storage.py).
"""

from __future__ import annotations

import re
import unicodedata

from flask_babel import lazy_gettext as _l

# bytes read to decide (HEIC's brand is at 8–12, WebP's at 8–12)
HEAD_BYTES = 32

EXTENSIONS = {
    "application/pdf": ".pdf", "image/jpeg": ".jpg", "image/png": ".png",
    "image/webp": ".webp", "image/heic": ".heic",
}
IMAGE_TYPES = frozenset(t for t in EXTENSIONS if t.startswith("image/"))
# what a browser can show in a tab (HEIC: downloaded only)
INLINE_TYPES = frozenset({"application/pdf", "image/jpeg", "image/png", "image/webp"})
HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
ALLOWED_WORDS = _l("a PDF, JPEG, PNG, WebP or HEIC file")

# first bytes of files that are refused, and what they are
REFUSED_SIGNATURES: tuple[tuple[bytes, object], ...] = (
    (b"MZ", _l("a Windows program (.exe or .dll)")),
    (b"\x7fELF", _l("a Linux program")),
    (b"\xcf\xfa\xed\xfe", _l("a macOS program")),
    (b"\xca\xfe\xba\xbe", _l("a macOS or Java program")),
    (b"#!", _l("a script")),
    (b"PK\x03\x04", _l("a ZIP archive (or an Office document)")),
    (b"Rar!", _l("a RAR archive")),
    (b"7z\xbc\xaf", _l("a 7-Zip archive")),
    (b"\xd0\xcf\x11\xe0", _l("an old Office document")),
    (b"GIF8", _l("a GIF image")),
)
MARKUP = re.compile(rb"^\s*<")
NAME_MAX = 200


def sniff(head: bytes) -> str | None:
    """The content type of a file starting with ``head``, if it is one a document may be."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp" and head[8:12] in HEIC_BRANDS:
        return "image/heic"
    return None


def what_it_is(head: bytes):
    """Words for what a refused file is (its first bytes say), or None when unknown."""
    for signature, words in REFUSED_SIGNATURES:
        if head.startswith(signature):
            return words
    if MARKUP.match(head):
        return _l("a web page, SVG or XML text")
    return None


CONTROL = re.compile(r"[\x00-\x1f\x7f]")
DRIVE = re.compile(r"^[A-Za-z]:")  # what is left of "C:\x\y.pdf" once a parser ate the backslashes


def base_name(raw: str | None) -> str:
    """The last path part (either slash) of a sent file name, without control characters,
    leading dots or surrounding blanks ("" when nothing is left)."""
    name = unicodedata.normalize("NFC", raw or "")
    name = re.split(r"[\\/]", name)[-1]
    name = DRIVE.sub("", CONTROL.sub("", name)).replace('"', "")
    return name.strip().lstrip(".").strip()[:NAME_MAX]


def display_name(raw: str | None, content_type: str) -> str:
    """A safe name to show for a file sent as ``raw``: its last path part (either slash),
    without control characters, leading dots or surrounding blanks, at most ``NAME_MAX``
    characters, ending with the extension of what it really is."""
    name = base_name(raw)
    extension = EXTENSIONS[content_type]
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    if f".{ext.lower()}" not in (extension, ".jpeg" if extension == ".jpg" else extension):
        stem = name  # a name that says it is something else keeps that, and gets the truth
        ext = extension.lstrip(".")
    stem = stem.strip() or "document"
    return stem[:NAME_MAX - len(ext) - 1] + "." + ext
