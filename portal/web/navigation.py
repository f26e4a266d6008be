"""The navigation (one list; each role sees the entries its permissions allow and whose route
exists) and the safe handling of ``next`` URLs."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, request, url_for

from portal.permissions.roles import can


@dataclass(frozen=True)
class NavItem:
    label: str
    endpoint: str
    permission: str
    icon: str  # name of an inline SVG icon in templates/partials/icons.html
    section: str = "Work"
    also_active_on: tuple[str, ...] = ()  # other endpoints of the same page (form posts)


# Entries whose endpoint is not registered (an area not built yet) are left out.
NAV_ITEMS: tuple[NavItem, ...] = (
    NavItem("Home", "main.home", "portal.access", "home", "Overview"),
    NavItem("Work queue", "cases.queue", "cases.work", "inbox"),
    NavItem("Customers", "cases.search", "cases.view", "users"),
    NavItem("My calls", "calls.history", "cases.work", "phone"),
    NavItem("My visits", "field.visits", "field.visits", "pin"),
    NavItem("Field map", "field.map", "field.track", "map", "Supervision"),
    NavItem("Visit reviews", "field.reviews", "field.review", "shield", "Supervision"),
    NavItem("Agent board", "supervisor.board", "supervisor.board", "activity", "Supervision"),
    NavItem("Assignment", "supervisor.assign", "supervisor.assign", "shuffle", "Supervision"),
    NavItem("Team KPIs", "supervisor.kpi", "supervisor.kpi", "chart", "Supervision"),
    NavItem("Team KPIs", "kpi.dashboard", "supervisor.kpi", "chart", "Supervision"),
    NavItem("Assignment", "assignment.index", "supervisor.assign", "shuffle", "Supervision",
            ("assignment.upload", "assignment.upload_form", "assignment.apply_upload",
             "assignment.bulk", "assignment.auto")),
    NavItem("Integrations", "ops.integrations", "ops.integrations", "plug", "Operations",
            ("ops.runs", "ops.run_detail", "ops.quarantine")),
    NavItem("Reconciliation", "payments.reconciliation", "ops.integrations", "refresh",
            "Operations", ("payments.rejected", "payments.resolve_discrepancy",
                           "payments.run_reconciliation")),
    NavItem("Workers & queues", "ops.workers", "ops.integrations", "server", "Operations"),
    NavItem("Alerts", "ops.alerts_page", "ops.integrations", "alert", "Operations"),
    NavItem("Truth check", "ops.invariants_page", "ops.integrations", "check", "Operations",
            ("ops.check_invariants_now",)),
    NavItem("Users", "admin.users", "admin.users", "users", "Administration"),
    NavItem("API tokens", "admin.tokens", "admin.tokens", "key", "Administration",
            ("admin.create_token", "admin.revoke_token")),
    NavItem("Action codes", "admin.action_codes", "admin.workflow", "file", "Administration",
            ("admin.create_action_code", "admin.edit_action_code", "admin.update_action_code",
             "admin.toggle_action_code")),
    NavItem("Contact rules", "admin.contact_rules", "admin.workflow", "shield", "Administration",
            ("admin.save_contact_rules",)),
    NavItem("Notifications", "notifications.index", "portal.access", "message", "Overview"),
)


def navigation() -> list[tuple[str, list[dict]]]:
    """Sections of nav links for the current user: [(section, [{label, url, icon, active}])]."""
    sections: dict[str, list[dict]] = {}
    current = request.endpoint or ""
    for item in NAV_ITEMS:
        if item.endpoint not in current_app.view_functions or not can(item.permission):
            continue
        sections.setdefault(item.section, []).append({
            "label": item.label,
            "url": url_for(item.endpoint),
            "icon": item.icon,
            "active": current == item.endpoint or current in item.also_active_on,
        })
    return list(sections.items())


