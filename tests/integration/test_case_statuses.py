"""Statuses people set on a case (with their history), the master note (with its versions),
the admin's dictionaries (retire, never delete a value in use), the queue's filters by status,
and the invariant tying them together (portal/cases/statuses.py, portal/admin/statuses.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from portal.cases import statuses
from portal.models import AuditLog, Case, CaseStatusChange, MasterNoteVersion, StatusValue
from portal.ops import invariants
from tests.conftest import csrf_token_from

NOW = datetime(2026, 11, 24, 3, 30, tzinfo=UTC)


def value(db, kind, code) -> StatusValue:
    return db.session.scalar(select(StatusValue).where(StatusValue.kind == kind,
                                                       StatusValue.code == code))


def written(db) -> tuple:
    """What a refused request must leave as it was."""
    return (db.session.scalar(select(func.count()).select_from(CaseStatusChange)),
            db.session.scalar(select(func.count()).select_from(MasterNoteVersion)),
            db.session.scalar(select(func.count()).select_from(AuditLog)),
            db.session.scalar(select(func.count()).select_from(StatusValue)))


def post(client, url: str, data: dict | None = None, **kwargs):
    """A POST with the session's CSRF token (read from the home page)."""
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    return client.post(url, data={**(data or {}), "csrf_token": token}, **kwargs)


def error_for(html: str, name: str) -> str | None:
    match = re.search(rf'data-error-for="{name}">([^<]*)<', html)
    return match.group(1) if match else None


@pytest.fixture
def agent_case(db, make_user, ws_case, login, frozen_now):
    frozen_now(NOW)
    agent = make_user("agent", full_name="Trần Thị Thu")
    case = ws_case(agent, dpd=45)
    login(agent)
    return agent, case


def test_the_migration_seeds_every_list_and_the_old_processing_states(db):
    for kind in statuses.KIND_NAMES:
        assert statuses.dictionary(db.session, kind, active_only=True), kind
    codes = {v.code for v in statuses.dictionary(db.session, "processing_state", top_level=True)}
    assert codes >= {"new", "contacting", "negotiating", "monitoring", "escalated", "done"}
    legal = value(db, "processing_state", "legal_review")
    assert legal.parent.code == "escalated" and legal.label_vi.startswith("Chuyển pháp chế")


