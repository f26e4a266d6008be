from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField, SelectMultipleField, StringField
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from portal.permissions.roles import API_SCOPES, PERMISSIONS

EXPIRY_CHOICES = [SelectChoice("", "Never"), SelectChoice("30", "In 30 days"),
                  SelectChoice("90", "In 90 days"), SelectChoice("365", "In one year")]


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class TokenForm(FlaskForm):
    name = StringField(
        "Name", validators=[DataRequired("Give the token a name."), Length(max=100)],
        description="Who or what uses it, e.g. “Phone – Tran Van An” or “Call centre CTI”.",
    )
    user_id = SelectField("Acts as user", coerce=str,
                          description="Leave “System” for an integration that is not a person.")
    scopes = MultiCheckboxField(
        "Scopes",
        choices=[SelectChoice(s, f"{s} — {PERMISSIONS[s].removeprefix('API: ')}")
                 for s in API_SCOPES],
        validators=[DataRequired("Choose at least one scope.")],
    )
    expires_in_days = SelectField("Expires", choices=EXPIRY_CHOICES, default="")
