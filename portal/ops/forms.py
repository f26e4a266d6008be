"""The ops actions' forms: each carries ``next`` (the page the action returns to); pausing,
resuming and forcing a breaker carry the audited reason.

CSRF is checked for every POST by ``CSRFProtect`` (the token comes in the form or the
``X-CSRFToken`` header HTMX sends); the form's own check accepts a request CSRFProtect has
validated.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms.validators import AnyOf

from integrations import control
from portal.forms import RawField, row_id, text_or_none
from portal.ops.owner_moves import DECISIONS
from portal.queues import QUEUES


class ReturnForm(FlaskForm):
    """An action without data of its own: where to go back to (kept to the same site by the
    view)."""

    next = RawField("Return to")

    def first_error(self) -> str:
        """The message of the first field that did not validate."""
        for messages in self.errors.values():
            if messages:
                return messages[0]
        return ""


class ReasonForm(ReturnForm):
    """Pause or resume an integration; the reason goes into the audit row as sent."""

    reason = RawField("Reason")


class BreakerForm(ReasonForm):
    state = RawField("State", validators=[
        AnyOf(control.BREAKER_STATES, message="state must be open, closed or half_open")])


class RequeueForm(ReturnForm):
    """Requeue the failed jobs of a queue, or the one job ``job_id``."""

    queue = RawField("Queue", validators=[AnyOf(QUEUES, message="unknown queue")])
    job_id = RawField("Job", parse=text_or_none)


class MoveDecisionForm(ReturnForm):
    """Apply or reject the product moves a sync run held: one (``move``) or all of them."""

    decision = RawField("Decision", validators=[
        AnyOf(DECISIONS, message="choose apply or reject")])
    move = RawField("Move", parse=row_id)
