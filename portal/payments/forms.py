"""The payments pages' forms: resolve a discrepancy with a note, queue a reconciliation,
upload a camt.053/054 file.

CSRF is checked for every POST by ``CSRFProtect``; the form's own check accepts a request
CSRFProtect has validated.
"""

from __future__ import annotations

from datetime import date

from flask import current_app
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired, FileSize
from wtforms.validators import DataRequired, Length

from portal.forms import RawField
from portal.payments.discrepancies import OUTCOMES, RESOLUTION_MAX

NOTE_MESSAGE = _l("Write a note (at most %(max)s characters) saying how it was resolved.",
                  max=RESOLUTION_MAX)
DATE_MESSAGE = _l("The business date must be YYYY-MM-DD.")


def _stripped(raw: str | None) -> str:
    return (raw or "").strip()


def _outcome(raw: str | None) -> str:
    """What the discrepancy becomes; anything else sent counts as resolved."""
    return raw if raw in OUTCOMES else "resolved"


def _business_date(raw: str | None) -> date:
    try:
        return date.fromisoformat(raw or "")
    except ValueError as exc:
        raise ValueError(DATE_MESSAGE) from exc


class _PaymentsForm(FlaskForm):
    def first_error(self) -> str:
        """The message of the first field that did not validate."""
        for messages in self.errors.values():
            if messages:
                return str(messages[0])
        return ""


class ResolutionForm(_PaymentsForm):
    note = RawField(_l("Resolution note"), parse=_stripped, validators=[
        DataRequired(NOTE_MESSAGE), Length(max=RESOLUTION_MAX, message=NOTE_MESSAGE)])
    outcome = RawField(_l("Outcome"), parse=_outcome, default="resolved")


class ReconciliationForm(_PaymentsForm):
    # a date that is missing or not YYYY-MM-DD leaves no data: one message for both
    business_date = RawField(_l("Business date"), parse=_business_date,
                         validators=[DataRequired(DATE_MESSAGE)])


DEFAULT_CAMT_UPLOAD_MAX_BYTES = 3 * 1024 * 1024
CAMT_FILE_MESSAGE = _l("Choose a camt.053 or camt.054 XML file.")


def camt_upload_limit() -> int:
    """The largest camt file the page takes (below MAX_CONTENT_LENGTH, so a larger one is
    answered by the form, not by a bare 413)."""
    return int(current_app.config.get("CAMT_UPLOAD_MAX_BYTES") or DEFAULT_CAMT_UPLOAD_MAX_BYTES)


class CamtUploadForm(_PaymentsForm):
    file = FileField(_l("camt file"), validators=[FileRequired(CAMT_FILE_MESSAGE)])

    def validate_file(self, field) -> None:
        limit = camt_upload_limit()
        FileSize(limit, message=gettext(
            "The file is larger than %(size)s KiB; import it with flask payments import-camt "
            "instead.", size=limit // 1024))(self, field)
