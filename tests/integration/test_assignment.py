"""Case assignment: CSV upload with per-line validation (1,000 lines, 12 bad), all-or-nothing
apply, bulk by filter, automatic distribution (balance, round robin, field by distance),
history, audit and one notification per agent per batch."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, insert, select

from portal.assignment import operations as assignment
from portal.assignment.operations import AssignmentError, CaseFilter
from portal.models import (
    Address,
    AgentLocation,
    AuditLog,
    Case,
    CaseAssignment,
    Customer,
    Notification,
)


def bulk_cases(db, n: int, prefix: str = "A", **case_values) -> list[str]:
    cifs = [f"{prefix}{i:06d}" for i in range(n)]
    db.session.execute(insert(Customer), [{"cif": c, "name": f"Customer {c}",
                                           "source_system": "T24"} for c in cifs])
    db.session.execute(insert(Case), [{"cif": c, "max_dpd": 10 + i % 80,
                                       "total_overdue": Decimal(1000 * i), **case_values}
                                      for i, c in enumerate(cifs)])
    db.session.commit()
    return cifs


@pytest.fixture
def teams(db, make_team, make_user):
    supervisor = make_user("supervisor", full_name="Sup Ervisor")
    north = make_team(name="North", supervisor_id=supervisor.id)
    south = make_team(name="South")
    agents = [make_user("agent", username=f"north{i}", full_name=f"North Agent {i}",
                        team_id=north.id) for i in range(3)]
    other = make_user("agent", username="south0", full_name="South Agent", team_id=south.id)
    field = [make_user("field_agent", username=f"field{i}", full_name=f"Field Agent {i}",
                       team_id=north.id, region=region)
             for i, region in enumerate(["Hà Nội", "Hồ Chí Minh"])]
    return {"supervisor": supervisor, "north": north, "south": south, "agents": agents,
            "other": other, "field": field}


def _csv_with_12_bad_lines(db, teams) -> tuple[str, dict[int, str], list[str]]:
    cifs = bulk_cases(db, 994)
    outside = bulk_cases(db, 1, prefix="S", assigned_agent_id=teams["other"].id)[0]
    agents = [a.username for a in teams["agents"]]
    rows = [(cifs[i], agents[i % 3], None) for i in range(988)]  # 988 good lines
    bad_rows = [
        ("NOPE1", agents[0], "Unknown cif"), ("NOPE2", agents[1], "Unknown cif"),
        ("NOPE3", agents[2], "Unknown cif"),
        (cifs[988], "ghost", "Unknown agent"), (cifs[989], "nobody", "Unknown agent"),
        (cifs[990], "", "agent is missing"),
        (cifs[991], "south0", "another team"), (cifs[992], "south0", "another team"),
        (outside, agents[0], "outside your teams"),
        (cifs[993], teams["supervisor"].username, "not a call or field agent"),
        (cifs[5], agents[1], "Duplicate"), (cifs[6], agents[2], "Duplicate"),
    ]
    for k, row in enumerate(bad_rows):  # spread over the file
        rows.insert(50 + 80 * k, row)
    text = "cif,agent\n" + "\n".join(f"{c},{a}" for c, a, _ in rows) + "\n"
    expected = {i + 2: kind for i, (_c, _a, kind) in enumerate(rows) if kind}
    return text, expected, cifs


def test_csv_preview_lists_exactly_the_12_bad_lines_and_applies_the_988(db, teams):
    text, expected, cifs = _csv_with_12_bad_lines(db, teams)
    sup = teams["supervisor"]
    preview = assignment.preview_csv(db.session, sup, text)
    assert preview.fatal is None
    assert len(preview.lines) == 1000
    assert {e.line: e.error for e in preview.errors}.keys() == expected.keys()
    for line in preview.errors:
        assert expected[line.line].lower() in line.error.lower(), (line.line, line.error)
    dup = next(e for e in preview.errors if "Duplicate" in e.error)
    assert "line 7" in dup.error  # cifs[5] first appears on line 7 (line 1 is the header)
    assert len(preview.valid) == 988
    assert db.session.scalar(select(func.count()).select_from(CaseAssignment)) == 0

    # all or nothing: refused while lines are in error, nothing changed
    with pytest.raises(AssignmentError, match="12 line"):
        assignment.apply_csv(db.session, sup, text)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).where(
        Case.assigned_agent_id.is_not(None))) == 1  # only the South case

    # the supervisor chooses to apply the valid lines only: exactly 988 cases move
    _preview, results = assignment.apply_csv(db.session, sup, text, skip_invalid=True)
    db.session.commit()
    assert sum(r.changed for r in results) == 988
    per_agent = dict(db.session.execute(select(Case.assigned_agent_id, func.count()).where(
        Case.cif.in_(cifs)).group_by(Case.assigned_agent_id)).all())
    ids = [a.id for a in teams["agents"]]
    assert per_agent == {ids[0]: 330, ids[1]: 329, ids[2]: 329, None: 6}
    assert db.session.scalar(select(func.count()).select_from(CaseAssignment)) == 988
    assert db.session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == "case.assign.agent")) == 988
    notes = Counter(db.session.scalars(select(Notification.user_id)))
    assert notes == {ids[0]: 1, ids[1]: 1, ids[2]: 1}  # one per agent per batch
    titles = {n.user_id: n.title for n in db.session.scalars(select(Notification))}
    assert titles[ids[0]] == "330 cases assigned to you"


def test_fixed_csv_applies_whole_and_reassignment_keeps_history(db, teams):
    cifs = bulk_cases(db, 4)
    a0, a1, a2 = teams["agents"]
    sup = teams["supervisor"]
    text = "agent,cif\n" + "\n".join(f"{a0.username},{c}" for c in cifs)
    assignment.apply_csv(db.session, sup, text)
    db.session.commit()
    # reassign two of them to a1: the old rows close, the new ones open; a0 hears once
    moved = [c.id for c in db.session.scalars(select(Case).where(Case.cif.in_(cifs[:2])))]
    result = assignment.assign_cases(db.session, sup, [(i, a1.id) for i in moved],
                                     role="agent", reason="holiday")
    db.session.commit()
    assert (result.changed, dict(result.gained), dict(result.lost)) == (2, {a1.id: 2},
                                                                         {a0.id: 2})
    hist = assignment.history(db.session, moved[0])
    assert [(h.agent_id, h.previous_agent_id, h.unassigned_at is None) for h in hist] == [
        (a1.id, a0.id, True), (a0.id, None, False)]
    assert hist[0].reason == "holiday"
    lost = db.session.scalars(select(Notification).where(Notification.user_id == a0.id)
                              .order_by(Notification.id)).all()
    assert [n.title for n in lost] == ["4 cases assigned to you",
                                       "2 cases moved out of your queue"]
    # assigning again to the same agent changes nothing and notifies nobody
    again = assignment.assign_cases(db.session, sup, [(i, a1.id) for i in moved], role="agent")
    assert (again.changed, again.unchanged) == (0, 2)
    del a2


def test_supervisor_cannot_assign_outside_own_teams(db, teams):
    cifs = bulk_cases(db, 1)
    case_id = db.session.scalar(select(Case.id).where(Case.cif == cifs[0]))
    with pytest.raises(AssignmentError, match="not in one of your teams"):
        assignment.assign_cases(db.session, teams["supervisor"], [(case_id, teams["other"].id)],
                                role="agent")
    with pytest.raises(AssignmentError, match="field agent"):
        assignment.assign_cases(db.session, teams["supervisor"],
                                [(case_id, teams["field"][0].id)], role="agent")


def test_bulk_by_filter_moves_exactly_the_filtered_cases(db, teams):
    a0, a1, _ = teams["agents"]
    bulk_cases(db, 10, prefix="X", assigned_agent_id=a0.id)
    sup = teams["supervisor"]
    f = CaseFilter(role="agent", agent_id=a0.id, bucket="31-60")
    cases, total = assignment.find_cases(db.session, sup, f)
    assert total == sum(1 for i in range(10) if 31 <= 10 + i % 80 <= 60) == 0
    f = CaseFilter(role="agent", agent_id=a0.id, bucket="1-30")
    cases, total = assignment.find_cases(db.session, sup, f)
    assert total == 10
    chosen = [c.id for c in cases[:5]]
    result = assignment.assign_filtered(db.session, sup, f, a1.id, case_ids=chosen)
    db.session.commit()
    assert result.changed == 5
    assert assignment.queue_counts(db.session, [a0.id, a1.id]) == {a0.id: 5, a1.id: 5}


def test_auto_distribution_balances_workload(db, teams):
    a0, a1, a2 = teams["agents"]
    bulk_cases(db, 6, prefix="H", assigned_agent_id=a0.id)  # a0 already holds 6
    bulk_cases(db, 12, prefix="U")
    sup = teams["supervisor"]
    plan, result = assignment.distribute(db.session, sup, team_id=teams["north"].id)
    db.session.commit()
    assert result.changed == 12
    # 18 cases over 3 agents: a0 keeps 6, the 12 new go to a1 and a2 -> 6 / 6 / 6
    assert assignment.queue_counts(db.session, [a0.id, a1.id, a2.id]) == {
        a0.id: 6, a1.id: 6, a2.id: 6}
    assert plan.load_before == {a0.id: 6, a1.id: 0, a2.id: 0}
    assert db.session.scalar(select(func.count()).select_from(Notification)) == 2


def test_auto_distribution_round_robin(db, teams):
    a0, a1, a2 = teams["agents"]
    bulk_cases(db, 7, prefix="R")
    plan = assignment.plan_distribution(db.session, teams["supervisor"],
                                        team_id=teams["north"].id, strategy="round_robin")
    assert Counter(agent for _, agent in plan.plan) == {a0.id: 3, a1.id: 2, a2.id: 2}


def test_field_distribution_by_distance_and_region(db, teams):
    hanoi_agent, hcm_agent = teams["field"]
    # hanoi agent's latest position is in Hanoi; the HCM agent has no position (home region)
    now = datetime(2026, 11, 18, 3, 0, tzinfo=UTC)
    db.session.add_all([
        AgentLocation(agent_id=hanoi_agent.id, lat=21.0285, lon=105.8542, recorded_at=now,
                      received_at=now),
        AgentLocation(agent_id=hcm_agent.id, lat=10.7769, lon=106.7009, recorded_at=now,
                      received_at=now),
    ])
    cifs = bulk_cases(db, 4, prefix="F")
    spots = [(21.03, 105.85, "Hà Nội"), (21.00, 105.80, "Hà Nội"),
             (10.78, 106.70, "Hồ Chí Minh"), (None, None, "Hồ Chí Minh")]
    for cif, (lat, lon, province) in zip(cifs, spots, strict=True):
        db.session.add(Address(cif=cif, type="HOME", line1="1 Street", province=province,
                               lat=lat, lon=lon, is_primary=True, source_system="T24"))
    db.session.commit()
    plan = assignment.plan_distribution(db.session, teams["supervisor"],
                                        team_id=teams["north"].id, role="field_agent")
    by_cif = {db.session.get(Case, cid).cif: agent for cid, agent in plan.plan}
    assert by_cif == {cifs[0]: hanoi_agent.id, cifs[1]: hanoi_agent.id,
                      cifs[2]: hcm_agent.id, cifs[3]: hcm_agent.id}
