"""Administration: users, API tokens, action codes, contact rules."""

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from portal.admin import action_codes, contact_rules, views  # noqa: E402,F401
