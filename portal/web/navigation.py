"""The navigation (one list; each role sees the entries its permissions allow and whose route
exists) and the safe handling of ``next`` URLs."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, request, url_for
from flask_babel import lazy_gettext as _l

from portal.permissions.roles import can


@dataclass(frozen=True)
class NavItem:
    label: str  # lazy: read in the request's language
    endpoint: str
    permission: str
    icon: str  # name of an inline SVG icon in templates/partials/icons.html
    section: str = _l("Work")
    also_active_on: tuple[str, ...] = ()  # other endpoints of the same page (form posts)


# Entries whose endpoint is not registered (an area not built yet) are left out.
NAV_ITEMS: tuple[NavItem, ...] = (
    NavItem(_l("Home"), "main.home", "portal.access", "home", _l("Overview")),
    NavItem(_l("Work queue"), "cases.queue", "cases.work", "inbox"),
    NavItem(_l("Customers"), "cases.search", "cases.view", "users"),
    NavItem(_l("My calls"), "calls.history", "cases.work", "phone"),
    NavItem(_l("My visits"), "field.visits", "field.visits", "pin"),
    NavItem(_l("Field map"), "field.map", "field.track", "map", _l("Supervision")),
    NavItem(_l("Visit reviews"), "field.reviews", "field.review", "shield", _l("Supervision")),
    NavItem(_l("Agent board"), "supervisor.board", "supervisor.board", "activity",
            _l("Supervision")),
    NavItem(_l("Assignment"), "supervisor.assign", "supervisor.assign", "shuffle",
            _l("Supervision")),
    NavItem(_l("Team KPIs"), "supervisor.kpi", "supervisor.kpi", "chart", _l("Supervision")),
    NavItem(_l("Team KPIs"), "kpi.dashboard", "supervisor.kpi", "chart", _l("Supervision")),
    NavItem(_l("Placements"), "placements.index", "placements.view", "bank",
            _l("Supervision")),
    NavItem(_l("Strategies"), "strategies.index", "strategies.view", "calendar",
            _l("Supervision"), ("strategies.detail", "strategies.simulate", "strategies.create",
                                "strategies.run_now")),
    NavItem(_l("Assignment"), "assignment.index", "supervisor.assign", "shuffle", _l("Supervision"),
            ("assignment.upload", "assignment.upload_form", "assignment.apply_upload",
             "assignment.bulk", "assignment.auto")),
    NavItem(_l("Integrations"), "ops.integrations", "ops.integrations", "plug", _l("Operations"),
            ("ops.runs", "ops.run_detail", "ops.quarantine")),
    NavItem(_l("Reconciliation"), "payments.reconciliation", "ops.integrations", "refresh",
            _l("Operations"), ("payments.rejected", "payments.resolve_discrepancy",
                           "payments.run_reconciliation")),
    NavItem(_l("Print batches"), "letters.batches", "ops.integrations", "file", _l("Operations"),
            ("letters.build", "letters.hand_over")),
    NavItem(_l("Workers & queues"), "ops.workers", "ops.integrations", "server", _l("Operations")),
    NavItem(_l("Alerts"), "ops.alerts_page", "ops.integrations", "alert", _l("Operations")),
    NavItem(_l("Truth check"), "ops.invariants_page", "ops.integrations", "check", _l("Operations"),
            ("ops.check_invariants_now",)),
    NavItem(_l("Feature flags"), "ops.flags_page", "ops.integrations", "shield", _l("Operations"),
            ("ops.set_flag",)),
    NavItem(_l("Message templates"), "messages.templates", "messages.templates", "message",
            _l("Supervision"), ("messages.new_template", "messages.create_template",
                                "messages.edit_template", "messages.update_template")),
    NavItem(_l("Messages"), "messages_ops.index", "ops.integrations", "message",
            _l("Operations"), ("messages_ops.retry",)),
    NavItem(_l("Users"), "admin.users", "admin.users", "users", _l("Administration"),
            ("admin.new_user", "admin.edit_user", "admin.deactivate_user", "admin.reactivate_user",
             "admin.unlock_user", "admin.reset_password")),
    NavItem(_l("Teams"), "admin.teams_page", "admin.teams", "users", _l("Administration"),
            ("admin.new_team", "admin.edit_team")),
    NavItem(_l("Audit log"), "admin.audit_log_page", "audit.view", "file", _l("Administration")),
    NavItem(_l("API tokens"), "admin.tokens", "admin.tokens", "key", _l("Administration"),
            ("admin.create_token", "admin.revoke_token")),
    NavItem(_l("Action codes"), "admin.action_codes", "admin.workflow", "file",
            _l("Administration"),
            ("admin.create_action_code", "admin.edit_action_code", "admin.update_action_code",
             "admin.toggle_action_code")),
    NavItem(_l("Case statuses"), "admin.statuses", "admin.workflow", "activity",
            _l("Administration"),
            ("admin.create_status_value", "admin.edit_status_value",
             "admin.update_status_value", "admin.toggle_status_value",
             "admin.delete_status_value")),
    NavItem(_l("Agencies"), "placements.agencies", "admin.workflow", "users",
            _l("Administration"), ("placements.create_agency",)),
    NavItem(_l("Contact rules"), "admin.contact_rules", "admin.workflow", "shield",
            _l("Administration"),
            ("admin.save_contact_rules",)),
    NavItem(_l("Notifications"), "notifications.index", "portal.access", "message", _l("Overview")),
)


def navigation() -> list[tuple[str, list[dict]]]:
    """Sections of nav links for the current user: [(section, [{label, url, icon, active}])]."""
    sections: dict[str, list[dict]] = {}
    current = request.endpoint or ""
    for item in NAV_ITEMS:
        if item.endpoint not in current_app.view_functions or not can(item.permission):
            continue
        sections.setdefault(str(item.section), []).append({
            "label": str(item.label),
            "url": url_for(item.endpoint),
            "icon": item.icon,
            "active": current == item.endpoint or current in item.also_active_on,
        })
    return list(sections.items())


