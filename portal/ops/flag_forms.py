"""The form that switches one feature flag (the ops page's Feature flags page)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField
from wtforms.fields import SelectChoice
from wtforms.validators import InputRequired, ValidationError

from portal.admin.forms import MultiCheckboxField

MODE_LABELS = {
    "all": _l("On for everyone"),
    "teams": _l("On for the chosen teams only"),
    "off": _l("Off for everyone"),
}


class FlagForm(FlaskForm):
    mode = RadioField(_l("State"), choices=[SelectChoice(k, v) for k, v in MODE_LABELS.items()],
                      validators=[InputRequired(_l("Choose a state."))])
    teams = MultiCheckboxField(_l("Teams"), coerce=int, choices=[])

    def __init__(self, *args, teams=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.teams.choices = [SelectChoice(team.id, team.name) for team in teams]

    def validate_teams(self, field):
        if self.mode.data == "teams" and not field.data:
            raise ValidationError(_l("Choose at least one team, or another state."))
