"""Every string a person reads has its Vietnamese words (issue 21).

The strings marked for translation in portal/ and templates/ are collected exactly as
``make messages`` collects them (portal/translations/babel.cfg, the same keywords); each must
be in portal/translations/vi/LC_MESSAGES/messages.po with a translation that is not empty, not
fuzzy, and keeps the original's placeholders (``%(name)s``). A string added to a page without
its Vietnamese fails here, naming the string and where it is."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "portal" / "translations" / "vi" / "LC_MESSAGES" / "messages.po"
METHODS = [("portal/**.py", "python"), ("templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None,
            "pgettext": ((1, "c"), 2), "npgettext": ((1, "c"), 2, 3),
            "lazy_pgettext": ((1, "c"), 2)}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def extracted() -> dict[tuple[str | None, str], str]:
    """(context, msgid) → where it is used (the first place), as ``make messages`` collects
    them."""
    found: dict[tuple[str | None, str], str] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
            str(ROOT), method_map=METHODS, keywords=KEYWORDS):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.setdefault((context, msgid), f"{filename}:{lineno}")
    return found


def catalogue():
    with CATALOGUE.open("rb") as handle:
        return read_po(handle, locale="vi")


def test_the_portal_marks_its_strings():
    # the collection itself works: without it the test below would pass on nothing
    strings = extracted()
    assert (None, "Sign in") in strings and (None, "Work queue") in strings
    assert strings[(None, "Sign in")].startswith(("templates/", "portal/"))
    assert ("code", "Home") in strings  # a code's label, apart from the page called Home


def test_every_string_shown_has_its_vietnamese():
    translations = {}
    for message in catalogue():
        if not message.id:
            continue
        msgid = message.id[0] if isinstance(message.id, tuple) else message.id
        text = message.string[0] if isinstance(message.string, tuple) else message.string
        translations[(message.context, msgid)] = "" if message.fuzzy else (text or "")
    problems = []
    for (context, msgid), where in sorted(extracted().items(), key=lambda item: item[1]):
        text = translations.get((context, msgid))
        if not text:
            problems.append(f"{where}: no Vietnamese for {msgid!r}")
        elif set(PLACEHOLDER.findall(text)) != set(PLACEHOLDER.findall(msgid)):
            problems.append(f"{where}: the Vietnamese of {msgid!r} changes its placeholders")
    assert not problems, f"{len(problems)} strings (run `make messages`, then translate):\n" + \
        "\n".join(problems[:80])