def test_an_agent_sets_a_processing_state_with_a_substate_and_a_reason(db, client,
                                                                      agent_case):
    agent, case = agent_case
    escalated = value(db, "processing_state", "escalated")
    legal = value(db, "processing_state", "legal_review")
    form = client.get(f"/cases/{case.cif}/statuses/processing_state/form"
                      f"?value_id={escalated.id}").get_data(as_text=True)
    assert f'value="{legal.id}"' in form  # the substates of the chosen state

    response = post(client, f"/cases/{case.cif}/statuses/processing_state",
                           data={"value_id": escalated.id, "substate_id": legal.id,
                                 "reason": "KH không hợp tác sau 3 lần hẹn"},
                           headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "statuses-updated"
    db.session.expire_all()
    case = db.session.get(Case, case.id)
    assert (case.processing_state, case.processing_substate_id) == ("escalated", legal.id)
    change = db.session.scalar(select(CaseStatusChange))
    assert (change.kind, change.value_id, change.substate_id, change.changed_by_id,
            change.reason, change.changed_at) == (
        "processing_state", escalated.id, legal.id, agent.id,
        "KH không hợp tác sau 3 lần hẹn", NOW)
    assert change.previous_value_id == value(db, "processing_state", "new").id
    audit_row = db.session.scalar(select(AuditLog).where(AuditLog.action == "case.status"))
    assert audit_row.before == {"processing_state": "new"}
    assert audit_row.after["processing_state"] == "escalated/legal_review"
    page = client.get(f"/cases/{case.cif}").get_data(as_text=True)
    assert 'data-testid="header-status-processing_state"' in page
    assert "KH không hợp tác sau 3 lần hẹn" in page
    assert invariants.check_all(db.session, now=NOW)  # runs
    assert statuses.violations(db.session) == []


def test_the_badge_text_contrasts_with_its_colour():
    for colour in ("#ffffff", "#f59e0b", "#fde68a", "#1f2937", "#b91c1c", "#15803d", "#7c3aed",
                   "#64748b", "#94a3b8"):
        text = statuses.text_colour(colour)
        assert statuses.contrast(colour, text) >= 4.5, colour
    assert statuses.text_colour("#ffffff") == "#000000"
    assert statuses.text_colour("#1f2937") == "#ffffff"


@pytest.mark.parametrize(("kind", "form", "field", "words"), [
    ("processing_state", {"value_id": "escalated", "reason": ""}, "reason", "why"),
    ("processing_state", {"value_id": "escalated", "reason": "   "}, "reason", "why"),
    ("processing_state", {"value_id": "escalated", "reason": "x" * 501}, "reason", "500"),
    ("processing_state", {"value_id": "999999", "reason": "r"}, "value_id", "not one of"),
    ("processing_state", {"value_id": "abc", "reason": "r"}, "value_id", "Choose"),
    ("processing_state", {"reason": "r"}, "value_id", "Choose"),
    # a value of another list, and a substate given as the state
    ("processing_state", {"value_id": "customer_status:refuses", "reason": "r"}, "value_id",
     "not one of"),
    ("customer_status", {"value_id": "escalated", "reason": "r"}, "value_id", "not one of"),
    ("processing_state", {"value_id": "legal_review", "reason": "r"}, "value_id", "not one of"),
    # a substate of another state
    ("processing_state", {"value_id": "negotiating", "substate_id": "legal_review",
                          "reason": "r"}, "substate_id", "not one of"),
    ("processing_state", {"value_id": "retired", "reason": "r"}, "value_id", "retired"),
    ("processing_state", {"value_id": "new", "reason": "r"}, "value_id", "already"),
])
def test_hostile_status_input_is_refused_next_to_the_field_and_writes_nothing(
        db, client, agent_case, kind, form, field, words):
    _agent, case = agent_case
    retired = value(db, "processing_state", "done")
    retired.active = False
    db.session.commit()

    def resolve(raw):
        if raw == "retired":
            return str(retired.id)
        if raw in ("escalated", "legal_review", "negotiating", "new"):
            return str(value(db, "processing_state", raw).id)
        if raw.startswith("customer_status:"):
            return str(value(db, "customer_status", raw.split(":")[1]).id)
        return raw

    data = {k: resolve(v) if k.endswith("_id") else v for k, v in form.items()}
    before = written(db)
    response = post(client, f"/cases/{case.cif}/statuses/{kind}", data=data,
                           headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert response.headers["HX-Retarget"] == "#status-form-slot"
    message = error_for(response.get_data(as_text=True), field)
    assert message and words.lower() in message.lower(), message
    db.session.expire_all()
    assert written(db) == before
    assert db.session.get(Case, case.id).processing_state == "new"


def test_an_unknown_list_is_not_found(db, client, agent_case):
    _agent, case = agent_case
    assert post(client, f"/cases/{case.cif}/statuses/mood",
                       data={"value_id": "1", "reason": "r"}).status_code == 404


def test_the_master_note_keeps_every_version(db, client, agent_case):
    agent, case = agent_case
    url = f"/cases/{case.cif}/master-note"
    assert post(client, url, data={"note": "KH làm tự do."}).status_code == 200
    response = post(client, url, data={"note": "KH làm tự do.\nƯu tiên gọi buổi tối."})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-testid="note-previous">KH làm tự do.<' in html
    db.session.expire_all()
    assert db.session.get(Case, case.id).notes == "KH làm tự do.\nƯu tiên gọi buổi tối."
    versions = statuses.note_versions(db.session, case.cif)
    assert [v.text for v in versions] == ["KH làm tự do.\nƯu tiên gọi buổi tối.",
                                          "KH làm tự do."]
    assert {v.edited_by_id for v in versions} == {agent.id}
    assert db.session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == "customer.master_note")) == 2
    assert statuses.violations(db.session) == []


