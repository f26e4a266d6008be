"""Admin pages: the action-code tree (create, edit, flags, offsets, order, active) and the
contact rules, with field-level errors (422) and audit rows."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.cases.contact_rules import (
    MessageRules,
    PlanRules,
    get_contact_rules,
    get_promise_rules,
)
from portal.models import ActionCode, AuditLog


@pytest.fixture
def admin(login_as):
    return login_as("admin")


def form(token, **overrides):
    data = {"csrf_token": token, "type": "CALL", "subtype": "outbound", "result": "no_answer",
            "label": "No answer", "follow_up_days": "1", "sort_order": "10", "active": "y"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def field_error(html: str, name: str) -> str | None:
    match = re.search(rf'data-testid="error-{name}">([^<]+)<', html)
    return match.group(1) if match else None


def test_the_page_shows_the_tree_by_type_and_subtype(client, db, admin, make_action_code):
    make_action_code("CALL", "OUTBOUND", "PTP", label="Promise to pay", is_promise=True,
                     is_contact=True, follow_up_days=1)
    make_action_code("CALL", "INBOUND", "RPC_QUERY", label="Customer called with a question")
    make_action_code("VISIT", "HOME", "NOT_HOME", label="Not at home", active=False)
    response = client.get("/admin/action-codes")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.index(">CALL") < html.index("INBOUND") < html.index("OUTBOUND") < \
        html.index(">VISIT")
    assert "Promise to pay" in html and "+1 d" in html
    assert html.count('data-testid="action-code-row"') == 3
    assert 'class="inactive"' in html


def test_create_a_code_normalises_it_and_audits(client, db, admin, csrf_token):
    token = csrf_token("/admin/action-codes")
    response = client.post("/admin/action-codes",
                           data=form(token, is_contact="y", is_promise="y"))
    assert response.status_code == 302
    code = db.session.scalar(select(ActionCode))
    assert (code.type, code.subtype, code.result) == ("CALL", "OUTBOUND", "NO_ANSWER")
    assert code.is_contact and code.is_promise and code.active
    assert (code.follow_up_days, code.sort_order) == (1, 10)
    audit = db.session.scalar(select(AuditLog).where(AuditLog.entity_type == "action_code"))
    assert audit.action == "action_code.create" and audit.actor_id == admin.id
    assert audit.before is None and audit.after["result"] == "NO_ANSWER"


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"subtype": ""}, "subtype", "Enter a subtype"),
    ({"result": "no answer!"}, "result", "capital letters, digits and _"),
    ({"label": "  "}, "label", "Enter the label"),
    ({"follow_up_days": "-1"}, "follow_up_days", "0 to 365"),
    ({"follow_up_days": "abc"}, "follow_up_days", "Not a valid integer"),
    ({"type": "FAX"}, "type", "Not a valid choice"),
])
def test_invalid_input_is_422_with_the_error_next_to_the_field(client, db, admin, csrf_token,
                                                               overrides, field, message):
    token = csrf_token("/admin/action-codes")
    response = client.post("/admin/action-codes", data=form(token, **overrides))
    assert response.status_code == 422
    error = field_error(response.get_data(as_text=True), field)
    assert error is not None and message in error
    assert db.session.scalar(select(ActionCode)) is None
    assert db.session.scalar(select(AuditLog)) is None


def test_a_duplicate_type_subtype_result_is_refused_on_the_result(client, db, admin,
                                                                  csrf_token, make_action_code):
    make_action_code("CALL", "OUTBOUND", "NO_ANSWER", label="No answer")
    token = csrf_token("/admin/action-codes")
    response = client.post("/admin/action-codes", data=form(token))
    assert response.status_code == 422
    assert "already exists" in field_error(response.get_data(as_text=True), "result")


def test_edit_flags_offset_and_order_with_before_and_after(client, db, admin, csrf_token,
                                                           make_action_code):
    code = make_action_code("CALL", "OUTBOUND", "NO_ANSWER", label="No answer",
                            follow_up_days=1, sort_order=5)
    page = client.get(f"/admin/action-codes/{code.id}")
    assert page.status_code == 200 and 'value="No answer"' in page.get_data(as_text=True)
    token = csrf_token(f"/admin/action-codes/{code.id}")
    response = client.post(f"/admin/action-codes/{code.id}",
                           data=form(token, label="No answer (rang out)", follow_up_days="",
                                     sort_order="2", is_contact="y", active=None))
    assert response.status_code == 302
    db.session.expire_all()
    code = db.session.get(ActionCode, code.id)
    assert code.label == "No answer (rang out)" and code.follow_up_days is None
    assert code.sort_order == 2 and code.is_contact and not code.active
    audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "action_code.update"))
    assert audit.before["follow_up_days"] == 1 and audit.after["follow_up_days"] is None
    assert audit.before["active"] is True and audit.after["active"] is False


def test_editing_into_an_existing_code_is_refused(client, db, admin, csrf_token,
                                                  make_action_code):
    make_action_code("CALL", "OUTBOUND", "BUSY", label="Busy")
    code = make_action_code("CALL", "OUTBOUND", "NO_ANSWER", label="No answer")
    token = csrf_token(f"/admin/action-codes/{code.id}")
    response = client.post(f"/admin/action-codes/{code.id}",
                           data=form(token, result="BUSY", label="No answer"))
    assert response.status_code == 422
    assert "already exists" in field_error(response.get_data(as_text=True), "result")
    db.session.expire_all()
    assert db.session.get(ActionCode, code.id).result == "NO_ANSWER"


def test_toggle_active_with_htmx_returns_the_row(client, db, admin, csrf_token,
                                                 make_action_code):
    code = make_action_code(label="Voicemail")
    token = csrf_token("/admin/action-codes")
    response = client.post(f"/admin/action-codes/{code.id}/toggle",
                           headers={"HX-Request": "true", "X-CSRFToken": token})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith("<tr") and 'aria-checked="false"' in html
    db.session.expire_all()
    assert db.session.get(ActionCode, code.id).active is False
    assert db.session.scalar(select(AuditLog.after)).get("active") is False


def test_only_admins_manage_action_codes_and_rules(client, db, login_as):
    login_as("agent")
    assert client.get("/admin/action-codes").status_code == 403
    assert client.get("/admin/contact-rules").status_code == 403


# the payment plan limits on the same page (issue 22), posted at their defaults
PLAN_DEFAULTS = {f"plan_{name}": str(value) for name, value in PlanRules().as_json().items()}
# and the message rules (issue 23), posted at their defaults (the box ticked: "y")
MESSAGE_DEFAULTS = {name: ("y" if value is True else str(value))
                    for name, value in MessageRules().as_json().items()}


def test_contact_rules_page_saves_audits_and_validates(client, db, admin, csrf_token):
    page = client.get("/admin/contact-rules")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'value="07:00"' in html and 'value="21:00"' in html and "Defaults" in html
    token = csrf_token("/admin/contact-rules")
    data = {"csrf_token": token, "window_start": "08:00", "window_end": "20:30",
            "max_call_attempts": "5", "attempt_window_days": "7", "promise_max_days": "14",
            **PLAN_DEFAULTS, **MESSAGE_DEFAULTS}
    assert client.post("/admin/contact-rules", data=data).status_code == 302
    rules = get_contact_rules(db.session)
    assert (rules.window_start.isoformat(), rules.window_end.isoformat()) == ("08:00:00",
                                                                              "20:30:00")
    assert rules.max_call_attempts == 5 and get_promise_rules(db.session).max_days == 14
    audits = db.session.scalars(select(AuditLog).where(AuditLog.action == "settings.update")
                                .order_by(AuditLog.entity_id)).all()
    assert [a.entity_id for a in audits] == ["contact_rules", "message_rules", "plan_rules",
                                             "promise_rules"]
    assert audits[0].before is None and audits[0].after["window_start"] == "08:00"
    assert f'by <span translate="no">{admin.full_name}</span>' in \
        client.get("/admin/contact-rules").get_data(as_text=True)

    bad = dict(data, window_end="07:00", max_call_attempts="0")
    response = client.post("/admin/contact-rules", data=bad)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, "window_end") == "The window must close after it opens."
    assert "from 1 to 100" in field_error(html, "max_call_attempts")
    assert get_contact_rules(db.session).max_call_attempts == 5


def test_saving_unchanged_rules_adds_no_audit_row(client, db, admin, csrf_token):
    token = csrf_token("/admin/contact-rules")
    data = {"csrf_token": token, "window_start": "07:00", "window_end": "21:00",
            "max_call_attempts": "7", "attempt_window_days": "7", "promise_max_days": "30",
            **PLAN_DEFAULTS, **MESSAGE_DEFAULTS}
    assert client.post("/admin/contact-rules", data=data).status_code == 302
    assert client.post("/admin/contact-rules", data=data).status_code == 302
    # the first save of each key (contact rules, promise horizon, plan limits, message rules)
    assert len(db.session.scalars(select(AuditLog)).all()) == 4
