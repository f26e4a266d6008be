"""Registers blueprints, the login manager, template helpers, security headers and error
handlers on the app (HTML pages in the layout; JSON under /api/)."""

from __future__ import annotations

import logging
from datetime import datetime
from functools import wraps
from urllib.parse import quote

from flask import Flask, current_app, g, render_template, request, session
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from jinja2 import pass_context
from psycopg.errors import NumericValueOutOfRange
from sqlalchemy.exc import DataError
from werkzeug.exceptions import HTTPException, InternalServerError

from portal import clock
from portal.auth import sessions
from portal.extensions import db, login_manager, partial_request
from portal.i18n import (
    LANGUAGES,
    current_locale,
    format_ago,
    format_date,
    format_datetime,
    format_number,
)
from portal.labels import label
from portal.models import User
from portal.models.enums import bucket_for_dpd
from portal.money import format_money
from portal.permissions.decorators import api_error, login_redirect_response, public
from portal.permissions.roles import PERMISSIONS, ROLE_LABELS, can
from portal.phones import phone_national
from portal.security_headers import init_security_headers
from portal.text import mask_phone
from portal.web.navigation import navigation

log = logging.getLogger(__name__)

API_PREFIX = "/api/"


def register_web(app: Flask) -> None:
    """What every page shares (after the blueprints are registered): login, template helpers,
    error pages, security headers."""
    _mark_static_public(app)
    _init_login_manager(app)
    _register_template_helpers(app)
    _evaluate_filters_per_render(app)
    _register_error_handlers(app)
    init_security_headers(app)
    app.teardown_request(_forget_request_state)


def _mark_static_public(app: Flask) -> None:
    """Static files are public; say so on the view so the route-protection walk sees it."""
    for endpoint, view in list(app.view_functions.items()):
        if endpoint == "static" or endpoint.endswith(".static"):
            app.view_functions[endpoint] = _public_wrapper(view)


def _public_wrapper(view):
    @wraps(view)
    def static_view(*args, **kwargs):
        return view(*args, **kwargs)

    return public(static_view)


