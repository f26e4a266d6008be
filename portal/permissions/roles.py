"""Roles → permissions, in one place."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_login import current_user

# Every permission, with what it allows. Names are "area.verb".
PERMISSIONS: dict[str, str] = {
    "portal.access": "Use the portal: home page, own profile, log out",
    "cases.view": "See customers, cases, loans and the case history",
    "cases.work": "Record calls and outcomes, promises to pay, contact details",
    "customers.view_pii": "See national ids and phone numbers unmasked",
    "customers.refresh": "Fetch a customer's latest data now from W4 and LOS (rate-limited)",
    "field.visits": "See own visit plan and check in at customer visits",
    "field.review": "Review visits whose location could not be verified",
    "field.track": "See the live map of field agents, visits and customers",
    "field.rejected_positions": "See the GPS positions phones sent that can never be accepted",
    "supervisor.board": "See the live agent-status board",
    "supervisor.assign": "Assign cases to agents and field agents",
    "supervisor.kpi": "See team KPIs",
    "ops.integrations": "See integration health: runs, failures, queues and workers",
    "ops.actions": "Pause, resume, retry and resync integrations; retry dead letters",
    "ops.flags": "Switch feature flags on for everyone, for chosen teams only, or off",
    "admin.users": "Create, deactivate and reset users",
    "admin.tokens": "Create, list and revoke API tokens",
    "admin.workflow": "Manage action codes, contact rules and promise limits",
    "admin.teams": "Create and rename teams, set their supervisor and members",
    "audit.view": "Read the audit log and export it (changes nothing)",
    "placements.view": "See the placements with legal and agencies and what each collected",
    "placements.manage": "Place cases with legal or an agency, recall them, export their files",
    "strategies.view": "See the collection strategies, simulate them, and their KPIs",
    "strategies.manage": "Build, activate and run the collection strategies",
    "documents.view": "See, open and download a customer's documents (each opening logged)",
    "documents.upload": "Upload documents for a customer; attach photos to own visits",
    "messages.send": "Send a one-off SMS, e-mail or letter from the case view (under the rules)",
    "messages.templates": "Create, edit and retire the SMS, e-mail and letter templates",
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
        "customers.refresh",  # their cases (the case scope), issue 24
        "api.profile", "api.cases", "api.calls",
        "documents.view", "documents.upload",
        "messages.send",
    }),
    "field_agent": frozenset({
        "portal.access", "cases.view", "cases.work", "customers.view_pii", "field.visits",
        "customers.refresh",
        "api.profile", "api.locations", "api.visits", "api.cases",
        "documents.view", "documents.upload",
        "messages.send",
    }),
    "supervisor": frozenset({
        "portal.access", "cases.view", "customers.view_pii", "field.track", "field.review",
        "customers.refresh",  # their teams' cases
        "field.rejected_positions", "supervisor.board", "supervisor.assign", "supervisor.kpi",
        "api.profile", "api.cases",
        "placements.view", "placements.manage",  # their teams' cases (issue 22)
        "strategies.view", "strategies.manage",  # collection strategies (issue 23)
        "documents.view",  # sees the team's documents; the agents upload them
        "messages.send", "messages.templates",  # issue 23
    }),
    "ops": frozenset({
        "portal.access", "ops.integrations", "ops.actions", "field.rejected_positions",
        "api.profile", "api.integrations",
        "ops.flags",  # feature flags (issue 24)
    }),
    "admin": frozenset({
        "portal.access", "admin.users", "admin.teams", "admin.tokens", "admin.workflow",
        "audit.view", "ops.integrations", "ops.flags",
        "field.rejected_positions", "api.profile",
        "supervisor.kpi",  # admins see every team's KPIs (issue 10)
        "placements.view",  # every agency's placements and collections (issue 22)
        "strategies.view",  # the strategies and their KPIs (issue 23)
        "messages.templates",  # issue 23
    }),
    # reads the audit log and changes nothing (DESIGN.md §7)
    "auditor": frozenset({"portal.access", "audit.view", "api.profile"}),
}

ROLE_LABELS: dict[str, str] = {
    "agent": _l("Collection agent"),
    "field_agent": _l("Field agent"),
    "supervisor": _l("Supervisor"),
    "ops": _l("Operations"),
    "admin": _l("Administrator"),
    "auditor": _l("Auditor"),
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
    """Template helper: ``{% if can("cases.view") %}`` for the current user; a permission whose
    feature flag is off for the user's team is not held here (portal/flags)."""
    if not has_permission(current_user, permission):
        return False
    from portal.flags.web import permission_enabled  # the flags read the database

    return permission_enabled(permission, current_user)


def _check_known(permission: str) -> None:
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}: declare it in portal.permissions")
