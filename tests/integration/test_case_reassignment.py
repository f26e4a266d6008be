"""The case view's assignment card: the case_assignments history (newest first, names, reason)
for whoever sees the case, and a supervisor's reassignment of that one case through the
assignment page's operation (assign_cases: history, audit, notifications), within their teams."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from portal.models import AuditLog, Case, CaseAssignment, Notification


@pytest.fixture
def office(db, make_team, make_user, ws_case):
    supervisor = make_user("supervisor", full_name="Phạm Giám Sát")
    north = make_team(name="North", supervisor_id=supervisor.id)
    south = make_team(name="South", supervisor_id=make_user("supervisor").id)
    first = make_user("agent", full_name="Nguyễn Văn Một", team_id=north.id)
    second = make_user("agent", full_name="Trần Thị Hai", team_id=north.id)
    field = make_user("field_agent", full_name="Lê Văn Ba", team_id=north.id)
    outsider = make_user("agent", full_name="Đỗ Văn Nam", team_id=south.id)
    case = ws_case(first)
    return {"supervisor": supervisor, "first": first, "second": second, "field": field,
            "outsider": outsider, "case": case, "south": south}


def html(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def reassign(client, token, cif, **data):
    return client.post(f"/supervisor/assignment/cases/{cif}", data=data,
                       headers={"X-CSRFToken": token, "HX-Request": "true"})


def test_a_supervisor_reassigns_from_the_case_and_the_history_shows_it(client, db, office,
                                                                       login, csrf_token):
    case, first, second = office["case"], office["first"], office["second"]
    supervisor = login(office["supervisor"])
    token = csrf_token(f"/cases/{case.cif}")
    response = reassign(client, token, case.cif, agent=str(second.id),
                        reason="Chuyển cho người nói tiếng Khmer")
    assert response.status_code == 200, html(response)
    assert response.headers["HX-Trigger"] == "case-updated"
    page = html(response)
    assert "Case reassigned." in page and "Chuyển cho người nói tiếng Khmer" in page
    db.session.expire_all()
    assert db.session.get(Case, case.id).assigned_agent_id == second.id
    [row] = db.session.scalars(select(CaseAssignment)).all()
    assert (row.role, row.agent_id, row.previous_agent_id, row.assigned_by_id, row.reason) == \
        ("agent", second.id, first.id, supervisor.id, "Chuyển cho người nói tiếng Khmer")
    audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "case.assign.agent"))
    assert audit.before["assigned_agent_id"] == first.id and \
        audit.after["assigned_agent_id"] == second.id
    # the same notifications as the assignment page's: the one gaining, the one losing
    assert {n.user_id for n in db.session.scalars(select(Notification))} == \
        {first.id, second.id}
    # back again: the history card lists both, newest first, with names
    assert reassign(client, token, case.cif, agent=str(first.id),
                    reason="Trở lại").status_code == 200
    card = html(client.get(f"/supervisor/assignment/cases/{case.cif}"))
    assert re.findall(r'data-testid="assignment-agent">([^<]+)<', card) == \
        ["Nguyễn Văn Một", "Trần Thị Hai"]
    assert re.findall(r'data-testid="assignment-reason">([^<]+)<', card) == \
        ["Trở lại", "Chuyển cho người nói tiếng Khmer"]
    assert "Phạm Giám Sát" in card


def test_a_field_agent_takes_the_field_side(client, db, office, login, csrf_token):
    case, field = office["case"], office["field"]
    login(office["supervisor"])
    token = csrf_token(f"/cases/{case.cif}")
    assert reassign(client, token, case.cif, agent=str(field.id),
                    reason="Cần đi thăm").status_code == 200
    db.session.expire_all()
    refreshed = db.session.get(Case, case.id)
    assert (refreshed.assigned_agent_id, refreshed.assigned_field_agent_id) == \
        (office["first"].id, field.id)
    assert db.session.scalar(select(CaseAssignment.role)) == "field_agent"


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"agent": "", "reason": "x"}, "agent", "Choose the agent who takes the case."),
    ({"agent": "second", "reason": "  "}, "reason", "Say why the case is reassigned."),
    ({"agent": "second", "reason": "x" * 201}, "reason", "At most 200 characters."),
    ({"agent": "outsider", "reason": "x"}, "agent", "is not in one of your teams."),
    ({"agent": "supervisor", "reason": "x"}, "agent", "not a call or field agent."),
])
def test_refusals_are_next_to_the_field_and_nothing_is_written(client, db, office, login,
                                                               csrf_token, data, field,
                                                               message):
    case = office["case"]
    login(office["supervisor"])
    token = csrf_token(f"/cases/{case.cif}")
    if data["agent"]:
        data = {**data, "agent": str(office[data["agent"]].id)}
    response = reassign(client, token, case.cif, **data)
    assert response.status_code == 422
    assert re.search(rf'data-error-for="{field}">[^<]*{re.escape(message)}', html(response)), \
        html(response)
    db.session.expire_all()
    assert db.session.get(Case, case.id).assigned_agent_id == office["first"].id
    assert db.session.scalar(select(func.count(CaseAssignment.id))) == 0
    assert db.session.scalar(select(func.count(AuditLog.id))) == 0


def test_an_agent_sees_the_history_but_cannot_reassign(client, db, office, login, csrf_token):
    case = office["case"]
    login(office["first"])
    card = client.get(f"/supervisor/assignment/cases/{case.cif}")
    assert card.status_code == 200
    assert 'data-testid="panel-assignments"' in html(card)
    assert 'data-testid="reassign-form"' not in html(card)
    token = csrf_token(f"/cases/{case.cif}")
    response = reassign(client, token, case.cif, agent=str(office["second"].id), reason="x")
    assert response.status_code == 403
    db.session.expire_all()
    assert db.session.get(Case, case.id).assigned_agent_id == office["first"].id


def test_a_supervisor_of_another_team_is_refused(client, db, office, make_user, login,
                                                 csrf_token):
    case = office["case"]
    other = db.session.get(type(office["supervisor"]), office["south"].supervisor_id)
    login(other)
    token = csrf_token("/")
    assert client.get(f"/supervisor/assignment/cases/{case.cif}").status_code == 404
    response = reassign(client, token, case.cif, agent=str(office["outsider"].id), reason="x")
    assert response.status_code == 404
    db.session.expire_all()
    assert db.session.get(Case, case.id).assigned_agent_id == office["first"].id
    assert db.session.scalar(select(func.count(CaseAssignment.id))) == 0


def test_the_invariant_names_a_history_that_does_not_end_with_the_holder(db, office):
    """`flask check invariants` (case_assignments): a reassignment keeps the history and the
    case in step; a holder changed behind the history's back, or two open rows, are named."""
    from sqlalchemy import text

    from portal.assignment import operations as assignment
    from portal.ops import invariants

    def found():
        [result] = invariants.check_all(db.session, names=["case_assignments"])
        assert result.error is None, result.error
        return [(v["case_id"], v["role"], v["open_rows"]) for v in result.sample]

    case, second = office["case"], office["second"]
    assignment.reassign_case(db.session, office["supervisor"], case.id, second.id, "Cân tải")
    assignment.reassign_case(db.session, office["supervisor"], case.id, office["field"].id,
                             "Đi thăm")
    db.session.commit()
    assert found() == []
    db.session.execute(text("UPDATE cases SET assigned_agent_id = :a WHERE id = :c"),
                       {"a": office["first"].id, "c": case.id})
    db.session.commit()
    assert found() == [(case.id, "agent", 1)]
    db.session.execute(text("UPDATE cases SET assigned_agent_id = :a WHERE id = :c"),
                       {"a": second.id, "c": case.id})
    db.session.execute(text(
        "INSERT INTO case_assignments (case_id, role, agent_id, assigned_at) "
        "SELECT case_id, role, agent_id, assigned_at FROM case_assignments "
        "WHERE role = 'field_agent'"))
    db.session.commit()
    assert found() == [(case.id, "field_agent", 2)]


def test_a_reason_the_system_wrote_is_shown_in_the_readers_language(client, db, office, login):
    """A supervisor's reason is shown as typed; the reasons the system writes are translated."""
    from portal import clock

    case, first = office["case"], office["first"]
    first.language = "vi"
    db.session.add_all([
        CaseAssignment(case_id=case.id, role="agent", agent_id=first.id,
                       reason="initial allocation", assigned_at=clock.now()),
        CaseAssignment(case_id=case.id, role="field_agent", agent_id=office["field"].id,
                       reason="KH chuyển nhà", assigned_at=clock.now())])
    db.session.commit()
    login(first)
    card = html(client.get(f"/supervisor/assignment/cases/{case.cif}"))
    assert sorted(re.findall(r'data-testid="assignment-reason">([^<]+)<', card)) == \
        ["KH chuyển nhà", "phân bổ ban đầu"]
    assert "Lịch sử phân công" in card