def _init_login_manager(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please sign in to continue.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(user_id: str):
        if not user_id or not user_id.isdigit():
            return None
        if sessions.is_revoked(session.get("sid")):  # signed out: a copy of its cookie
            return None
        user = db.session.get(User, int(user_id))
        return user if user is not None and user.active else None

    @login_manager.unauthorized_handler
    def unauthorized():
        if request.path.startswith(API_PREFIX):
            return api_error(401, "authentication_required", "Authentication required.")
        return login_redirect_response()


# --- template helpers --------------------------------------------------------------------------


def format_vnd(value) -> str:
    """Money as VND with thousands separators: 12500000 → "12,500,000 ₫" (portal.money)."""
    return format_money(value, "VND")


def format_phone(number: str | None, show: bool = True) -> str:
    """A phone number as people read it, the same on every page: "0903 123 456" from the stored
    E.164 (or as typed); masked ("•••• ••• 456") when ``show`` is false (a reader without
    ``customers.view_pii``)."""
    national = phone_national(number)
    return national if show else mask_phone(national)


def initials(name: str | None) -> str:
    """"Nguyen Van An" → "NA" (first and last word)."""
    words = [w for w in (name or "").split() if w]
    if not words:
        return "?"
    if len(words) == 1:
        return words[0][:2].upper()
    return (words[0][0] + words[-1][0]).upper()


def now_in_bank_zone() -> datetime:
    return clock.now().astimezone(clock.bank_zone())


def greeting(full_name: str | None) -> str:
    """"Chào buổi sáng, An" in the bank's zone (Vietnamese names: the given name comes last)."""
    hour = now_in_bank_zone().hour
    words = (full_name or "").split()
    name = words[-1] if words else ""
    if hour < 12:
        return gettext("Good morning, %(name)s", name=name) if name else gettext("Good morning")
    if hour < 18:
        return (gettext("Good afternoon, %(name)s", name=name) if name
                else gettext("Good afternoon"))
    return gettext("Good evening, %(name)s", name=name) if name else gettext("Good evening")


def js_messages() -> dict[str, str]:
    """The words static/js/app.js shows, in the page's language (``%s``: a value it fills in)."""
    return {
        "request_failed": gettext("Request failed (%(status)s).", status="%s"),
        "unreachable": gettext("The server cannot be reached. Check your connection and try "
                               "again."),
        "table": gettext("Table"),
        "scrolls_sideways": gettext("%(name)s (scrolls sideways)", name="%s"),
        "scrolls": gettext("%(name)s (scrolls)", name="%s"),
        "copied": gettext("Copied"),
    }


def layout_template() -> str:
    """The layout a page extends: the whole page, or only its content for an HTMX request that
    targets part of a page (boosted navigation and history restores get the whole page)."""
    return "partial.html" if partial_request() else "base.html"


def _evaluate_filters_per_render(app: Flask) -> None:
    """Jinja folds a filter applied to a constant (``{{ "closed"|label }}``) into the compiled
    template, in the language of whoever first rendered it; the portal's own filters depend on
    the reader (language, zone, clock), so each is marked as needing the render's context,
    which Jinja never folds."""
    for name, func in list(app.jinja_env.filters.items()):
        if (getattr(func, "__module__", "") or "").startswith("portal.") \
                and not getattr(func, "jinja_pass_arg", None):
            app.jinja_env.filters[name] = _per_render(func)


def _per_render(func):
    @pass_context
    @wraps(func)
    def per_render(_context, *args, **kwargs):
        return func(*args, **kwargs)

    return per_render


def _register_template_helpers(app: Flask) -> None:
    app.jinja_env.filters.update(
        vnd=format_vnd,
        number=format_number,
        phone=format_phone,
        datetime=format_datetime,
        date=format_date,
        ago=format_ago,
        label=label,
        initials=initials,
        bucket=bucket_for_dpd,
    )
    app.jinja_env.globals.update(now_in_bank_zone=now_in_bank_zone, greeting=greeting,
                                  js_messages=js_messages)

    @app.context_processor
    def inject_helpers():
        return {
            "can": can,
            "navigation": navigation,
            "role_labels": ROLE_LABELS,
            "permission_names": PERMISSIONS,
            "layout": layout_template(),
            "bank_currency": current_app.config.get("BANK_CURRENCY", "VND"),
            "languages": LANGUAGES,
            "current_language": current_locale().language,
        }


# --- errors ----------------------------------------------------------------------------------

ERROR_TITLES = {
    400: _l("Bad request"),
    401: _l("Sign in required"),
    403: _l("Access denied"),
    404: _l("Page not found"),
    405: _l("Method not allowed"),
    413: _l("Request too large"),
    422: _l("Invalid input"),
    429: _l("Too many requests"),
    500: _l("Something went wrong"),
}
ERROR_TITLE = _l("Error")

# what the page says when the view gave no reason of its own (werkzeug's English otherwise)
DEFAULT_MESSAGES = {
    400: _l("The request could not be understood. Check what you entered and try again."),
    403: _l("You do not have access to this page."),
    405: _l("This address does not accept that kind of request."),
    413: _l("What you sent is too large."),
    422: _l("What you entered could not be processed."),
}

# Flask-WTF's reasons for refusing a form, in the page's words (JSON keeps the English)
CSRF_MESSAGES = {
    "The CSRF token is missing.": _l("The CSRF token is missing."),
    "The CSRF session token is missing.": _l("The CSRF session token is missing."),
    "The CSRF token has expired.": _l("The CSRF token has expired."),
    "The CSRF token is invalid.": _l("The CSRF token is invalid."),
    "The CSRF tokens do not match.": _l("The CSRF tokens do not match."),
}
HEADER_SAFE = " !\"#$&'()*+,-./:;<=>?@[]^_`{|}~"

ERROR_CODES = {
    400: "bad_request", 401: "authentication_required", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 413: "too_large", 422: "invalid", 429: "rate_limited",
    500: "server_error",
}


def _wants_json() -> bool:
    if request.path.startswith(API_PREFIX):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > \
        request.accept_mimetypes["text/html"]


def render_error(status: int, message: str, code: str | None = None):
    code = code or ERROR_CODES.get(status, "error")
    if _wants_json():
        return api_error(status, code, message)
    title = ERROR_TITLES.get(status, ERROR_TITLE)
    response = current_app.make_response(
        (render_template("errors/error.html", status=status, title=title, message=message),
         status)
    )
    # Shown as a toast when an HTMX request targeting part of a page fails (static/js/app.js,
    # which decodes it): UTF-8, percent-encoded, so Vietnamese survives an ASCII header.
    response.headers["X-Error-Message"] = quote(str(message)[:200], safe=HEADER_SAFE)
    return response


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        # An HTMX request whose session expired has lost its CSRF token with the session:
        # send it to the login page rather than showing a token error.
        if request.htmx and not current_user.is_authenticated:
            return login_redirect_response()
        message = error.description
        if not _wants_json():
            message = str(CSRF_MESSAGES.get(message, message))
        return render_error(400, message, "csrf_failed")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        status = error.code or 500
        message = str(error.description or ERROR_TITLES.get(status, ERROR_TITLE))
        if not _wants_json():
            # werkzeug's own English descriptions are replaced by the page's words; a
            # description a view gave (abort(403, description=…)) is kept
            default = type(error).description
            if status == 404:
                message = gettext("The page you asked for does not exist or has moved.")
            elif status in DEFAULT_MESSAGES and message == default:
                message = str(DEFAULT_MESSAGES[status])
        if status == 429:
            message = gettext("Too many requests (%(limit)s). Wait a moment and try again.",
                              limit=error.description)
        response = render_error(status, message)
        if status == 405 and hasattr(error, "valid_methods") and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response

    @app.errorhandler(DataError)
    def out_of_range(error: DataError):
        # A number beyond its column's type (an id past integer/bigint in a URL or a form)
        # names no row: not found, rather than a database error. Other data errors are 500s.
        if not isinstance(error.orig, NumericValueOutOfRange):
            raise error
        db.session.rollback()
        return render_error(404, gettext(
            "The page you asked for does not exist or has moved."))

    @app.errorhandler(InternalServerError)
    def server_error(error: InternalServerError):
        original = getattr(error, "original_exception", None)
        if original is not None:
            log.error("unhandled error on %s %s", request.method, request.path,
                      exc_info=original)
        return render_error(500, gettext("An unexpected error occurred. It has been logged; "
                                         "please try again or contact support."))


def _forget_request_state(exc=None) -> None:
    """Drop what extensions cache on ``g`` for one request (the signed-in user, the CSRF token,
    the API principal, the language). Each request normally has its own app context; when one
    is already pushed (tests, CLI) Flask reuses it and these would leak into the next request."""
    for key in ("_login_user", current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"),
                "api_principal", "_flask_babel", "_feature_flags"):
        g.pop(key, None)
