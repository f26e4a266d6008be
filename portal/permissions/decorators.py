"""Marking and enforcing routes: ``permission_required``, ``api_permission_required``, ``public``;
and ``safe_next``, the one rule for where a login may send the browser back to."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlsplit

from flask import abort, current_app, g, jsonify, redirect, request, url_for
from flask_babel import gettext
from flask_login import current_user

from portal.extensions import csrf, db
from portal.permissions import tokens
from portal.permissions.roles import _check_known, has_permission
from portal.permissions.scopes import _refusal_message, _refused_api_object, _refused_object

# --- marking and enforcing routes ------------------------------------------------------------


def public(view: Callable) -> Callable:
    """Mark a route that anyone may call (login, health check, signed webhooks, static)."""
    view._public = True
    return view


def login_redirect_response():
    """Send an anonymous visitor to the login page, coming back here afterwards.

    A plain request gets a 302. An HTMX request whose session expired gets ``HX-Redirect`` (and
    204, nothing to swap) so the browser loads the login page as a whole page instead of
    swapping it into a fragment of the old one.
    """
    if request.htmx:
        origin = safe_next(_path_of(request.htmx.current_url)) or url_for("main.home")
        response = current_app.response_class(status=204)
        response.headers["HX-Redirect"] = url_for("auth.login", next=origin, expired=1)
        return response
    next_url = safe_next(request.full_path.rstrip("?")) if request.method == "GET" else None
    return redirect(url_for("auth.login", next=next_url))


def _path_of(url: str | None) -> str | None:
    if not url:
        return None

    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# What a user who must change their password (after an admin's reset) may still reach.
PASSWORD_CHANGE_ENDPOINTS = frozenset({"auth.change_password", "auth.logout", "auth.language"})


def password_change_redirect():
    """Send a user whose password was reset to the change-password page (HTMX: HX-Redirect)."""
    target = url_for("auth.change_password")
    if request.htmx:
        response = current_app.response_class(status=204)
        if (_path_of(request.htmx.current_url) or "").split("?")[0] != target:
            response.headers["HX-Redirect"] = target  # (already there: nothing to reload)
        return response
    return redirect(target)


def permission_required(permission: str) -> Callable[[Callable], Callable]:
    """Protect a page or HTMX partial: anonymous → login, role lacking ``permission`` → 403."""
    _check_known(permission)

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_redirect_response()
            if getattr(current_user, "must_change_password", False) and \
                    request.endpoint not in PASSWORD_CHANGE_ENDPOINTS:
                return password_change_redirect()
            if not has_permission(current_user, permission):
                abort(403, description=gettext(
                    "Your role does not give access to this page (it needs the permission "
                    "%(permission)s).", permission=permission))
            if _refused_object(current_user, kwargs) is not None:
                # as for a missing object: the page says nothing of what another team holds
                abort(404)
            return view(*args, **kwargs)

        wrapped._required_permission = permission
        return wrapped

    return decorator


def api_error(status: int, code: str, message: str, **headers: str):
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    for name, value in headers.items():
        response.headers[name.replace("_", "-")] = value
    return response


def api_permission_required(scope: str) -> Callable[[Callable], Callable]:
    """Protect a JSON API route: a Bearer API token carrying ``scope``, or a logged-in user whose
    role grants ``scope``. The authenticated principal is in ``g.api_principal``.

    Token requests are exempt from CSRF (they carry no cookie); session requests that change
    something must send the CSRF token like any other form or HTMX request.
    """
    _check_known(scope)
    if not scope.startswith("api."):
        raise ValueError(f"API routes need an api.* scope, got {scope!r}")

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            authorization = request.headers.get("Authorization")
            if authorization:
                scheme, _, raw = authorization.partition(" ")
                if scheme.lower() != "bearer" or not raw.strip():
                    return api_error(401, "invalid_authorization",
                                     "Use the header 'Authorization: Bearer <token>'.",
                                     WWW_Authenticate="Bearer")

                result = tokens.authenticate(db.session, raw.strip())
                if not result.ok:
                    return api_error(401, result.code, result.message,
                                     WWW_Authenticate=f'Bearer error="{result.code}"')
                if scope not in result.scopes:
                    return api_error(403, "insufficient_scope",
                                     f"This API token lacks the scope '{scope}'.")
                g.api_principal = result.principal
                session_user = None
            elif current_user.is_authenticated:
                if getattr(current_user, "must_change_password", False):
                    return api_error(403, "password_change_required",
                                     "Change the temporary password first (/auth/password).")
                if not has_permission(current_user, scope):
                    return api_error(403, "forbidden",
                                     f"Your role does not allow this ({scope}).")
                if request.method not in ("GET", "HEAD", "OPTIONS"):
                    csrf.protect()
                g.api_principal = tokens.Principal.for_user(current_user)
                session_user = current_user
            else:
                return api_error(401, "authentication_required",
                                 "Authentication required: send 'Authorization: Bearer <token>'.",
                                 WWW_Authenticate="Bearer")
            noun = _refused_api_object(session_user, kwargs)
            if noun is not None:
                return api_error(403, f"not_your_{noun}", _refusal_message(noun))
            return view(*args, **kwargs)

        wrapped._api_scope = scope

        csrf.exempt(wrapped)
        return wrapped

    return decorator


def route_protection(view: Callable) -> tuple[str, str | None]:
    """How a view function is protected: ("public", None), ("page", permission),
    ("api", scope) or ("none", None) for a route that declares nothing (a bug)."""
    if getattr(view, "_public", False):
        return "public", None
    if getattr(view, "_api_scope", None):
        return "api", view._api_scope
    if getattr(view, "_required_permission", None):
        return "page", view._required_permission
    return "none", None


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site (no scheme, no host, no '//' trick), else None."""
    if not target:
        return None
    target = target.strip()
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(c) < 32 for c in target):
        return None
    if parts.path.startswith("/auth/"):
        return None
    return target
