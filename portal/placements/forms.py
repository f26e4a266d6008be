"""The placement forms (portal.placements.operations checks what they carry)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms.widgets import TextArea

from portal.cases.actions import parse_date
from portal.forms import RawField, SubmittedForm, row_id


class PlaceForm(SubmittedForm):
    agency_id = RawField(_l("Agency"), parse=row_id)
    expected_return_on = RawField(_l("Expected return"), parse=parse_date)
    reason = RawField(_l("Reason"), widget=TextArea())


class EndForm(SubmittedForm):
    placement_id = RawField("Placement", parse=row_id)
    outcome = RawField(_l("Outcome"))
    end_reason = RawField(_l("Reason"), widget=TextArea())


class AgencyForm(SubmittedForm):
    code = RawField(_l("Code"))
    name = RawField(_l("Name"))
    kind = RawField(_l("Kind"))
    contact = RawField(_l("Contact"))
