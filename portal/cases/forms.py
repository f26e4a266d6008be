"""The action form: what a user records on a case (the case view's action form, a visit's
outcome, a call's outcome, a manual call), parsed into ``actions.ActionInput``.

The fields and the base form are portal/forms.py's.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms.widgets import TextArea

from portal.cases import actions
from portal.forms import RawField, SubmittedForm, row_id, text_or_none

# field -> the key its error is shown under (the promise's own names for the promise fields,
# as the promises service reports them)
ERROR_KEYS = {"promise_amount": "amount", "promise_date": "promised_date"}


def _checked(raw: str | None) -> bool:
    return raw in ("1", "true", "on")


class ActionForm(SubmittedForm):
    action_code_id = RawField(_l("Result"), parse=row_id)
    account_number = RawField(_l("Account"), parse=text_or_none)
    phone_id = RawField(_l("Number"), parse=row_id)
    notes = RawField(_l("Notes"), widget=TextArea())
    follow_up_date = RawField(_l("Follow-up date"), parse=actions.parse_date)
    promise_amount = RawField(_l("Promised amount"), parse=actions.parse_decimal)
    promise_date = RawField(_l("Promised date"), parse=actions.parse_date)
    # ticked after the form said a promise is already pending: the new one supersedes it
    replace_pending = RawField(_l("Replace the pending promise"), parse=_checked)

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
            promise_date=self.promise_date.data,
            replace_pending=bool(self.replace_pending.data))
        return data, errors


class ContactForm(SubmittedForm):
    """A phone, address or e-mail of the customer (contacts.clean checks it for its kind)."""

    type = RawField(_l("Type"))
    number = RawField(_l("Number"))
    line1 = RawField(_l("Street"))
    line2 = RawField(_l("Line 2"))
    ward = RawField(_l("Ward"))
    district = RawField(_l("District"))
    city = RawField(_l("City"))
    province = RawField(_l("Province"))
    address = RawField(_l("E-mail"))
    notes = RawField(_l("Notes"), widget=TextArea())
    is_primary = RawField(_l("Primary"))


class ContactFlagForm(SubmittedForm):
    flag = RawField("Flag")
    value = RawField("Value", parse=_checked)


class StatusForm(SubmittedForm):
    """A status an agent sets on a case (cases.statuses.set_status checks it)."""

    value_id = RawField(_l("Value"), parse=row_id)
    substate_id = RawField(_l("Substate"), parse=row_id)
    reason = RawField(_l("Reason"), widget=TextArea())


class MasterNoteForm(SubmittedForm):
    """The customer's master note (cases.statuses.save_master_note checks it)."""

    note = RawField(_l("Master note"), widget=TextArea())


class ReferenceForm(SubmittedForm):
    """A reference person of the customer (cases.references.clean checks it)."""

    relationship_type = RawField(_l("Relationship"))
    name = RawField(_l("Full name"))
    national_id = RawField(_l("ID number"))


class PlanForm(SubmittedForm):
    """A payment plan (cases.plans.create_plan checks it); the instalments' ``due_date`` and
    ``amount`` come as repeated fields, read by the view in order."""

    instalments = RawField(_l("Number of instalments"), parse=row_id)
    reason = RawField(_l("Reason"), widget=TextArea())


class PlanCancelForm(SubmittedForm):
    cancel_reason = RawField(_l("Reason"), widget=TextArea())
