"""The action form: what a user records on a case (the case view's action form, a visit's
outcome, a call's outcome, a manual call), parsed into ``actions.ActionInput``.

CSRF is checked for every POST by ``CSRFProtect`` (the token comes in the ``X-CSRFToken``
header HTMX sends); the form's own check accepts a request CSRFProtect has validated.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import Field
from wtforms.widgets import TextArea, TextInput

from portal.cases import actions

# field -> the key its error is shown under (the promise's own names for the promise fields,
# as the promises service reports them)
ERROR_KEYS = {"promise_amount": "amount", "promise_date": "promised_date"}


class _Raw(Field):
    """The submitted text as sent (None when absent), or its value parsed by ``parse``
    (a ValueError's message is the field's error)."""

    widget = TextInput()

    def __init__(self, label=None, validators=None, parse=None, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.parse = parse

    def process_formdata(self, valuelist):
        raw = valuelist[0] if valuelist else None
        self.data = self.parse(raw) if self.parse is not None else raw

    def _value(self):
        return "" if self.data is None else str(self.data)


def _id(raw: str | None) -> int | None:
    """A row id chosen in a select: digits, else nothing chosen."""
    return int(raw) if raw and raw.isdigit() else None


def _text_or_none(raw: str | None) -> str | None:
    return raw or None


class ActionForm(FlaskForm):
    action_code_id = _Raw("Result", parse=_id)
    account_number = _Raw("Account", parse=_text_or_none)
    phone_id = _Raw("Number", parse=_id)
    notes = _Raw("Notes", widget=TextArea())
    follow_up_date = _Raw("Follow-up date", parse=actions.parse_date)
    promise_amount = _Raw("Promised amount", parse=actions.parse_decimal)
    promise_date = _Raw("Promised date", parse=actions.parse_date)

    def action_input(self) -> tuple[actions.ActionInput, dict[str, str]]:
        """The action as submitted, and the errors of the fields that could not be read
        (field key → message, as the form templates show them)."""
        self.validate()
        errors = {ERROR_KEYS.get(name, name): messages[0]
                  for name, messages in self.errors.items() if messages}
        data = actions.ActionInput(
            action_code_id=self.action_code_id.data, account_number=self.account_number.data,
            phone_id=self.phone_id.data, notes=self.notes.data,
            follow_up_date=self.follow_up_date.data, promise_amount=self.promise_amount.data,
            promise_date=self.promise_date.data)
        return data, errors
