from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import DateField, SelectField, SelectMultipleField, StringField
from wtforms.fields import SelectChoice
from wtforms.validators import (
    DataRequired,
    Email,
    Length,
    Optional,
    Regexp,
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget

from portal.i18n import LANGUAGES
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


# --- users, teams and the audit log ------------------------------------------------------------

USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{2,63}$"


def _blank_to_none(value):
    return value.strip() if isinstance(value, str) and value.strip() else None


def _optional_int(value):
    return int(value) if value not in (None, "", "None") else None


class UserDetailsForm(FlaskForm):
    full_name = StringField(_l("Full name"), validators=[
        DataRequired(_l("Enter the person's full name.")), Length(max=200)])
    email = StringField(_l("E-mail"), filters=[_blank_to_none], validators=[
        Optional(), Email(_l("Enter an e-mail address such as an.nguyen@bank.vn.")),
        Length(max=254)])
    role = SelectField(_l("Role"), choices=[], validate_choice=True)
    team_id = SelectField(_l("Team"), choices=[], coerce=_optional_int, validate_choice=True)
    cti_agent_id = StringField(_l("Call-centre id"), filters=[_blank_to_none],
                               validators=[Optional(), Length(max=64)],
                               description=_l("The agent's id in the call-centre system, for "
                                              "click-to-call and call events."))
    phone_extension = StringField(_l("Phone extension"), filters=[_blank_to_none],
                                  validators=[Optional(), Length(max=20)])
    region = StringField(_l("Region"), filters=[_blank_to_none],
                         validators=[Optional(), Length(max=100)])
    language = SelectField(_l("Language"), coerce=lambda v: v or None,
                           choices=[SelectChoice("", _l("The portal's default"))] + [
                               SelectChoice(code, name, render_kw={"lang": code})
                               for code, name in LANGUAGES.items()],
                           description=_l("The language the portal is shown in to this person; "
                                          "they can change it from their account menu."))


class NewUserForm(UserDetailsForm):
    username = StringField(
        _l("Username"), filters=[lambda v: (v or "").strip().lower()],
        validators=[DataRequired(_l("Enter a username.")),
                    Regexp(USERNAME_PATTERN, message=_l(
                        "3 to 64 characters: lower-case letters, digits, dot, dash or "
                        "underscore, starting with a letter or digit."))],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
        description=_l("Used to sign in; it cannot be changed later."))


class ConfirmForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


class TeamForm(FlaskForm):
    name = StringField(_l("Team name"), validators=[
        DataRequired(_l("Give the team a name.")), Length(max=100)])
    region = StringField(_l("Region"), filters=[_blank_to_none],
                         validators=[Optional(), Length(max=100)])
    supervisor_id = SelectField(_l("Supervisor"), choices=[], coerce=_optional_int,
                                validate_choice=True)
    member_ids = MultiCheckboxField(_l("Members"), choices=[], coerce=int,
                                    validate_choice=True)


class AuditFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a search (GET): it changes nothing

    # a username: what they changed, and what was changed about them
    user = StringField(_l("Username"), filters=[lambda v: (v or "").strip()],
                       validators=[Optional(), Length(max=64)],
                       render_kw={"spellcheck": "false"})
    cif = StringField(_l("Customer (CIF)"), filters=[lambda v: (v or "").strip().upper()],
                      validators=[Optional(), Length(max=32)],
                      render_kw={"spellcheck": "false"})
    action = SelectField(_l("Kind of change"), choices=[], validate_choice=False)
    date_from = DateField(_l("From date"), validators=[Optional()])
    date_to = DateField(_l("To date"), validators=[Optional()])

    def validate_date_to(self, field):
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError(_l("The end date is before the start date."))
