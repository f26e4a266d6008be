"""Roles → permissions, in one place, and the decorators that enforce them.

Every route of the portal declares what it needs:

- ``@permission_required("cases.view")`` on HTML pages and HTMX partials: an anonymous visitor
  is sent to the login page (an HTMX request gets an ``HX-Redirect`` header instead of a 302),
  a user whose role lacks the permission gets the 403 page.
- ``@api_permission_required("api.locations")`` on the JSON API: the principal is an API token
  (``Authorization: Bearer <token>``, scoped, revocable, may expire) or a logged-in session user
  whose role grants that permission. Refusals are 401/403 JSON ``{"error": {"code", "message"}}``.
- ``@public`` on the few routes anyone may call (login page, health check, signed webhooks).

Holding a permission is not enough for an object the URL names. Each URL variable that names
a team's object (``<cif>``, ``<int:visit_id>``, ``<int:agent_id>``, ``<call_id>``,
``<int:notification_id>``) has one rule in ``OBJECT_RULES`` below, and both decorators apply it
after the role check: an agent opening another team's case by guessing its CIF gets 404, as for
a CIF that does not exist (the API: 403 JSON ``not_your_case``). The variables that name
objects with no owner (integration names, action codes, runs: only their role reaches them)
are listed in ``UNOWNED_URL_VARIABLES`` with the reason;
tests/integration/test_route_authorization.py fails on a variable in neither. Lists and
searches use the same rules as SQL conditions (``case_scope``, ``cif_scope``, ``team_scope``).

The decorators record what they enforce on the view function (``_required_permission``,
``_api_scope``, ``_public``), so a test can walk ``app.url_map`` and prove that every route is
protected as declared (tests/integration/test_route_protection.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from flask import abort, current_app, g, jsonify, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import or_, select

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


# --- object rules: which team's cases, visits, agents and calls a user may touch ----------------
#
# Users without a team count as one team of their own (a bank that has not split its agents
# into teams): they see each other's cases, and no team's supervisor sees theirs.


def team_scope(session: Any, user: Any) -> list[int | None] | None:
    """Teams whose cases, agents and visits ``user`` may see: None means every team (admin);
    anyone else the teams they supervise plus their own team (``None`` in the list: the users
    without a team)."""
    from portal.models import Team

    if user.role == "admin":
        return None
    conditions = [Team.supervisor_id == user.id]
    if user.team_id is not None:
        conditions.append(Team.id == user.team_id)
    teams: list[int | None] = list(session.scalars(
        select(Team.id).where(or_(*conditions)).order_by(Team.name)))
    return teams if user.team_id is not None else [*teams, None]


def supervised_team_ids(session: Any, user: Any) -> list[int] | None:
    """``team_scope`` without the users who have no team: real teams, by name (None: all)."""
    teams = team_scope(session, user)
    return None if teams is None else [t for t in teams if t is not None]


def members_of(teams: list[int | None]):
    """SQL condition on ``User`` for the members of ``teams`` (``None``: users without one)."""
    from portal.models import User

    ids = [t for t in teams if t is not None]
    condition = User.team_id.in_(ids or [-1])
    return or_(condition, User.team_id.is_(None)) if None in teams else condition


def case_scope(session: Any, user: Any):
    """SQL condition on ``Case`` for the cases ``user`` may open (None: every case). A case
    belongs to the teams of its assigned agent and field agent; a case assigned to nobody
    belongs to no team yet and is open to every agent (so is a customer without a case)."""
    from portal.models import Case, User

    teams = team_scope(session, user)
    if teams is None:
        return None
    members = select(User.id).where(members_of(teams))
    return or_(
        Case.assigned_agent_id.is_(None) & Case.assigned_field_agent_id.is_(None),
        Case.assigned_agent_id == user.id, Case.assigned_field_agent_id == user.id,
        Case.assigned_agent_id.in_(members), Case.assigned_field_agent_id.in_(members),
    )


def cif_scope(session: Any, user: Any, column):
    """SQL condition on a ``cif`` column (customers, loans, cards, ...) for the customers
    ``user`` may open: those without a case, or whose case is in ``case_scope``. None: all
    (an admin; the API's system tokens, which have no user, pass None for ``user``)."""
    from portal.models import Case

    condition = case_scope(session, user) if user is not None else None
    if condition is None:
        return None
    return or_(column.not_in(select(Case.cif)), column.in_(select(Case.cif).where(condition)))


def principal_cif_scope(session: Any, principal: Any, column):
    """``cif_scope`` for an API principal (``g.api_principal``): a system token, which has no
    user, reads every customer."""
    from portal.models import User

    user = session.get(User, principal.user_id) if principal.user_id is not None else None
    return cif_scope(session, user, column)


def may_access_case(session: Any, user: Any, cif: str) -> bool:
    """Whether ``user`` may open and work the case of customer ``cif`` (see ``case_scope``);
    an unknown CIF or a customer without a case passes, for the view to answer 404 or show it."""
    from portal.models import Case

    condition = case_scope(session, user)
    if condition is None:
        return True
    exists = select(Case.id).where(Case.cif == cif)
    if session.scalar(exists) is None:
        return True
    return session.scalar(exists.where(condition)) is not None


def may_access_agent(session: Any, user: Any, agent_id: int) -> bool:
    """A user's own data, or (supervisor, admin) an agent of the teams they supervise."""
    from portal.models import User

    if agent_id == user.id:
        return True
    if user.role not in ("supervisor", "admin"):
        return False
    agent = session.get(User, agent_id)
    if agent is None:
        return True  # the view answers 404
    teams = team_scope(session, user)
    return teams is None or agent.team_id in teams


def may_access_visit(session: Any, user: Any, visit_id: int) -> bool:
    """A field agent their own visits; a supervisor the visits of their teams' agents."""
    from portal.models import Visit

    row = session.execute(select(Visit.agent_id).where(Visit.id == visit_id)).first()
    if row is None:
        return True  # the view answers 404
    return row.agent_id is not None and may_access_agent(session, user, row.agent_id)


def may_access_call(session: Any, user: Any, call_id: str) -> bool:
    """The agent's own calls; a supervisor the calls of their teams' agents."""
    from portal.models import CallRecord

    row = session.execute(select(CallRecord.agent_id).where(CallRecord.call_id == call_id)
                          ).first()
    if row is None:
        return True  # the view answers 404
    return row.agent_id is not None and may_access_agent(session, user, row.agent_id)


def may_access_notification(session: Any, user: Any, notification_id: int) -> bool:
    """A notification is its recipient's alone."""
    from portal.models import Notification

    owner = session.scalar(select(Notification.user_id).where(
        Notification.id == notification_id))
    return owner is None or owner == user.id


@dataclass(frozen=True)
class ObjectRule:
    noun: str  # what the URL variable names, for the refusal ("not_your_case")
    allows: Callable[[Any, Any, Any], bool]


# URL variable → the rule deciding whether a user may touch the object it names.
OBJECT_RULES: dict[str, ObjectRule] = {
    "cif": ObjectRule("case", may_access_case),
    "agent_id": ObjectRule("agent", may_access_agent),
    "visit_id": ObjectRule("visit", may_access_visit),
    "call_id": ObjectRule("call", may_access_call),
    "notification_id": ObjectRule("notification", may_access_notification),
}

# URL variables naming objects no team owns: the route's permission is the whole rule.
UNOWNED_URL_VARIABLES: dict[str, str] = {
    "kind": "contact kind (phone, address, email) of the case named by <cif>",
    "contact_id": "a contact of the case named by <cif>: the view refuses one of another CIF",
    "name": "a case panel of <cif>, or an integration / circuit breaker (ops only)",
    "code_id": "an action code: workflow configuration, admin.workflow only",
    "token_id": "an API token: admin.tokens only",
    "run_id": "an integration run: ops only",
    "discrepancy_id": "a reconciliation discrepancy: ops only",
    "filename": "a static file",
}


def refused_object(session: Any, user: Any, view_args: dict) -> str | None:
    """The noun of the first object named by ``view_args`` that ``user`` may not touch."""
    for name, value in view_args.items():
        rule = OBJECT_RULES.get(name)
        if rule is not None and not rule.allows(session, user, value):
            return rule.noun
    return None


def _refused_object(user: Any, view_args: dict) -> str | None:
    if not any(name in OBJECT_RULES for name in view_args):
        return None
    from portal.extensions import db

    return refused_object(db.session, user, view_args)


def _refused_api_object(session_user: Any, view_args: dict) -> str | None:
    """``_refused_object`` for the API's principal: the session user, or the token's user (a
    system token, which has no user, reads every team's objects)."""
    if not any(name in OBJECT_RULES for name in view_args):
        return None
    user = session_user
    if user is None and g.api_principal.user_id is not None:
        from portal.extensions import db
        from portal.models import User

        user = db.session.get(User, g.api_principal.user_id)
    return _refused_object(user, view_args) if user is not None else None


def _refusal_message(noun: str) -> str:
    return (f"This {noun} belongs to another team or user: your role reaches only your "
            "own and your teams'.")


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
                session_user = None
            elif current_user.is_authenticated:
                if not has_permission(current_user, scope):
                    return api_error(403, "forbidden",
                                     f"Your role does not allow this ({scope}).")
                if request.method not in ("GET", "HEAD", "OPTIONS"):
                    from portal.extensions import csrf

                    csrf.protect()
                g.api_principal = api_tokens.Principal.for_user(current_user)
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
