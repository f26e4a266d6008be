"""Notification texts in the reader's language.

A notification is written once (often by a worker, in no one's language) and read later by a
person who reads the portal in Vietnamese or English. So its words are stored as a *message*:
an English msgid marked for translation (``N_``, one of pybabel's default keywords) and its
parameters, as JSON in ``notifications.message`` ({"title": …, "body": …}). The page renders
the message in the reader's language when it shows it: money, dates and code labels too, since
parameters keep their kind (:func:`money`, :func:`day`, :func:`code`, a nested message, a list).

The English text is stored as well (``title``, ``body``): rows written before messages existed
have only that, and they are shown as they are; searches, logs and tests read it.

Counts: :func:`counted` keeps both English forms and picks one by the English rule when shown;
each form has its own catalogue entry (Vietnamese has one form: both get the same words).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from flask import has_app_context
from flask_babel import force_locale, gettext

from portal.i18n import format_date, format_datetime
from portal.labels import label
from portal.money import format_money


def N_(msgid: str) -> str:  # noqa: N802 - the keyword pybabel extracts
    """Mark ``msgid`` for the catalogue; translated later, when a page shows it."""
    return msgid


@dataclass(frozen=True)
class Message:
    """Words to show later: ``msgid`` % its rendered ``params``."""

    msgid: str
    params: dict = field(default_factory=dict)
    plural: str | None = None  # the English plural form, for a counted message
    num: int | None = None

    def to_json(self) -> dict:
        data = {"id": self.msgid, "params": {k: _param_json(v) for k, v in self.params.items()}}
        if self.plural is not None:
            data["plural"], data["num"] = self.plural, self.num
        return data

    @classmethod
    def from_json(cls, data: dict) -> Message:
        return cls(data["id"], dict(data.get("params") or {}), data.get("plural"),
                   data.get("num"))

    def render(self) -> str:
        """In the language of the page (or of the context: a worker's default)."""
        msgid = self.msgid if self.plural is None or self.num == 1 else self.plural
        params = {k: _render_param(_param_json(v)) for k, v in self.params.items()}
        if self.num is not None:
            params.setdefault("num", self.num)
        return gettext(msgid, **params)

    def english(self) -> str:
        """The English text, stored with the message."""
        if not has_app_context():
            return self.render()
        with force_locale("en"):
            return self.render()


def message(msgid: str, **params) -> Message:
    return Message(msgid, params)


def counted(singular: str, plural: str, num: int, **params) -> Message:
    """A message about ``num`` things (``%(num)d`` in both forms)."""
    return Message(singular, params, plural, int(num))


# -- parameters that are shown in the reader's formats ------------------------------------------


def money(amount, currency: str | None = "VND") -> dict:
    return {"money": str(amount), "currency": currency or "VND"}


def day(value: date | str) -> dict:
    return {"date": value if isinstance(value, str) else value.isoformat()}


def moment(value: datetime, fmt: str = "%d/%m/%Y %H:%M") -> dict:
    """A timestamp shown in the bank's zone with ``fmt`` (strftime directives)."""
    return {"datetime": value.isoformat(), "format": fmt}


def code(value: str, kind: str | None = None) -> dict:
    """A code shown by its label (portal/labels.py)."""
    return {"label": value, "kind": kind}


def listing(*items) -> dict:
    """Several parameters shown one after the other, separated by commas."""
    return {"list": [_param_json(i) for i in items]}


def _param_json(value):
    if isinstance(value, Message):
        return {"msg": value.to_json()}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return day(value) if not isinstance(value, datetime) else moment(value)
    return value


def _render_param(value):
    if not isinstance(value, dict):
        return value
    if "msg" in value:
        return Message.from_json(value["msg"]).render()
    if "money" in value:
        return format_money(value["money"], value.get("currency"))
    if "date" in value:
        return format_date(date.fromisoformat(value["date"][:10]))
    if "datetime" in value:
        return format_datetime(datetime.fromisoformat(value["datetime"]),
                               value.get("format") or "%d/%m/%Y %H:%M")
    if "label" in value:
        return label(value["label"], value.get("kind"))
    if "list" in value:
        return ", ".join(str(_render_param(item)) for item in value["list"])
    return str(value)


# -- stored rows ----------------------------------------------------------------------------------


def stored(title: str | Message, body: str | Message | None) -> tuple[str, str | None, dict | None]:
    """(English title, English body, the message JSON or None) for a notification row."""
    words = {}
    if isinstance(title, Message):
        words["title"] = title.to_json()
        title = title.english()
    if isinstance(body, Message):
        words["body"] = body.to_json()
        body = body.english()
    return title, body, words or None


def shown(notification, part: str) -> str | None:
    """The notification's ``part`` ("title" or "body") in the reader's language: its message
    when it has one, else the English stored with it (rows written before messages)."""
    spec = (notification.message or {}).get(part)
    if spec:
        try:
            return Message.from_json(spec).render()
        except (KeyError, ValueError, TypeError):  # a message this code no longer reads
            pass
    return getattr(notification, part)
