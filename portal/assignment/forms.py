"""The assignment forms: the case filter (the page's query string, and the bulk form's hidden
copy of it), the bulk reassignment, the automatic distribution, and the CSV upload and apply.

CSRF is checked for every POST by ``CSRFProtect`` (the token comes in the form or in the
``X-CSRFToken`` header HTMX sends); the form's own check accepts a request CSRFProtect has
validated. The filter read from a GET's query string has no token and needs none.
"""

from __future__ import annotations

from flask_babel import gettext as _
from flask_wtf import FlaskForm
from werkzeug.datastructures import FileStorage
from wtforms import Field, ValidationError
from wtforms.widgets import FileInput, TextArea

from portal.assignment.operations import ROLE_COLUMNS, CaseFilter
from portal.forms import RawField
from portal.models.enums import BUCKET_NAMES

MAX_UPLOAD_BYTES = 2 * 1024 * 1024
REASON_MAX = 200  # case_assignments.reason


class _Ids(Field):
    """Every submitted value that is a row id, in order (anything else is ignored)."""

    def process_formdata(self, valuelist):
        self.data = [int(raw) for raw in map(str, valuelist) if raw.isdecimal()]


class _UploadedText(Field):
    """The text of the uploaded file (None when no file was chosen): UTF-8 (a BOM is dropped),
    at most ``MAX_UPLOAD_BYTES``."""

    widget = FileInput()

    def process_formdata(self, valuelist):
        upload = next((value for value in valuelist if isinstance(value, FileStorage)), None)
        if upload is None or not upload.filename:
            return
        data = upload.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise ValueError(_("The file is larger than 2 MB."))
        try:
            self.data = data.decode("utf-8-sig")
        except UnicodeDecodeError:  # a ValueError too, but its message names only the codec
            raise ValueError(_("The file is not UTF-8 text.")) from None


def _id(raw: str | None) -> int | None:
    """A row id or a count: digits, else nothing chosen."""
    return int(raw) if raw and raw.isdecimal() else None


def _role(raw: str | None) -> str:
    """The queue acted on: call agents unless field agents were asked for."""
    return raw if raw in ROLE_COLUMNS else "agent"


def _agent(raw: str | None) -> int | None:
    """The agent holding the cases: 0 stands for nobody (unassigned cases)."""
    return 0 if raw == "none" else _id(raw)


def _bucket(raw: str | None) -> str | None:
    return raw if raw in BUCKET_NAMES else None


def _reason(raw: str | None) -> str | None:
    return (raw or "").strip() or None


def _strategy(raw: str | None) -> str:
    """As sent (the operation refuses one it does not know); balance when not sent."""
    return "balance" if raw is None else raw


def _text(raw: str | None) -> str:
    return raw or ""


def _ticked(raw: str | None) -> bool:
    return raw == "1"


class _Form(FlaskForm):
    """The assignment pages show one error, in an alert above the forms (no field errors)."""

    def first_error(self) -> str | None:
        """The message of the first field in error, in the order the form shows them."""
        return next((messages[0] for messages in self.errors.values() if messages), None)


class CaseFilterForm(_Form):
    """The cases the page lists and the bulk reassignment acts on."""

    role = RawField("Queue", parse=_role, default="agent")
    team = RawField("Team", parse=_id)
    agent = RawField("Currently with", parse=_agent)
    bucket = RawField("Bucket", parse=_bucket)

    def case_filter(self) -> CaseFilter:
        return CaseFilter(role=self.role.data, agent_id=self.agent.data,
                          team_id=self.team.data, bucket=self.bucket.data)


def filter_from_query(args) -> CaseFilter:
    """The filter of the page's query string (a GET: no CSRF token to check)."""
    return CaseFilterForm(args, meta={"csrf": False}).case_filter()


class BulkAssignForm(CaseFilterForm):
    """Reassign the ticked cases, or every case matching the filter, to one agent or nobody."""

    target = RawField("Give to")
    case_id = _Ids("Cases", default=())
    scope = RawField("Which cases")
    reason = RawField("Reason", parse=_reason)

    def validate_target(self, field):
        if field.data != "none" and _id(field.data) is None:
            raise ValidationError(_("Choose the agent who takes the cases."))

    def validate_case_id(self, field):
        if not self.every_matching_case() and not field.data:
            raise ValidationError(_("Tick the cases to reassign, or choose all matching cases."))

    def every_matching_case(self) -> bool:
        return self.scope.data == "all"

    def agent_id(self) -> int | None:
        """The agent who takes the cases (None: unassign them)."""
        return None if self.target.data == "none" else _id(self.target.data)

    def case_ids(self) -> list[int] | None:
        """The ticked cases (None: every case matching the filter)."""
        return None if self.every_matching_case() else list(self.case_id.data)


class AutoDistributeForm(_Form):
    """Deal the unassigned open cases out to one team's call or field agents."""

    team = RawField("Team", parse=_id)
    role = RawField("To", parse=_role, default="agent")
    strategy = RawField("Rule (call agents)", parse=_strategy, default="balance")
    limit = RawField("At most", parse=_id)

    def validate_team(self, field):
        if field.data is None:
            raise ValidationError(_("Choose the team to distribute to."))


class CsvUploadForm(_Form):
    """The CSV to check: an uploaded file, else the text re-posted in ``content``."""

    file = _UploadedText("CSV file")
    content = RawField("CSV", widget=TextArea())

    def csv_text(self) -> tuple[str, str | None]:
        """The CSV's text, or why there is none to check."""
        self.validate()
        if self.file.errors:
            return "", self.file.errors[0]
        content = self.file.data if self.file.data is not None else self.content.data or ""
        if not content.strip():
            return "", _("Choose a CSV file (columns cif,agent).")
        return content, None


class CsvApplyForm(_Form):
    """Apply a checked CSV (re-posted as text), all of it or only its valid lines."""

    content = RawField("CSV", widget=TextArea(), parse=_text, default="")
    skip_invalid = RawField("Apply the valid lines only", parse=_ticked, default=False)


class CaseReassignForm(FlaskForm):
    """Reassign one case from the case view to an agent of the supervisor's teams (a call
    agent takes its call side, a field agent its field side), with a reason (errors per field,
    shown next to it)."""

    agent = RawField("Give to", parse=_id)
    reason = RawField("Reason", parse=_reason)

    def validate_agent(self, field):
        if field.data is None:
            raise ValidationError(_("Choose the agent who takes the case."))

    def validate_reason(self, field):
        if field.data is None:
            raise ValidationError(_("Say why the case is reassigned."))
        if len(field.data) > REASON_MAX:
            raise ValidationError(_("At most %(num)d characters.", num=REASON_MAX))

    def field_errors(self) -> dict[str, str]:
        return {name: messages[0] for name, messages in self.errors.items() if messages}
