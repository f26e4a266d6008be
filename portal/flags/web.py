"""The flags' gate on the web: a page of a blueprint a flag gates answers 403 (the error page,
in the reader's language; an HTMX request gets the toast) to a signed-in user the flag is off
for; ``permission_enabled`` makes ``can()`` hide what the flag gates (navigation entries, the
case view's message card)."""

from __future__ import annotations

from flask import Flask, abort, request
from flask_babel import gettext
from flask_login import current_user

from portal.flags import operations
from portal.flags.registry import FLAGS, flags_gating_blueprint, flags_gating_permission


def flags_off_for(names, user) -> list[str]:
    return [name for name in names if not operations.flag_on(name, user)]


def permission_enabled(permission: str, user) -> bool:
    """False when a flag gating ``permission`` is off for ``user``."""
    names = flags_gating_permission(permission)
    return not names or not flags_off_for(names, user)


def _gate() -> None:
    names = flags_gating_blueprint(request.blueprint)
    if not names or not current_user.is_authenticated:
        return  # the route's own decorator sends an anonymous visitor to the login page
    off = flags_off_for(names, current_user)
    if off:
        abort(403, description=gettext(
            "%(feature)s is not switched on for your team yet (feature flag %(flag)s). Ask "
            "your supervisor or the operations team.",
            feature=FLAGS[off[0]].label, flag=off[0]))


def install(app: Flask) -> None:
    app.before_request(_gate)
