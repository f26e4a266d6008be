from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import SelectField, SelectMultipleField, StringField
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from portal.permissions.roles import API_SCOPES, PERMISSIONS

EXPIRY_CHOICES = [SelectChoice("", _l("Never")), SelectChoice("30", _l("In 30 days")),
                  SelectChoice("90", _l("In 90 days")), SelectChoice("365", _l("In one year"))]

# What each API scope allows, in the reader's language (portal/permissions/roles.py keeps the
# English, read by the CLI and the API's documents).
SCOPE_DESCRIPTIONS = {
    "api.profile": _l("read the calling principal (GET /api/v1/me)"),
    "api.locations": _l("post GPS positions of a field agent"),
    "api.visits": _l("read the visit plan and check in at visits"),
    "api.cases": _l("read cases and customers"),
    "api.calls": _l("call-centre events and click-to-call"),
    "api.integrations": _l("read integration health and trigger runs"),
}


def scope_choice(scope: str) -> SelectChoice:
    """A scope's checkbox: its identifier (not the portal's words) and what it allows."""
    words = SCOPE_DESCRIPTIONS.get(scope) or PERMISSIONS[scope].removeprefix("API: ")
    return SelectChoice(scope, Markup('<span class="mono" translate="no">%s</span> — %s')
                        % (scope, words))


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class TokenForm(FlaskForm):
    name = StringField(
        _l("Name"), validators=[DataRequired(_l("Give the token a name.")), Length(max=100)],
        description=_l("Who or what uses it, e.g. “Phone – Nguyễn Văn An” or “Call centre "
                       "CTI”."),
    )
    user_id = SelectField(_l("Acts as user"), coerce=str,
                          description=_l("Leave “System” for an integration that is not a "
                                         "person."))
    scopes = MultiCheckboxField(
        _l("Scopes"), choices=[],
        validators=[DataRequired(_l("Choose at least one scope."))],
    )
    expires_in_days = SelectField(_l("Expires"), choices=EXPIRY_CHOICES, default="")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # built per form: the descriptions are in the language of the request
        self.scopes.choices = [scope_choice(s) for s in API_SCOPES]
