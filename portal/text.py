"""Text rules, one place each.

- Text PostgreSQL can store: no NUL character and no lone UTF-16 surrogate (JSON can carry both
  as ``\\u0000`` / ``\\ud800``; a text or JSONB column refuses them). Used by every boundary
  that takes text from outside (webhooks, the field API, bank files).
- Masks of personal data for readers without ``customers.view_pii`` (pages, API, messages):
  phone numbers keep their last 3 digits, national ids their last 4.
"""

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


def mask_phone(number: str | None) -> str:
    """"0912345678" → "•••••••678", "0912 345 678" → "•••• ••• 678", "+84912345678" →
    "+••••••••678": every digit but the last 3 (so agents can tell numbers apart) is hidden,
    the number's spacing and sign stay."""
    if not number:
        return ""
    shown = 3
    masked = []
    for char in reversed(number):
        if char.isdigit():
            masked.append(char if shown > 0 else "•")
            shown -= 1
        else:
            masked.append(char)
    return "".join(reversed(masked))


def mask_national_id(value: str | None) -> str:
    if not value:
        return ""
    return "•" * max(0, len(value) - 4) + value[-4:]
