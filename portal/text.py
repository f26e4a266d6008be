"""Text PostgreSQL can store: no NUL character and no lone UTF-16 surrogate (JSON can carry both
as ``\\u0000`` / ``\\ud800``; a text or JSONB column refuses them). One place for the rule, used
by every boundary that takes text from outside (webhooks, the field API, bank files)."""

from __future__ import annotations


def storable(text: str) -> bool:
    """Whether a text or JSONB column can hold ``text``."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(text: str) -> str:
    """``text`` made storable (NUL and lone surrogates replaced): for keys and raw payloads kept
    for people to read beside a refused or quarantined record."""
    if text.isascii() and "\x00" not in text:
        return text
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def first_unstorable(value) -> str | None:
    """The path (``data.name``, ``items[2]``) of the first string or key in a decoded JSON value
    that is not storable; ``"body"`` for the value itself; None when every string is fine.
    Iterative: the value may nest as deep as the JSON decoder allows."""
    stack = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, dict):
            for key, inner in item.items():
                if not storable(str(key)):
                    return path or "body"
                stack.append((f"{path}.{key}" if path else str(key), inner))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", inner) for i, inner in enumerate(item))
        elif isinstance(item, str) and not storable(item):
            return path or "body"
    return None