@pytest.mark.parametrize(("note", "words"), [
    ("x" * 4001, "4000"),
    ("", "not changed"),
])
def test_a_refused_master_note_writes_nothing(db, client, agent_case, note, words):
    _agent, case = agent_case
    before = written(db)
    response = post(client, f"/cases/{case.cif}/master-note", data={"note": note},
                           headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert response.headers["HX-Retarget"] == "#master-note-form-slot"
    message = error_for(response.get_data(as_text=True), "note")
    assert message and words in message
    db.session.expire_all()
    assert written(db) == before and db.session.get(Case, case.id).notes is None


def test_a_promise_moves_the_processing_state_with_a_system_history_row(
        db, make_user, ws_case, ws_action_codes, bank_hours):
    from portal.cases import actions

    agent = make_user("agent")
    case = ws_case(agent, dpd=20)
    negotiating = value(db, "processing_state", "negotiating")
    statuses.set_status(db.session, agent, case, "processing_state", negotiating.id,
                        value(db, "processing_state", "restructure_request").id, "KH xin giãn nợ",
                        bank_hours)
    db.session.commit()
    code = ws_action_codes[("CALL", "OUTBOUND", "PTP")]
    actions.move_case_on(db.session, case.cif, code, agent, bank_hours, None, bank_hours)
    db.session.commit()
    db.session.expire_all()
    case = db.session.get(Case, case.id)
    assert (case.processing_state, case.processing_substate_id) == ("monitoring", None)
    latest = statuses.status_history(db.session, case.id)[0]
    assert (latest.source, latest.changed_by_id, latest.reason) == ("system", None, None)
    assert latest.previous_substate.code == "restructure_request"
    assert statuses.violations(db.session) == []


def test_the_invariant_finds_a_status_that_is_not_its_latest_history(db, make_user, ws_case,
                                                                     frozen_now):
    frozen_now(NOW)
    agent = make_user("agent")
    case = ws_case(agent)
    refuses = value(db, "customer_status", "refuses")
    statuses.set_status(db.session, agent, case, "customer_status", refuses.id, None, "r", NOW)
    db.session.commit()
    assert statuses.violations(db.session) == []
    case.customer_status_id = value(db, "customer_status", "cooperative").id
    case.notes = "sửa thẳng vào cơ sở dữ liệu"
    case.processing_state = "no_such_state"
    db.session.commit()
    found = {(v["kind"], v["problem"]) for v in statuses.violations(db.session)}
    assert found == {("customer_status", "not the latest history row"),
                     ("master_note", "not the latest version"),
                     ("processing_state", "not a processing state of the dictionary")}


# --- the admin's dictionaries ------------------------------------------------------------------


def test_an_admin_retires_a_value_in_use_and_cannot_delete_it(db, client, make_user, ws_case,
                                                             login, frozen_now):
    frozen_now(NOW)
    agent = make_user("agent")
    case = ws_case(agent)
    disputes = value(db, "customer_status", "disputes")
    statuses.set_status(db.session, agent, case, "customer_status", disputes.id, None,
                        "KH khiếu nại số dư", NOW)
    db.session.commit()
    login(make_user("admin"))

    assert post(client, f"/admin/statuses/{disputes.id}/toggle").status_code == 302
    db.session.expire_all()
    assert value(db, "customer_status", "disputes").active is False
    before = written(db)
    response = post(client, f"/admin/statuses/{disputes.id}/delete")
    assert response.status_code == 409
    assert "in use" in response.get_data(as_text=True)
    assert written(db) == before
    # a state the system moves cases to is never deleted either
    response = post(client, f"/admin/statuses/{value(db, 'processing_state', 'new').id}/delete")
    assert response.status_code == 409

    # the agent is not offered the retired value, and still sees it on the case
    login(agent)
    form = client.get(f"/cases/{case.cif}/statuses/customer_status/form").get_data(as_text=True)
    assert f'value="{disputes.id}"' not in form
    panel = client.get(f"/cases/{case.cif}/panels/statuses").get_data(as_text=True)
    assert disputes.label_en in panel and "(retired)" in panel  # the test client reads English


def test_an_admin_adds_edits_and_deletes_an_unused_value(db, client, login_as):
    login_as("admin")
    escalated = value(db, "processing_state", "escalated")
    response = post(client, "/admin/statuses", data={
        "kind": "processing_state", "code": "Bankruptcy", "parent_id": str(escalated.id),
        "label_vi": "Khách hàng phá sản", "label_en": "Bankruptcy", "colour": "#AA3300",
        "sort_order": "40", "active": "y"})
    assert response.status_code == 302
    added = value(db, "processing_state", "bankruptcy")
    assert (added.parent_id, added.colour, added.active) == (escalated.id, "#aa3300", True)
    # the same code again, a parent for another list, a colour that is not one
    for data, field in (
            ({"kind": "processing_state", "code": "bankruptcy"}, "code"),
            ({"kind": "customer_status", "code": "x1", "parent_id": str(escalated.id)},
             "parent_id"),
            ({"kind": "customer_status", "code": "x2", "colour": "red"}, "colour")):
        before = written(db)
        response = post(client, "/admin/statuses", data={
            "label_vi": "A", "label_en": "A", "colour": "#000000", **data})
        assert response.status_code == 422, data
        assert f'data-testid="error-{field}"' in response.get_data(as_text=True), data
        assert written(db) == before
    response = post(client, f"/admin/statuses/{added.id}", data={
        "parent_id": str(escalated.id), "label_vi": "KH phá sản", "label_en": "Bankrupt",
        "colour": "#123456", "sort_order": "5", "active": "y", "code": "hacked",
        "kind": "customer_status"})
    assert response.status_code == 302
    db.session.expire_all()
    added = db.session.get(StatusValue, added.id)
    assert (added.kind, added.code, added.label_vi, added.colour) == (
        "processing_state", "bankruptcy", "KH phá sản", "#123456")
    assert post(client, f"/admin/statuses/{added.id}/delete").status_code == 302
    assert db.session.get(StatusValue, added.id) is None
    assert [a.action for a in db.session.scalars(
        select(AuditLog).where(AuditLog.entity_type == "status_value").order_by(AuditLog.id))
    ] == ["status_value.create", "status_value.update", "status_value.delete"]


def test_the_admin_page_lists_every_list(db, client, login_as):
    login_as("admin")
    html = client.get("/admin/statuses").get_data(as_text=True)
    for kind in statuses.KIND_NAMES:
        assert f'data-testid="status-list-{kind}"' in html


# --- the queue ----------------------------------------------------------------------------------


def test_the_queue_filters_and_counts_by_processing_state_and_customer_status(
        db, client, make_user, ws_case, login, frozen_now):
    frozen_now(NOW)
    agent = make_user("agent")
    cases = [ws_case(agent, dpd=10 + i) for i in range(5)]
    escalated = value(db, "processing_state", "escalated")
    refuses = value(db, "customer_status", "refuses")
    for case in cases[:2]:
        statuses.set_status(db.session, agent, case, "processing_state", escalated.id, None,
                            "chuyển cấp", NOW)
    statuses.set_status(db.session, agent, cases[0], "customer_status", refuses.id, None,
                        "từ chối", NOW)
    cases[4].processing_state = "negotiating"
    db.session.commit()
    login(agent)

    html = client.get("/cases/?processing=escalated").get_data(as_text=True)
    assert html.count('data-testid="queue-row"') == 2
    assert {c.cif for c in cases[:2]} == set(re.findall(r'data-href="/cases/([^"]+)"', html))
    assert re.search(r'<option value="escalated" selected>[^<]+\(2\)</option>', html)
    assert re.search(r'<option value="new">[^<]+\(2\)</option>', html)
    assert re.search(r'<option value="negotiating">[^<]+\(1\)</option>', html)
    html = client.get(f"/cases/?customer_status={refuses.id}").get_data(as_text=True)
    assert html.count('data-testid="queue-row"') == 1 and cases[0].cif in html
    assert re.search(rf'<option value="{refuses.id}" selected>[^<]+\(1\)</option>', html)
    both = client.get(f"/cases/?processing=new&customer_status={refuses.id}")
    assert both.get_data(as_text=True).count('data-testid="queue-row"') == 0
    # nonsense filters are ignored, not errors
    assert client.get("/cases/?processing=DROP%20TABLE&customer_status=x").status_code == 200
