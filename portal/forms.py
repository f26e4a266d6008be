"""What every feature's Flask-WTF forms are built from.

CSRF is checked for every POST by ``CSRFProtect`` (the token comes in the form or in the
``X-CSRFToken`` header HTMX sends); a form's own check accepts a request CSRFProtect has
validated.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import Field
from wtforms.widgets import TextInput


class RawField(Field):
    """The submitted text as sent (None when absent), or its value parsed by ``parse``
    (a ValueError's message is the field's error). The operations validate what they are
    given, so one rule stays in one place."""

    widget = TextInput()

    def __init__(self, label=None, validators=None, parse=None, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.parse = parse

    def process_formdata(self, valuelist):
        raw = str(valuelist[0]) if valuelist else None  # a JSON body's numbers are not text
        self.data = self.parse(raw) if self.parse is not None else raw

    def _value(self):
        return "" if self.data is None else str(self.data)


def row_id(raw: str | None) -> int | None:
    """A row id chosen in a select: digits, else nothing chosen."""
    return int(raw) if raw and raw.isdecimal() else None


def text_or_none(raw: str | None) -> str | None:
    """The text, or None for an empty field."""
    return raw or None


class SubmittedForm(FlaskForm):
    """A form whose submitted text can be shown again (a form re-rendered with its errors) or
    handed to an operation that validates a mapping."""

    def submitted(self) -> dict[str, str]:
        return {name: field.raw_data[0] for name, field in self._fields.items()
                if name != "csrf_token" and field.raw_data}
