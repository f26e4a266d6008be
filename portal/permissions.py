"""Roles → permissions, in one place, and the decorators that enforce them.

Every route of the portal declares what it needs:

- ``@permission_required("cases.view")`` on HTML pages and HTMX partials: an anonymous visitor
  is sent to the login page (an HTMX request gets an ``HX-Redirect`` header instead of a 302),
  a user whose role lacks the permission gets the 403 page.
- ``@api_permission_required("api.locations")`` on the JSON API: the principal is an API token
  (``Authorization: Bearer <token>``, scoped, revocable, may expire) or a logged-in session user
  whose role grants that permission. Refusals are 401/403 JSON ``{"error": {"code", "message"}}``.
- ``@public`` on the few routes anyone may call (login page, health check, signed webhooks).

The decorators record what they enforce on the view function (``_required_permission``,
``_api_scope``, ``_public``), so a test can walk ``app.url_map`` and prove that every route is
protected as declared (tests/integration/test_route_protection.py).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort, current_app, g, jsonify, redirect, request, url_for
from flask_login import current_user

# Every permission, with what it allows. Names are "area.verb".
PERMISSIONS: dict[str, str] = {
    "portal.access": "Use the portal: home page, own profile, log out",
    "cases.view": "See customers, cases, loans and the case history",
    "cases.work": "Record calls and outcomes, promises to pay, contact details",
    "customers.view_pii": "See national ids and phone numbers unmasked",
    "field.visits": "See own visit plan and check in at customer visits",
    "field.review": "Review visits whose location could not be verified",
    "field.track": "See the live map of field agents, visits and customers",
    "supervisor.board": "See the live agent-status board",
    "supervisor.assign": "Assign cases to agents and field agents",
    "supervisor.kpi": "See team KPIs",
    "ops.integrations": "See integration health: runs, failures, queues and workers",
    "ops.actions": "Pause, resume, retry and resync integrations; retry dead letters",
    "admin.users": "Create, deactivate and reset users",
    "admin.tokens": "Create, list and revoke API tokens",
    "admin.workflow": "Manage action codes, contact rules and promise limits",
    # Scopes of the JSON API (granted to API tokens and to roles for session use of the API)
    "api.profile": "API: read the calling principal (GET /api/v1/me)",
    "api.locations": "API: post GPS positions of a field agent",
    "api.visits": "API: read the visit plan and check in at visits",
    "api.cases": "API: read cases and customers",
    "api.calls": "API: call-centre events and click-to-call",
    "api.integrations": "API: read integration health and trigger runs",
}

# Scopes an API token may carry: the ``api.*`` permissions.
API_SCOPES: tuple[str, ...] = tuple(p for p in PERMISSIONS if p.startswith("api."))

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "agent": frozenset({
        "portal.access", "cases.view", "cases.work", "customers.view_pii",
        "api.profile", "api.cases", "api.calls",
    }),
    "field_agent": frozenset({
        "portal.access", "cases.view", "cases.work", "customers.view_pii", "field.visits",
        "api.profile", "api.locations", "api.visits", "api.cases",
    }),
    "supervisor": frozenset({
        "portal.access", "cases.view", "customers.view_pii", "field.track", "field.review",
        "supervisor.board", "supervisor.assign", "supervisor.kpi",
        "api.profile", "api.cases",
    }),
    "ops": frozenset({
        "portal.access", "ops.integrations", "ops.actions",
        "api.profile", "api.integrations",
    }),
    "admin": frozenset({
        "portal.access", "admin.users", "admin.tokens", "admin.workflow", "ops.integrations",
        "api.profile",
        "supervisor.kpi",  # admins see every team's KPIs (issue 10)
    }),
}

ROLE_LABELS: dict[str, str] = {
    "agent": "Collection agent",
    "field_agent": "Field agent",
    "supervisor": "Supervisor",
    "ops": "Operations",
    "admin": "Administrator",
}


def permissions_for_role(role: str | None) -> frozenset[str]:
    return ROLE_PERMISSIONS.get(role or "", frozenset())


def roles_with(permission: str) -> tuple[str, ...]:
    """The roles granted ``permission`` (used by tests and the admin page)."""
    _check_known(permission)
    return tuple(role for role, perms in ROLE_PERMISSIONS.items() if permission in perms)


def has_permission(user: Any, permission: str) -> bool:
    """Whether ``user`` (a User or Flask-Login's anonymous user) holds ``permission``."""
    _check_known(permission)
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if not getattr(user, "is_active", False):
        return False
    return permission in permissions_for_role(getattr(user, "role", None))


def can(permission: str) -> bool:
    """Template helper: ``{% if can("cases.view") %}`` for the current user."""
    return has_permission(current_user, permission)


def _check_known(permission: str) -> None:
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}: declare it in portal.permissions")


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
    from portal.web.navigation import safe_next

    if getattr(request, "htmx", False):
        origin = safe_next(_path_of(request.htmx.current_url)) or url_for("main.home")
        response = current_app.response_class(status=204)
        response.headers["HX-Redirect"] = url_for("auth.login", next=origin, expired=1)
        return response
    next_url = safe_next(request.full_path.rstrip("?")) if request.method == "GET" else None
    return redirect(url_for("auth.login", next=next_url))


def _path_of(url: str | None) -> str | None:
    if not url:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def permission_required(permission: str) -> Callable[[Callable], Callable]:
    """Protect a page or HTMX partial: anonymous → login, role lacking ``permission`` → 403."""
    _check_known(permission)

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_redirect_response()
            if not has_permission(current_user, permission):
                abort(403, description="Your role does not give access to this page "
                                       f"(it needs the permission {permission}).")
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
            from portal.services import api_tokens

            authorization = request.headers.get("Authorization")
            if authorization:
                scheme, _, raw = authorization.partition(" ")
                if scheme.lower() != "bearer" or not raw.strip():
                    return api_error(401, "invalid_authorization",
                                     "Use the header 'Authorization: Bearer <token>'.",
                                     WWW_Authenticate="Bearer")
                from portal.extensions import db

                result = api_tokens.authenticate(db.session, raw.strip())
                if not result.ok:
                    return api_error(401, result.code, result.message,
                                     WWW_Authenticate=f'Bearer error="{result.code}"')
                if scope not in result.scopes:
                    return api_error(403, "insufficient_scope",
                                     f"This API token lacks the scope '{scope}'.")
                g.api_principal = result.principal
            elif current_user.is_authenticated:
                if not has_permission(current_user, scope):
                    return api_error(403, "forbidden",
                                     f"Your role does not allow this ({scope}).")
                if request.method not in ("GET", "HEAD", "OPTIONS"):
                    from portal.extensions import csrf

                    csrf.protect()
                g.api_principal = api_tokens.Principal.for_user(current_user)
            else:
                return api_error(401, "authentication_required",
                                 "Authentication required: send 'Authorization: Bearer <token>'.",
                                 WWW_Authenticate="Bearer")
            return view(*args, **kwargs)

        wrapped._api_scope = scope
        from portal.extensions import csrf

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
