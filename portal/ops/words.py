"""Ops texts made in Python (card reasons, alert titles and details, worker problems) that are
read later in the reader's language.

A :class:`Said` is the English text (a ``str``: logs, tests, the alert webhook and /metrics read
it as before) that also carries its message (portal/notifications/messages.py), rendered in the
page's language by :func:`shown`.
"""

from __future__ import annotations

from portal.notifications.messages import N_, Message, counted, message

__all__ = ["N_", "Said", "said", "said_n", "shown", "shown_json"]


class Said(str):
    """English text that knows its message."""

    message: Message

    def __new__(cls, words: Message) -> Said:
        obj = super().__new__(cls, words.english())
        obj.message = words
        return obj


def said(msgid: str, **params) -> Said:
    return Said(message(msgid, **params))


def said_n(singular: str, plural: str, num: int, **params) -> Said:
    return Said(counted(singular, plural, num, **params))


def shown(value) -> str:
    """``value`` in the reader's language (a :class:`Said`), or as it is (plain text)."""
    if isinstance(value, Said):
        return value.message.render()
    return "" if value is None else str(value)


def shown_json(spec: dict | None, fallback) -> str:
    """A stored message (``Message.to_json()``) in the reader's language, else ``fallback``."""
    if spec:
        try:
            return Message.from_json(spec).render()
        except (KeyError, ValueError, TypeError):
            pass
    return "" if fallback is None else str(fallback)
