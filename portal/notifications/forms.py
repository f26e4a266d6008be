"""The inbox's one form: mark all read, keeping the list the user was looking at."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField


class MarkAllReadForm(FlaskForm):
    show = HiddenField(default="all")

    def list_shown(self) -> str:
        return "unread" if self.show.data == "unread" else "all"
