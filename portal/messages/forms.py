"""The message forms (portal.messages operations check what they carry)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms.widgets import TextArea

from portal.forms import RawField, SubmittedForm, row_id


def _checked(raw: str | None) -> bool:
    return raw in ("1", "true", "on", "y")


class TemplateForm(SubmittedForm):
    code = RawField(_l("Code"))
    channel = RawField(_l("Channel"))
    name = RawField(_l("Name"))
    subject_vi = RawField(_l("Subject (Vietnamese)"))
    subject_en = RawField(_l("Subject (English)"))
    body_vi = RawField(_l("Text (Vietnamese)"), widget=TextArea())
    body_en = RawField(_l("Text (English)"), widget=TextArea())
    include_vietqr = RawField(_l("Include a VietQR pay link"), parse=_checked)
    preview_account = RawField(_l("Preview with account"))


class SendForm(SubmittedForm):
    template_id = RawField(_l("Template"), parse=row_id)
    account_number = RawField(_l("Account"))
    contact_point = RawField(_l("Send to"))  # "<channel>:<id>" (views._point_choice)
    language = RawField(_l("Language"))
