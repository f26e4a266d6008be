"""The field pages' forms: a visit to plan, a supervisor's review of a visit, and a visit's
outcome (the action form).

CSRF is checked for every POST by ``CSRFProtect``; the forms' own check accepts a request it has
validated. The planning service reports what is missing, so a day that cannot be read is
simply no day here.
"""

from __future__ import annotations

from datetime import date

from flask_wtf import FlaskForm
from wtforms.widgets import TextArea

from portal.cases.forms import ActionForm
from portal.forms import RawField, row_id

DECISIONS = ("approve", "reject")


def _stripped(raw: str | None) -> str:
    return (raw or "").strip()


def _day(raw: str | None) -> date | None:
    """A YYYY-MM-DD day, else none chosen (the planning service says a day is needed)."""
    try:
        return date.fromisoformat(raw or "")
    except ValueError:
        return None


class PlanVisitForm(FlaskForm):
    """A visit to plan: the customer, and on the supervisor's map the agent and the day (a field
    agent plans for themselves, today)."""

    cif = RawField("Customer", parse=_stripped, default="")
    agent_id = RawField("Field agent", parse=row_id)
    planned_for = RawField("Day", parse=_day)
    notes = RawField("Notes", widget=TextArea())


class ReviewForm(FlaskForm):
    """A supervisor's decision on a visit that could not be verified, with a note."""

    decision = RawField("Decision")
    note = RawField("Note")

    def decided(self) -> bool:
        """Whether the decision is one of ``DECISIONS`` (else the request is refused)."""
        return self.decision.data in DECISIONS

    def approves(self) -> bool:
        return self.decision.data == "approve"


class VisitOutcomeForm(ActionForm):
    """The action form for a visit's outcome; a refused one comes back with what was typed."""

    def submitted(self) -> dict[str, str]:
        """The text of each field as sent (field name → text), to fill the form again."""
        return {field.name: field.raw_data[0] for field in self
                if getattr(field, "raw_data", None)}
