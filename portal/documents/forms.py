"""The documents' forms (Flask-WTF): a document to upload from the case view, and a photo
from a visit check-in. The operations check what they are given (portal/documents/operations.py),
so each rule stays in one place."""

from __future__ import annotations

from flask_wtf.file import FileField

from portal.forms import RawField, SubmittedForm


class DocumentForm(SubmittedForm):
    """A document for the customer: the file, its kind and, if it concerns one, the account."""

    file = FileField("File")
    kind = RawField("Kind")
    account = RawField("Account")

    def upload(self):
        """(stream, sent name) of the chosen file, or (None, None) when none was sent."""
        data = self.file.data
        if data is None or not getattr(data, "filename", None):
            return None, None
        return data.stream, data.filename


class VisitPhotoForm(DocumentForm):
    """A photo taken at a visit check-in (its kind is always "visit photo")."""
