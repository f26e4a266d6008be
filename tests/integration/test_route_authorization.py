"""Authorisation by object: nobody opens or changes another team's case (or visit, call,
notification, agent route) by guessing its id, and no role reaches another role's objects.

Every URL rule of the app with a URL variable has an entry in ``ROUTES`` (or in ``PUBLIC``, with
the reason): the object it is aimed at, who must be refused (an agent of the other team, a field
agent for another's visit, a supervisor of team B for team A's objects, an agent for ops and
admin objects, a token of another user or another scope) and who owns it. Each refusal must be
403 or 404 (no 2xx, no redirect) and leave the database as it was (every table's rows, hashed);
each owner must get through, so a refusal cannot come from a wrong URL or body. A new rule with
a variable and no entry fails ``test_every_rule_with_a_variable_is_mapped``.

``BODY_ROUTES`` does the same for the routes that take a customer or agent id in the form, the
query string or a JSON body (dial, manual call, visit planning, map filters). ``LISTS`` and
``API_LISTS`` check that searches, the map, the review queue, the read API's lists and GraphQL
do not list what the viewer may not open.
Every refused browser request is sent twice, as a page and as an HTMX partial.

One world for the module (two teams, their agents, field agents and supervisors, an agent
without a team, ops, admin, cases, visits, calls, notifications, tokens, runs), built once; the
refused requests change nothing, and each owner's request uses an object of its own.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import pytest
from redis import Redis
from sqlalchemy import text

from portal import clock
from portal.permissions.scopes import OBJECT_RULES, UNOWNED_URL_VARIABLES
from tests.conftest import csrf_token_from
from tests.database import SEEDED_TABLES
from tests.factories import working_hour

# --- the mapping -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """A route aimed at one object: URL values (names of world objects, resolved at run time),
    the principals refused and the principals that own it (2xx/3xx, or 422 where the owner's
    request reaches the object but the body is refused on purpose)."""

    values: dict[str, str]
    refused: tuple[str, ...]
    owners: tuple[str, ...] = ()
    form: dict[str, str] = field(default_factory=dict)
    json: dict | None = None
    query: str = ""
    owner_status: tuple[int, ...] = (200, 201, 204, 302, 303)


CASE_A = {"cif": "cif_a"}
TEAM_B_CASE_WORKERS = ("agent_b", "field_b", "sup_b", "loner", "ops", "admin")
API_INTRUDERS = ("token:agent_b", "token:field_b", "session:agent_b", "session:sup_b",
                 "token:field_a_locations", "token:ops")
ADMIN_INTRUDERS = ("agent_a", "field_a", "sup_a", "ops")
# users and teams: an auditor reads the audit log and changes nothing
ACCOUNT_INTRUDERS = (*ADMIN_INTRUDERS, "auditor")
OPS_ACTION_INTRUDERS = ("agent_a", "field_a", "sup_a", "admin")
OPS_VIEW_INTRUDERS = ("agent_a", "field_a", "sup_a")
# placing and recalling: another team's supervisor, the agents, admins and ops
PLACEMENT_INTRUDERS = ("sup_b", "agent_a", "field_a", "agent_b", "admin", "ops")
# strategies are bank-wide: the agents, ops and the auditor never reach them; admins only read
STRATEGY_READ_INTRUDERS = ("agent_a", "field_a", "agent_b", "ops", "auditor")
STRATEGY_INTRUDERS = (*STRATEGY_READ_INTRUDERS, "admin")
# the owner's change may be refused by the version's state (activated: 409; no step: 422)
STRATEGY_OWNER_STATUS = (200, 302, 409, 422)
TEMPLATE_INTRUDERS = ("agent_a", "field_a", "ops", "auditor")


def api_case(path_name: str) -> Check:
    return Check(CASE_A, API_INTRUDERS, ("token:agent_a", "session:sup_a", "token:field_a",
                                         "token:system"))


ROUTES: dict[tuple[str, str], Check] = {
    # case view and its HTMX partials
    ("cases.view", "GET"): Check(CASE_A, TEAM_B_CASE_WORKERS, ("agent_a", "field_a", "sup_a")),
    ("cases.panel", "GET"): Check({**CASE_A, "name": "timeline"}, TEAM_B_CASE_WORKERS,
                                  ("agent_a", "sup_a")),
    ("payments.case_live", "GET"): Check(CASE_A, TEAM_B_CASE_WORKERS, ("agent_a", "sup_a")),
    ("field.customer_location", "GET"): Check(CASE_A, TEAM_B_CASE_WORKERS,
                                              ("agent_a", "field_a", "sup_a")),
    ("field.customer_location_script", "GET"): Check(CASE_A, TEAM_B_CASE_WORKERS,
                                                     ("agent_a", "field_a", "sup_a")),
    ("cases.action_form", "GET"): Check(CASE_A, TEAM_B_CASE_WORKERS, ("agent_a", "field_a")),
    ("cases.record_action", "POST"): Check(
        CASE_A, TEAM_B_CASE_WORKERS, ("agent_a",),
        form={"action_code_id": "code_call", "notes": "called"}),
    ("cases.contact_new", "GET"): Check({**CASE_A, "kind": "phone"}, TEAM_B_CASE_WORKERS,
                                        ("agent_a",)),
    ("cases.contact_create", "POST"): Check(
        {**CASE_A, "kind": "phone"}, TEAM_B_CASE_WORKERS, ("agent_a",),
        form={"number": "0987000111", "type": "MOBILE"}),
    ("cases.contact_edit", "GET"): Check(
        {**CASE_A, "kind": "phone", "contact_id": "phone_a"}, TEAM_B_CASE_WORKERS,
        ("agent_a",)),
    ("cases.contact_update", "POST"): Check(
        {**CASE_A, "kind": "email", "contact_id": "email_a"}, TEAM_B_CASE_WORKERS,
        ("agent_a",), form={"address": "owner@example.vn", "type": "PERSONAL"}),
    ("cases.status_form", "GET"): Check({**CASE_A, "kind": "processing_state"},
                                        TEAM_B_CASE_WORKERS, ("agent_a", "field_a")),
    ("cases.set_status", "POST"): Check(
        {**CASE_A, "kind": "customer_status"}, TEAM_B_CASE_WORKERS, ("agent_a",),
        form={"value_id": "status_refuses", "reason": "KH từ chối"}),
    # refresh one customer now (no source configured here: the owner's panel says so)
    ("cases.refresh_customer", "POST"): Check(CASE_A, TEAM_B_CASE_WORKERS,
                                              ("agent_a", "sup_a")),
    ("cases.master_note_form", "GET"): Check(CASE_A, TEAM_B_CASE_WORKERS, ("agent_a",)),
    ("cases.save_master_note", "POST"): Check(CASE_A, TEAM_B_CASE_WORKERS, ("agent_a",),
                                              form={"note": "Ghi chú"}),
    # payment plans (a plan refused on purpose: the owner reaches the case, 422)
    ("cases.plans_panel", "GET"): Check(CASE_A, TEAM_B_CASE_WORKERS, ("agent_a", "sup_a")),
    ("cases.plan_form", "GET"): Check(CASE_A, TEAM_B_CASE_WORKERS, ("agent_a", "field_a")),
    ("cases.create_plan", "POST"): Check(
        CASE_A, TEAM_B_CASE_WORKERS, ("agent_a",),
        form={"due_date": "2000-01-01", "amount": "1"}, owner_status=(422,)),
    ("cases.cancel_plan", "POST"): Check(CASE_A, TEAM_B_CASE_WORKERS, ("agent_a",),
                                         form={"cancel_reason": "x"}, owner_status=(422,)),
    ("cases.contact_flag", "POST"): Check(
        {**CASE_A, "kind": "phone", "contact_id": "phone_a"}, TEAM_B_CASE_WORKERS,
        ("agent_a",), form={"flag": "is_verified", "value": "1"}),
    # reference persons of the case and their contacts (an id of another customer's person
    # under one's own CIF: tests/integration/test_reference_persons.py)
    ("cases.reference_new", "GET"): Check(CASE_A, TEAM_B_CASE_WORKERS, ("agent_a",)),
    ("cases.reference_create", "POST"): Check(
        CASE_A, TEAM_B_CASE_WORKERS, ("agent_a",),
        form={"relationship_type": "spouse", "name": "Trần Thị Bình"}),
    ("cases.reference_edit", "GET"): Check({**CASE_A, "ref_id": "ref_a"}, TEAM_B_CASE_WORKERS,
                                           ("agent_a",)),
    ("cases.reference_update", "POST"): Check(
        {**CASE_A, "ref_id": "ref_a"}, TEAM_B_CASE_WORKERS, ("agent_a",),
        form={"relationship_type": "sibling", "name": "Trần Văn Bảo"}),
    ("cases.reference_retire", "POST"): Check({**CASE_A, "ref_id": "ref_a_retire"},
                                              TEAM_B_CASE_WORKERS, ("agent_a",)),
    ("cases.reference_reinstate", "POST"): Check({**CASE_A, "ref_id": "ref_a_retired"},
                                                 TEAM_B_CASE_WORKERS, ("agent_a",)),
    ("cases.reference_contact_new", "GET"): Check(
        {**CASE_A, "ref_id": "ref_a", "kind": "phone"}, TEAM_B_CASE_WORKERS, ("agent_a",)),
    ("cases.reference_contact_create", "POST"): Check(
        {**CASE_A, "ref_id": "ref_a", "kind": "phone"}, TEAM_B_CASE_WORKERS, ("agent_a",),
        form={"number": "0987000222", "type": "MOBILE"}),
    ("cases.reference_contact_edit", "GET"): Check(
        {**CASE_A, "ref_id": "ref_a", "kind": "phone", "contact_id": "ref_phone_a"},
        TEAM_B_CASE_WORKERS, ("agent_a",)),
    ("cases.reference_contact_update", "POST"): Check(
        {**CASE_A, "ref_id": "ref_a", "kind": "phone", "contact_id": "ref_phone_a"},
        TEAM_B_CASE_WORKERS, ("agent_a",), form={"number": "0987000333", "type": "MOBILE"}),
    ("cases.reference_contact_flag", "POST"): Check(
        {**CASE_A, "ref_id": "ref_a", "kind": "phone", "contact_id": "ref_phone_a"},
        TEAM_B_CASE_WORKERS, ("agent_a",), form={"flag": "is_verified", "value": "1"}),
    # the case's assignment card: its history (whoever sees the case), reassigning it (a
    # supervisor of the case's team; the owner's request gives it to its holder: no change)
    ("assignment.case_card", "GET"): Check(CASE_A, TEAM_B_CASE_WORKERS, ("agent_a", "sup_a")),
    ("assignment.reassign_case", "POST"): Check(
        CASE_A, ("agent_a", "field_a", *TEAM_B_CASE_WORKERS), ("sup_a",),
        form={"agent": "agent_a", "reason": "Chuyển"}),
    # read API (tokens of another user or another scope, sessions of the other team)
    **{(f"api.{name}", "GET"): api_case(name) for name in (
        "get_customer", "get_actions", "get_cards", "get_case", "get_collaterals",
        "get_contacts", "get_loans", "get_payments", "get_promises")},
    # calls: the agent's own
    ("calls.widget", "GET"): Check({"call_id": "call_a"}, ("agent_b", "field_b", "sup_b"),
                                   ("agent_a",)),
    ("calls.hangup", "POST"): Check({"call_id": "call_a"}, ("agent_b", "field_b", "sup_b"),
                                    ("agent_a",)),
    ("calls.outcome", "POST"): Check(
        {"call_id": "call_a"}, ("agent_b", "field_b", "sup_b"), ("agent_a",),
        form={"action_code_id": "code_call", "notes": "spoke"}),
    # notifications: the recipient's alone (a colleague or their supervisor neither)
    ("notifications.open_notification", "GET"): Check(
        {"notification_id": "notification_a"}, ("agent_b", "sup_a", "field_a", "admin"),
        ("agent_a",)),
    ("notifications.mark_read", "POST"): Check(
        {"notification_id": "notification_a"}, ("agent_b", "sup_a", "field_a", "admin"),
        ("agent_a",)),
    # field: a field agent's own visits; a supervisor their teams' visits and agents
    ("field.outcome", "POST"): Check(
        {"visit_id": "visit_a_outcome"}, ("field_b", "agent_a", "sup_b"), ("field_a",),
        form={"action_code_id": "code_visit", "notes": "met"}),
    ("field.review_visit", "POST"): Check(
        {"visit_id": "visit_a_review"}, ("sup_b", "field_a", "agent_a"), ("sup_a",),
        form={"decision": "approve", "note": "ok"}),
    ("api.checkin", "POST"): Check(
        {"visit_id": "visit_a_planned"}, ("token:field_b", "session:field_b", "token:agent_a",
                                          "token:field_a_locations"),
        ("token:field_a",), json={"lat": 10.7769, "lon": 106.7009, "accuracy_m": 10}),
    ("field.agent_route", "GET"): Check({"agent_id": "field_a"},
                                        ("sup_b", "agent_a", "field_b", "field_a"), ("sup_a",)),
    ("field.route_script", "GET"): Check({"agent_id": "field_a"},
                                         ("sup_b", "agent_a", "field_b", "field_a"), ("sup_a",)),
    # documents: they go with their customer's case; a supervisor sees them, uploads none
    ("documents.card", "GET"): Check(CASE_A, TEAM_B_CASE_WORKERS,
                                     ("agent_a", "field_a", "sup_a")),
    ("documents.upload", "POST"): Check(  # (no file: refused, back to the case with why)
        CASE_A, (*TEAM_B_CASE_WORKERS, "sup_a", "auditor"), ("agent_a", "field_a"),
        form={"kind": "receipt"}, owner_status=(302,)),
    ("documents.view", "GET"): Check({"document_id": "document_a"},
                                     (*TEAM_B_CASE_WORKERS, "auditor"),
                                     ("agent_a", "field_a", "sup_a")),
    ("documents.download", "GET"): Check({"document_id": "document_a"},
                                         (*TEAM_B_CASE_WORKERS, "auditor"),
                                         ("agent_a", "field_a", "sup_a")),
    ("documents.visit_photo", "POST"): Check(  # (no file: refused with a message, back)
        {"visit_id": "visit_a_outcome"}, ("field_b", "agent_a", "sup_a", "sup_b"),
        ("field_a",), form={}),
    # admin objects
    ("admin.edit_action_code", "GET"): Check({"code_id": "code_call"}, ADMIN_INTRUDERS,
                                             ("admin",)),
    ("admin.update_action_code", "POST"): Check({"code_id": "code_call"}, ADMIN_INTRUDERS,
                                                form={"label": "Hacked"}),
    ("admin.toggle_action_code", "POST"): Check({"code_id": "code_call"}, ADMIN_INTRUDERS),
    ("admin.edit_status_value", "GET"): Check({"value_id": "status_refuses"}, ADMIN_INTRUDERS,
                                              ("admin",)),
    ("admin.update_status_value", "POST"): Check({"value_id": "status_refuses"},
                                                 ADMIN_INTRUDERS, form={"label_vi": "Hacked"}),
    ("admin.toggle_status_value", "POST"): Check({"value_id": "status_refuses"},
                                                 ADMIN_INTRUDERS),
    ("admin.delete_status_value", "POST"): Check({"value_id": "status_refuses"},
                                                 ADMIN_INTRUDERS),
    ("admin.revoke_token", "POST"): Check({"token_id": "token_spare"}, ADMIN_INTRUDERS,
                                          ("admin",)),
    ("admin.edit_user", "GET"): Check({"user_id": "agent_b"}, ACCOUNT_INTRUDERS, ("admin",)),
    ("admin.edit_user", "POST"): Check({"user_id": "agent_b"}, ACCOUNT_INTRUDERS,
                                       form={"full_name": "Hacked", "role": "admin"}),
    ("admin.deactivate_user", "POST"): Check({"user_id": "agent_b"}, ACCOUNT_INTRUDERS),
    ("admin.reactivate_user", "POST"): Check({"user_id": "agent_b"}, ACCOUNT_INTRUDERS),
    ("admin.unlock_user", "POST"): Check({"user_id": "agent_b"}, ACCOUNT_INTRUDERS),
    ("admin.reset_password", "POST"): Check({"user_id": "agent_b"}, ACCOUNT_INTRUDERS),
    ("admin.edit_team", "GET"): Check({"team_id": "team_b"}, ACCOUNT_INTRUDERS, ("admin",)),
    ("admin.edit_team", "POST"): Check({"team_id": "team_b"}, ACCOUNT_INTRUDERS,
                                       form={"name": "Hacked"}),
    # ops objects
    ("ops.run_detail", "GET"): Check({"run_id": "run"}, OPS_VIEW_INTRUDERS, ("ops", "admin")),
    ("ops.retry_run", "POST"): Check({"run_id": "run"}, OPS_ACTION_INTRUDERS),
    ("ops.decide_moves", "POST"): Check({"run_id": "run"}, OPS_ACTION_INTRUDERS,
                                        form={"decision": "reject"}),
    ("ops.run_now", "POST"): Check({"name": "W4"}, OPS_ACTION_INTRUDERS),
    ("ops.full_resync", "POST"): Check({"name": "W4"}, OPS_ACTION_INTRUDERS),
    ("ops.pause", "POST"): Check({"name": "W4"}, OPS_ACTION_INTRUDERS, form={"reason": "x"}),
    ("ops.resume", "POST"): Check({"name": "W4"}, OPS_ACTION_INTRUDERS, form={"reason": "x"}),
    ("ops.force_breaker", "POST"): Check({"name": "W4"}, OPS_ACTION_INTRUDERS,
                                         form={"state": "open", "reason": "x"}),
    # feature flags: ops and admins switch them (issue 24), nobody else
    ("ops.set_flag", "POST"): Check({"name": "strategies"}, ("agent_a", "field_a", "sup_a",
                                                            "auditor"), ("ops", "admin"),
                                    form={"strategies-mode": "all"}),
    ("payments.resolve_discrepancy", "POST"): Check(
        {"discrepancy_id": "discrepancy"}, OPS_ACTION_INTRUDERS,
        form={"resolution": "accepted", "note": "x"}),
    ("payments.camt_import_result", "GET"): Check({"import_id": "camt_import"},
                                                  OPS_VIEW_INTRUDERS, ("ops", "admin")),
    # print batches (letters): ops reads and hands over; a batch's files are named, never paths
    ("letters.download", "GET"): Check({"batch_id": "print_batch", "name": "manifest.csv"},
                                       OPS_VIEW_INTRUDERS),
    ("letters.hand_over", "POST"): Check({"batch_id": "print_batch"}, OPS_ACTION_INTRUDERS),
    # placements: a supervisor places and recalls their teams' cases; agencies are admins'
    ("placements.case_card", "GET"): Check(CASE_A, TEAM_B_CASE_WORKERS, ("agent_a", "sup_a")),
    ("placements.place_form", "GET"): Check(CASE_A, PLACEMENT_INTRUDERS, ("sup_a",)),
    ("placements.place", "POST"): Check(
        CASE_A, PLACEMENT_INTRUDERS, ("sup_a",),
        form={"agency_id": "agency", "expected_return_on": "in_3_days", "reason": "Khởi kiện"}),
    ("placements.recall_form", "GET"): Check({"cif": "cif_a_placed"}, PLACEMENT_INTRUDERS,
                                             ("sup_a",)),
    ("placements.recall", "POST"): Check(
        {"cif": "cif_a_placed"}, PLACEMENT_INTRUDERS, ("sup_a",),
        form={"placement_id": "placement_a", "outcome": "recalled", "end_reason": "Thu hồi"}),
    ("placements.toggle_agency", "POST"): Check({"agency_id": "agency_spare"}, ADMIN_INTRUDERS,
                                                ("admin",)),
    # strategies: bank-wide, supervisors build them (any team's supervisor), admins read them
    ("strategies.detail", "GET"): Check({"strategy_id": "strategy"}, STRATEGY_READ_INTRUDERS,
                                        ("sup_a", "sup_b", "admin")),
    ("strategies.simulate", "GET"): Check({"strategy_id": "strategy"}, STRATEGY_READ_INTRUDERS,
                                          ("sup_a", "admin")),
    ("strategies.start_draft", "POST"): Check({"strategy_id": "strategy"},
                                              STRATEGY_INTRUDERS, ("sup_a",)),
    ("strategies.add_segment", "POST"): Check(
        {"strategy_id": "strategy"}, STRATEGY_INTRUDERS, ("sup_a",), form={"name": "Muộn"},
        owner_status=STRATEGY_OWNER_STATUS),
    ("strategies.add_challenger", "POST"): Check(
        {"strategy_id": "strategy"}, STRATEGY_INTRUDERS, ("sup_a",),
        form={"name": "Thử", "split_pct": "10"}, owner_status=STRATEGY_OWNER_STATUS),
    ("strategies.activate", "POST"): Check({"strategy_id": "strategy"}, STRATEGY_INTRUDERS,
                                           ("sup_a",), owner_status=STRATEGY_OWNER_STATUS),
    ("strategies.add_step", "POST"): Check(
        {"segment_id": "strategy_segment"}, STRATEGY_INTRUDERS, ("sup_a",),
        form={"key": "dpd", "at_value": "5", "action": "call", "priority_weight": "10"},
        owner_status=STRATEGY_OWNER_STATUS),
    ("strategies.remove_step", "POST"): Check({"step_id": "strategy_step"}, STRATEGY_INTRUDERS,
                                              ("sup_a",), owner_status=STRATEGY_OWNER_STATUS),
    ("strategies.remove_segment", "POST"): Check(
        {"segment_id": "strategy_spare_segment"}, STRATEGY_INTRUDERS, ("sup_a",),
        owner_status=STRATEGY_OWNER_STATUS),
    ("strategies.remove_challenger", "POST"): Check(
        {"variant_id": "strategy_challenger"}, STRATEGY_INTRUDERS, ("sup_a",),
        owner_status=STRATEGY_OWNER_STATUS),
    # messages (issue 23): templates are supervisors' and admins'; a one-off message goes with
    # its case; a failed message is retried by ops
    ("messages.edit_template", "GET"): Check({"template_id": "template_a"}, TEMPLATE_INTRUDERS,
                                             ("sup_a", "admin")),
    ("messages.update_template", "POST"): Check(
        {"template_id": "template_a"}, TEMPLATE_INTRUDERS, ("sup_a",),
        form={"name": "Nhắc nợ", "body_vi": "Kính gửi {customer_name}", "body_en": "Dear"}),
    ("messages.toggle_template", "POST"): Check({"template_id": "template_spare"},
                                                TEMPLATE_INTRUDERS, ("admin",)),
    ("messages.send_card", "GET"): Check(CASE_A, TEAM_B_CASE_WORKERS, ("agent_a", "sup_a")),
    ("messages.send_preview", "POST"): Check(CASE_A, TEAM_B_CASE_WORKERS, ("agent_a",),
                                             form={"template_id": "template_a"}),
    ("messages.send", "POST"): Check(CASE_A, TEAM_B_CASE_WORKERS, ("agent_a",), form={},
                                     owner_status=(422,)),
    ("cases.contact_messages_opt_out", "POST"): Check(
        {**CASE_A, "kind": "phone", "contact_id": "phone_a"}, TEAM_B_CASE_WORKERS,
        ("agent_a",), form={"value": "1"}),
    ("messages_ops.retry", "POST"): Check({"message_id": "message_failed"},
                                          OPS_ACTION_INTRUDERS, ("ops",)),
}

# Rules with a variable that anyone may call, and why.
PUBLIC: dict[str, str] = {
    "static": "static files (CSS, JS, vendor libraries): public by design",
    "pay.page": "a customer's pay link: its signed, expiring token is the permission",
    "pay.image": "the VietQR image of a pay link: its signed, expiring token is the permission",
}

# Routes taking an object id in the form, query string or JSON body instead of the URL.
BODY_ROUTES: dict[tuple[str, str], Check] = {
    ("calls.dial", "POST"): Check({}, ("agent_b", "field_b"), (),
                                  form={"cif": "cif_a", "phone_id": "phone_a"}),
    ("calls.manual_form", "GET"): Check({}, ("agent_b", "field_b"), ("agent_a",),
                                        query="cif=cif_a&phone_id=phone_a"),
    ("calls.manual_log", "POST"): Check(
        {}, ("agent_b", "field_b"), ("agent_a",),
        form={"cif": "cif_a", "phone_id": "phone_a", "direction": "outbound",
              "action_code_id": "code_call", "duration_minutes": "2", "notes": "x"}),
    ("field.plan_own", "POST"): Check({}, ("field_b",), ("field_a",),
                                      form={"cif": "cif_a", "notes": "x"}),
    ("field.plan", "POST"): Check({}, ("sup_b",), ("sup_a",),
                                  form={"cif": "cif_a", "agent_id": "field_a",
                                        "planned_for": "tomorrow"}),
    ("api.plan_visit", "POST"): Check({}, ("token:field_b",), ("token:field_a",),
                                      json={"cif": "cif_a", "planned_for": "in_3_days"}),
    ("field.map_data", "GET"): Check({}, ("sup_b",), ("sup_a",), query="team=team_a"),
    ("field.map", "GET"): Check({}, ("sup_b",), ("sup_a",), query="agent=field_a"),
}

# Lists and searches: what the viewer may not open is not listed either (the owner sees it).
LISTS: list[tuple[str, str, str, str]] = [  # (url, viewer, owner, what must stay hidden)
    ("/cases/search?q=CIFAUTHZA", "agent_b", "agent_a", "Khach Hang AAA"),
    ("/cases/search?q=Khach+Hang", "field_b", "field_a", "Khach Hang AAA"),
    ("/cases/search?bucket=31-60", "sup_b", "sup_a", "Khach Hang AAA"),
    ("/field/map?team=all", "sup_b", "sup_a", "User FIELD_A"),
    ("/field/map/data?team=all&customers=1", "sup_b", "sup_a", "CIFAUTHZA"),
    ("/field/reviews", "sup_b", "sup_a", "Khach Hang AAA"),
]


# --- the world -----------------------------------------------------------------------------------


@dataclass
class World:
    ids: dict[str, object]
    users: dict[str, int]
    tokens: dict[str, str]
    callers: dict[str, object] = field(default_factory=dict)

    def resolve(self, value: str) -> str:
        days = {"tomorrow": 1, "in_3_days": 3}.get(value)
        if days:  # bank dates: a day of margin either side of UTC midnight
            return (clock.now().date() + timedelta(days=days + 1)).isoformat()
        return str(self.ids.get(value, value))


def _build(session) -> World:
    from werkzeug.security import generate_password_hash

    from portal.models import (
        Action,
        ActionCode,
        Address,
        CallRecord,
        CamtImport,
        Case,
        Customer,
        Discrepancy,
        Email,
        IntegrationRun,
        Loan,
        Notification,
        Phone,
        ReconciliationRun,
        ReferenceCustomer,
        Team,
        User,
        Visit,
    )
    from portal.permissions import tokens as api_tokens

    now = clock.now()
    today = now.date()
    pw = generate_password_hash("Passw0rd!demo", method="pbkdf2:sha256:1000")
    team_a, team_b = Team(name="Team A"), Team(name="Team B")
    session.add_all([team_a, team_b])
    session.flush()
    users = {}
    for name, role, team in [("agent_a", "agent", team_a), ("agent_b", "agent", team_b),
                             ("field_a", "field_agent", team_a),
                             ("field_b", "field_agent", team_b),
                             ("sup_a", "supervisor", team_a), ("sup_b", "supervisor", team_b),
                             ("loner", "agent", None),  # no team: a team of their own
                             ("ops", "ops", None), ("admin", "admin", None),
                             ("auditor", "auditor", None)]:
        users[name] = User(username=name, full_name=f"User {name.upper()}", role=role,
                           team_id=team.id if team else None, password_hash=pw)
    session.add_all(users.values())
    session.flush()
    team_a.supervisor_id, team_b.supervisor_id = users["sup_a"].id, users["sup_b"].id
    ids: dict[str, object] = {}
    for suffix, agent, field_agent in [("a", "agent_a", "field_a"), ("b", "agent_b", "field_b")]:
        cif = f"CIFAUTHZ{suffix.upper()}"
        ids[f"cif_{suffix}"] = cif
        session.add(Customer(cif=cif, name=f"Khach Hang {suffix.upper() * 3}",
                             national_id="079012345678",
                             source_system="T24"))
        session.flush()
        session.add(Loan(cif=cif, account_number=f"LNAUTHZ{suffix.upper()}", dpd=40,
                         bucket="31-60", product_type="PERSONAL_LOAN", source_system="T24",
                         original_amount=Decimal(100_000_000), outstanding=Decimal(80_000_000),
                         due_amount=Decimal(5_000_000), next_payment_date=today))
        session.add(Case(cif=cif, assigned_agent_id=users[agent].id,
                         assigned_field_agent_id=users[field_agent].id, max_dpd=40))
        phone = Phone(cif=cif, number="0912345678", number_e164="+84912345678",
                      type="MOBILE", source_system="T24", is_primary=True)
        email = Email(cif=cif, address=f"{suffix}@example.vn", type="PERSONAL",
                      source_system="CRM")
        address = Address(cif=cif, type="HOME", line1="1 Le Loi", district="1",
                          city="Ho Chi Minh", lat=10.7769, lon=106.7009, source_system="T24")
        session.add_all([phone, email, address])
        session.flush()
        ids[f"phone_{suffix}"], ids[f"email_{suffix}"] = phone.id, email.id
        persons = {name: ReferenceCustomer(ref_cif=f"CRM-AUTHZ{suffix.upper()}{n}",
                                           primary_cif=cif, relationship_type="spouse",
                                           name=f"Nguoi Lien Quan {n}", source_system="CRM",
                                           retired_at=now if name.endswith("retired") else None)
                   for n, name in enumerate((f"ref_{suffix}", f"ref_{suffix}_retire",
                                             f"ref_{suffix}_retired"))}
        session.add_all(persons.values())
        session.flush()
        ref_phone = Phone(ref_cif=persons[f"ref_{suffix}"].ref_cif, number="0913000111",
                          number_e164="+84913000111", type="MOBILE", source_system="CRM")
        session.add(ref_phone)
        session.flush()
        ids.update({name: row.id for name, row in persons.items()})
        ids[f"ref_phone_{suffix}"] = ref_phone.id
        pending = Action(cif=cif, agent_id=users[agent].id, type="CALL", subtype="OUTBOUND",
                         at=now, call_id=f"CALL-AUTHZ-{suffix}", source="cti")
        session.add(pending)
        session.flush()
        call = CallRecord(call_id=f"CALL-AUTHZ-{suffix}", action_id=pending.id,
                          agent_id=users[agent].id, cif=cif,
                          phone="0912345678", direction="outbound", started_at=now,
                          answered_at=now, ended_at=now, duration_s=60, source="manual")
        note = Notification(user_id=users[agent].id, kind="case_assigned", title="New case",
                            link=f"/cases/{cif}", cif=cif)
        session.add_all([call, note])
        visits = {
            "outcome": Visit(cif=cif, agent_id=users[field_agent].id, planned_for=today,
                             status="checked_in", checked_in_at=now, verification="verified",
                             address_id=address.id),
            "review": Visit(cif=cif, agent_id=users[field_agent].id, planned_for=today,
                            status="checked_in", checked_in_at=now, address_id=address.id,
                            verification="manual_pending", checkin_lat=10.8, checkin_lon=106.8),
            "planned": Visit(cif=cif, agent_id=users[field_agent].id, planned_for=today,
                             status="planned", address_id=address.id),
        }
        session.add_all(visits.values())
        session.flush()
        ids[f"call_{suffix}"], ids[f"notification_{suffix}"] = call.call_id, note.id
        for kind, visit in visits.items():
            ids[f"visit_{suffix}_{kind}"] = visit.id
    session.add(Customer(cif="CIFAUTHZFREE", name="Nobody's customer", source_system="T24"))
    codes = {"code_call": ActionCode(type="CALL", subtype="OUTBOUND", result="NO_ANSWER",
                                     label="No answer"),
             "code_visit": ActionCode(type="VISIT", subtype="HOME", result="MET",
                                      label="Met the customer", is_contact=True)}
    session.add_all(codes.values())
    run = IntegrationRun(integration="W4", kind="sync", trigger="manual", status="failed",
                         started_at=now, finished_at=now)
    recon = ReconciliationRun(integration="PAYMENTS", business_date=today, status="succeeded",
                              started_at=now)
    session.add_all([run, recon])
    session.flush()
    discrepancy = Discrepancy(run_id=recon.id, kind="missing_in_crm", entity="payment",
                              key="REF-AUTHZ")
    session.add(discrepancy)
    session.flush()
    ids.update({name: code.id for name, code in codes.items()})
    camt = CamtImport(imported_at=now, source="cli", sha256="0" * 64, size=0, kind="camt.054",
                      controls_ok=True, checks=[])
    from portal.models.print_batches import PrintBatch
    batch = PrintBatch(business_date=today, directory=f"{today.isoformat()}/authz")
    session.add_all([camt, batch])
    session.flush()
    ids.update(run=run.id, discrepancy=discrepancy.id, team_a=team_a.id, team_b=team_b.id,
               camt_import=camt.id, print_batch=batch.id)
    for name, user in users.items():
        ids[name] = user.id
    tokens = {}
    for name in ("agent_a", "agent_b", "field_a", "field_b", "ops"):
        from portal.permissions.roles import API_SCOPES, permissions_for_role

        scopes = [s for s in API_SCOPES if s in permissions_for_role(users[name].role)]
        _row, tokens[name] = api_tokens.create_token(session, name=name, scopes=scopes,
                                                     user=users[name], created_by="test")
    _row, tokens["field_a_locations"] = api_tokens.create_token(
        session, name="gps only", scopes=["api.locations"], user=users["field_a"],
        created_by="test")
    _row, tokens["system"] = api_tokens.create_token(session, name="bank system",
                                                     scopes=["api.cases"], user=None,
                                                     created_by="test")
    spare, _raw = api_tokens.create_token(session, name="spare", scopes=["api.profile"],
                                          user=None, created_by="test")
    ids["token_spare"] = spare.id
    from portal.models import Agency, Placement

    agency = Agency(code="LEGAL", name="Phòng Pháp chế", kind="legal")
    spare_agency = Agency(code="SPARE", name="Spare agency", kind="agency")
    session.add_all([agency, spare_agency])
    session.add(Customer(cif="CIFAUTHZAP", name="Khach Hang Placed", source_system="T24"))
    session.flush()
    placed_case = Case(cif="CIFAUTHZAP", assigned_agent_id=users["agent_a"].id)
    session.add(placed_case)
    session.flush()
    placement = Placement(case_id=placed_case.id, agency_id=agency.id, placed_on=today,
                          placed_at=now, expected_return_on=today, amount=Decimal(0),
                          reason="x", placed_by_id=users["sup_a"].id)
    session.add(placement)
    session.flush()
    ids.update(agency=agency.id, agency_spare=spare_agency.id, cif_a_placed="CIFAUTHZAP",
               placement_a=placement.id)

    from portal.strategies import operations as strategy_operations

    strategy = strategy_operations.create_strategy(session, users["sup_a"], "AUTHZ", "Sớm")
    segment = strategy_operations.add_segment(session, users["sup_a"], strategy.versions[0],
                                              "Sớm", [{"field": "dpd", "op": "le",
                                                       "value": "30"}], [])
    step = strategy_operations.add_step(session, users["sup_a"], segment,
                                        {"key": "dpd", "at_value": "3", "action": "visit"})
    spare_segment = strategy_operations.add_segment(session, users["sup_a"],
                                                    strategy.versions[0], "Dự phòng", [], [])
    challenger = strategy_operations.add_challenger(session, users["sup_a"],
                                                    strategy.versions[0], "Thử", 10)
    ids.update(strategy=strategy.id, strategy_segment=segment.id, strategy_step=step.id,
               strategy_spare_segment=spare_segment.id, strategy_challenger=challenger.id)
    from portal.models import Message, MessageTemplate

    templates = {name: MessageTemplate(code=code, channel="sms", name=code, body_vi="Xin chào",
                                       body_en="Hello")
                 for name, code in (("template_a", "SMS_AUTHZ"), ("template_spare", "SMS_SPARE"))}
    session.add_all(templates.values())
    failed = Message(cif=ids["cif_a"], channel="sms", status="failed", body="x",
                     business_date=today, failed_at=now, attempts=5, status_detail="down")
    session.add(failed)
    session.flush()
    ids.update({name: t.id for name, t in templates.items()}, message_failed=failed.id)

    from portal.documents import operations as documents
    from tests.documents_support import small_pdf

    for suffix, agent in (("a", "agent_a"), ("b", "agent_b")):
        document = documents.add_document(
            session, users[agent], cif=ids[f"cif_{suffix}"], kind="receipt",
            account_number=None, stream=io.BytesIO(small_pdf()), filename="bien-lai.pdf",
            now=now, max_bytes=100_000)
        ids[f"document_{suffix}"] = document.id
    ids["status_refuses"] = session.scalar(text(
        "SELECT id FROM status_values WHERE kind = 'customer_status' AND code = 'refuses'"))
    session.commit()
    return World(ids, {name: user.id for name, user in users.items()}, tokens)


def _truncate(session) -> None:
    from portal.extensions import db as _db

    tables = ", ".join(f'"{t.name}"' for t in _db.metadata.sorted_tables
                       if t.name not in SEEDED_TABLES)  # the migrations' rows stay
    session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    session.commit()


@pytest.fixture(scope="module")
def frozen_working_hour(app):
    """The module's clock stands at a working hour (tests.factories.working_hour): the owners'
    calls, visits and outcomes are inside the contact window whatever TEST_CLOCK says (what is
    refused outside it is tests/integration/test_contact_rules.py's)."""
    previous = app.config.get("FROZEN_NOW")
    with app.app_context():
        app.config["FROZEN_NOW"] = working_hour()
    yield app.config["FROZEN_NOW"]
    app.config["FROZEN_NOW"] = previous


@pytest.fixture(scope="module")
def world(app, frozen_working_hour):
    from portal.extensions import db as _db

    redis = Redis.from_url(app.config["REDIS_URL"])
    redis.flushdb()
    with app.app_context():
        _truncate(_db.session)
        built = _build(_db.session)
        _db.session.remove()
    yield built
    with app.app_context():
        _db.session.remove()
        _truncate(_db.session)
    redis.flushdb()
    redis.close()


# --- requests --------------------------------------------------------------------------------


class Caller:
    """A principal: "agent_a" (a browser session), "session:agent_a" (the same, on the API) or
    "token:agent_a" (a Bearer token)."""

    def __init__(self, app, world: World, principal: str):
        self.kind, _, self.name = principal.rpartition(":")
        self.client = app.test_client()
        self.headers = {}
        if self.kind == "token":
            self.headers["Authorization"] = f"Bearer {world.tokens[self.name]}"
            return
        with self.client.session_transaction() as session:
            session["_user_id"] = str(world.users[self.name])
            session["_fresh"] = True
        self.headers["X-CSRFToken"] = csrf_token_from(
            self.client.get("/auth/login").get_data(as_text=True))

    def send(self, method: str, url: str, check: Check, world: World, htmx: bool = False):
        kwargs = {"headers": dict(self.headers, **({"HX-Request": "true"} if htmx else {}))}
        if check.json is not None:
            kwargs["json"] = {k: world.resolve(v) if isinstance(v, str) else v
                              for k, v in check.json.items()}
        elif method != "GET":
            kwargs["data"] = {k: world.resolve(v) for k, v in check.form.items()}
        return self.client.open(url, method=method, **kwargs)


def caller(app, world, principal) -> Caller:
    if principal not in world.callers:
        world.callers[principal] = Caller(app, world, principal)
    return world.callers[principal]


def url_for_check(app, endpoint: str, method: str, check: Check, world: World) -> str:
    values = {name: world.resolve(value) for name, value in check.values.items()}
    with app.test_request_context():
        from flask import url_for

        url = url_for(endpoint, **values, _method=method)
    if check.query:
        url += "?" + re.sub(r"(?<==)(\w+)", lambda m: world.resolve(m.group(1)), check.query)
    return url


def snapshot(app) -> dict[str, tuple]:
    """Every table's row count and a hash of its rows (api_tokens: count only, since using a
    token stamps its last_used_at)."""
    from portal.extensions import db as _db

    parts = []
    for table in _db.metadata.sorted_tables:
        content = "''" if table.name == "api_tokens" else \
            "md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
        parts.append(f"SELECT '{table.name}', count(*), {content} FROM \"{table.name}\" t")
    with app.app_context():
        rows = _db.session.execute(text(" UNION ALL ".join(parts))).all()
        _db.session.remove()
    return {name: (count, digest) for name, count, digest in rows}


def _refused_cases(table):
    return [pytest.param(endpoint, method, principal, id=f"{endpoint}-{method}-{principal}")
            for (endpoint, method), check in table.items() for principal in check.refused]


def _owner_cases(table):
    return [pytest.param(endpoint, method, principal, id=f"{endpoint}-{method}-{principal}")
            for (endpoint, method), check in table.items() for principal in check.owners]


def _assert_refused(app, world, table, endpoint, method, principal):
    check = table[(endpoint, method)]
    url = url_for_check(app, endpoint, method, check, world)
    who = caller(app, world, principal)
    for htmx in (False, True) if who.kind != "token" else (False,):  # page and HTMX partial
        before = snapshot(app)
        response = who.send(method, url, check, world, htmx=htmx)
        after = snapshot(app)
        assert response.status_code in (403, 404), (
            f"{principal} {method} {url} (htmx={htmx}) → {response.status_code} "
            f"{response.headers.get('Location', '')} {response.headers.get('HX-Redirect', '')}"
            f" {response.get_data(as_text=True)[:300]}")
        changed = {t for t in before if before[t] != after[t]}
        assert not changed, f"{principal} {method} {url} changed {sorted(changed)}"


def _assert_owner_gets_through(app, world, table, endpoint, method, principal):
    check = table[(endpoint, method)]
    url = url_for_check(app, endpoint, method, check, world)
    response = caller(app, world, principal).send(method, url, check, world)
    response.close()  # (a file sent as the body, a document, is closed with its response)
    location = response.headers.get("Location", "")
    assert response.status_code in check.owner_status and "/auth/login" not in location, (
        f"{principal} {method} {url} → {response.status_code} {location} "
        f"{response.get_data(as_text=True)[:300]}")


# --- tests -------------------------------------------------------------------------------------


def rules_with_variables(app) -> set[tuple[str, str]]:
    return {(rule.endpoint, method) for rule in app.url_map.iter_rules() if rule.arguments
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def unmapped(app) -> set[tuple[str, str]]:
    return {(e, m) for e, m in rules_with_variables(app) if e not in PUBLIC} - set(ROUTES)


def variables_without_a_rule(app) -> set[str]:
    names = {name for rule in app.url_map.iter_rules() for name in rule.arguments}
    return names - set(OBJECT_RULES) - set(UNOWNED_URL_VARIABLES)


def test_the_mapping_check_finds_a_new_rule():
    """The check itself can fail: a rule with a variable that ROUTES does not name."""
    from flask import Flask

    app = Flask(__name__)
    app.add_url_rule("/cases/<cif>", "cases.view", lambda cif: cif)
    app.add_url_rule("/receipts/<int:receipt_id>", "receipts.show", lambda receipt_id: "")
    assert unmapped(app) == {("receipts.show", "GET")}
    assert variables_without_a_rule(app) == {"receipt_id"}


def test_every_rule_with_a_variable_is_mapped(app):
    """A new rule with a URL variable must be added to ROUTES (or PUBLIC, with the reason)."""
    assert unmapped(app) == set(), "rules with a variable missing from ROUTES"
    assert set(ROUTES) - rules_with_variables(app) == set(), \
        "ROUTES names rules the app does not have"


def test_every_url_variable_has_an_object_rule_or_a_reason(app):
    assert variables_without_a_rule(app) == set()


@pytest.mark.parametrize(("endpoint", "method", "principal"), _refused_cases(ROUTES))
def test_refused_and_nothing_changes(app, world, endpoint, method, principal):
    _assert_refused(app, world, ROUTES, endpoint, method, principal)


@pytest.mark.parametrize(("endpoint", "method", "principal"), _refused_cases(BODY_ROUTES))
def test_ids_in_the_body_are_refused_too(app, world, endpoint, method, principal):
    _assert_refused(app, world, BODY_ROUTES, endpoint, method, principal)


GQL_ONE = '{ customer(cif: "CIFAUTHZA") { name loans { accountNumber } } }'
GQL_MANY = '{ customers(cifs: ["CIFAUTHZA", "CIFAUTHZB"]) { name } }'
API_LISTS: list[tuple[str, dict | None, str, str, str]] = [  # url, GraphQL body, viewer, ...
    ("/api/v1/customers?limit=200", None, "token:agent_b", "token:agent_a", "CIFAUTHZA"),
    ("/api/v1/cases?limit=200", None, "token:field_b", "token:agent_a", "CIFAUTHZA"),
    ("/api/v1/loans?limit=200", None, "session:sup_b", "session:sup_a", "LNAUTHZA"),
    ("/api/graphql", {"query": GQL_ONE}, "token:agent_b", "token:agent_a", "Khach Hang AAA"),
    ("/api/graphql", {"query": GQL_MANY}, "session:agent_b", "token:system", "Khach Hang AAA"),
]


@pytest.mark.parametrize(("url", "body", "viewer", "owner", "hidden"), API_LISTS)
def test_api_lists_and_graphql_show_only_what_the_caller_may_open(app, world, url, body,
                                                                 viewer, owner, hidden):
    def fetch(principal):
        who = caller(app, world, principal)
        if body is None:
            return who.client.get(url, headers=who.headers)
        return who.client.post(url, json=body, headers=who.headers)

    seen = fetch(owner)
    assert seen.status_code == 200 and hidden in seen.get_data(as_text=True)
    response = fetch(viewer)
    assert response.status_code in (200, 403) and hidden not in response.get_data(as_text=True)


@pytest.mark.parametrize(("url", "viewer", "owner", "hidden"), LISTS)
def test_lists_show_only_what_the_viewer_may_open(app, world, url, viewer, owner, hidden):
    seen = caller(app, world, owner).client.get(url)
    assert seen.status_code == 200 and hidden in seen.get_data(as_text=True)
    response = caller(app, world, viewer).client.get(url)
    assert response.status_code == 200 and hidden not in response.get_data(as_text=True)


@pytest.mark.parametrize(("endpoint", "method", "principal"), _owner_cases(ROUTES))
def test_the_owner_gets_through(app, world, endpoint, method, principal):
    _assert_owner_gets_through(app, world, ROUTES, endpoint, method, principal)


@pytest.mark.parametrize(("endpoint", "method", "principal"), _owner_cases(BODY_ROUTES))
def test_the_owner_gets_through_with_ids_in_the_body(app, world, endpoint, method, principal):
    _assert_owner_gets_through(app, world, BODY_ROUTES, endpoint, method, principal)
