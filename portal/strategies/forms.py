"""The strategy forms (portal.strategies.operations checks what they carry)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import SelectMultipleField

from portal.forms import RawField, SubmittedForm

CONDITION_ROWS = 3


class StrategyForm(SubmittedForm):
    code = RawField(_l("Code"))
    name = RawField(_l("Name"))
    rank = RawField(_l("Precedence"))


class SegmentForm(SubmittedForm):
    name = RawField(_l("Segment name"))
    exit_conditions = SelectMultipleField(_l("Exit conditions"), validate_choice=False)


for _i in range(CONDITION_ROWS):
    setattr(SegmentForm, f"cond_{_i}_field", RawField(_l("Field")))
    setattr(SegmentForm, f"cond_{_i}_op", RawField(_l("Comparison")))
    setattr(SegmentForm, f"cond_{_i}_value", RawField(_l("Value")))


class StepForm(SubmittedForm):
    key = RawField(_l("Keyed by"))
    at_value = RawField(_l("From"))
    action = RawField(_l("Action"))
    template_code = RawField(_l("Template"))
    priority_weight = RawField(_l("Priority weight"))
    team_id = RawField(_l("Team"))


class ChallengerForm(SubmittedForm):
    name = RawField(_l("Challenger name"))
    split_pct = RawField(_l("Share of accounts (%)"))
    weight_delta = RawField(_l("Extra call weight"))
    skip_actions = SelectMultipleField(_l("Actions it skips"), validate_choice=False)


class EmptyForm(SubmittedForm):
    pass
