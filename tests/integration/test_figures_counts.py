"""Issue 19, findings 7 and 8: one definition per count and per status, so the pages agree.

- Home showed 469 phone cases for a team, Assignment "436 matching" for the same team: the
  assignment page left out the cases whose *other* holder (the field agent of a phone case)
  belongs to another team. A team's phone cases are the open cases its call agents hold, a
  team's field cases the open cases its field agents hold, wherever the other holder sits.
- Home showed a field agent "Offline" (the call centre's status, which a field agent does not
  have) while the map showed him live: a field agent's status is the map's presence.
- The field agent's work queue said "0 open cases" while he held 9 field cases: the queue only
  read ``assigned_agent_id``.

North: call agents A1, A2 and field agent F1 (supervised by Sup). South: call agent B and field
agent G. Open cases: 5 (A1, F1), 3 (A1, G of South), 2 (A2), 4 (B of South, F1), 1 unassigned;
and a closed one of A1's.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal import clock
from portal.models import AgentLocation, AgentStatus, Case, Customer

SQUASH = re.compile(r"\s+")


@pytest.fixture
def teams(db, bank_hours, make_team, make_user):
    s = db.session
    sup = make_user("supervisor", full_name="Sup North")
    north = make_team(name="North", supervisor_id=sup.id)
    south = make_team(name="South")
    u = {"sup": sup, "north": north, "south": south}
    for key, role, team in [("a1", "agent", north), ("a2", "agent", north),
                            ("f1", "field_agent", north), ("b", "agent", south),
                            ("g", "field_agent", south)]:
        u[key] = make_user(role, username=f"{key}_user", full_name=f"User {key.upper()}",
                           team_id=team.id)
    n = 0

    def cases(count, phone, field, status="open"):
        nonlocal n
        for _ in range(count):
            n += 1
            s.add(Customer(cif=f"CNT{n:05d}", name=f"Customer {n}", source_system="T24"))
            s.flush()
            s.add(Case(cif=f"CNT{n:05d}", status=status, max_dpd=10 + n, priority=100 + n,
                       total_overdue=Decimal(1_000_000 * n),
                       assigned_agent_id=u[phone].id if phone else None,
                       assigned_field_agent_id=u[field].id if field else None))

    cases(5, "a1", "f1")
    cases(3, "a1", "g")
    cases(2, "a2", None)
    cases(4, "b", "f1")
    cases(1, None, None)
    cases(1, "a1", None, status="closed")
    now = clock.now()
    # the call centre never heard of field agents: F1 reads "offline" there, yet he is on the
    # road with his phone sending positions; G's last position is an hour old
    s.add(AgentStatus(agent_id=u["f1"].id, status="offline", since=now - timedelta(hours=3)))
    s.add(AgentStatus(agent_id=u["a1"].id, status="on_call", since=now - timedelta(minutes=4)))
    for key, age in (("f1", timedelta(minutes=2)), ("g", timedelta(hours=1))):
        s.add(AgentLocation(agent_id=u[key].id, lat=10.7769, lon=106.7009, accuracy_m=8,
                            recorded_at=now - age, received_at=now - age, source="api"))
    s.commit()
    return u


def _html(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return SQUASH.sub(" ", response.get_data(as_text=True))


def _matching(client, query: str) -> int:
    html = _html(client, f"/supervisor/assignment/?{query}")
    return int(re.search(r'data-testid="case-total">([\d,]+) matching', html)
               .group(1).replace(",", ""))


def _home_team(html: str) -> tuple[int, int]:
    found = re.search(r"([\d,]+) phone · ([\d,]+) field cases", html)
    return int(found.group(1).replace(",", "")), int(found.group(2).replace(",", ""))


def _text(cell: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", cell).split())


def _home_member(html: str, full_name: str) -> dict:
    """A member's row of the supervisor's home: status (as data-status says, else the badge's
    words: "On call" → on_call), phone cases, field cases."""
    row = re.search(rf'<tr[^>]*>\s*<td><span class="primary"[^>]*>{full_name}</span>(.*?)</tr>',
                    html).group(1)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    marked = re.search(r'data-status="([^"]*)"', row)
    status = marked.group(1) if marked else _text(cells[0]).lower().replace(" ", "_")
    return {"status": status, "phone": int(_text(cells[1]).replace(",", "")),
            "field": int(_text(cells[2]).replace(",", ""))}


def _loads(html: str) -> dict[str, int]:
    return {user: int(n.replace(",", "")) for user, n in
            re.findall(r'<strong data-agent="([^"]+)">([\d,]+)</strong>', html)}


def test_home_and_assignment_count_a_teams_cases_the_same_way(client, login, teams):
    login(teams["sup"])
    home = _html(client, "/")
    north = teams["north"].id
    assert _home_team(home) == (10, 9)  # A1 8 + A2 2; F1 5 + 4
    assert _matching(client, f"role=agent&team={north}") == 10
    assert _matching(client, f"role=field_agent&team={north}") == 9
    for key in ("a1", "a2", "f1"):
        member = _home_member(home, teams[key].full_name)
        role = "field_agent" if key == "f1" else "agent"
        held = member["field"] if key == "f1" else member["phone"]
        assert _matching(client, f"role={role}&agent={teams[key].id}") == held, key
        assert _loads(_html(client, f"/supervisor/assignment/?role={role}"))[
            teams[key].username] == held, key
    assert _home_member(home, teams["a1"].full_name)["phone"] == 8


def test_a_field_agent_reads_live_on_home_as_on_the_map(client, login, teams):
    login(teams["sup"])
    home = _html(client, "/")
    shown = {a["username"]: a for a in json.loads(client.get("/field/map/data").data)["agents"]}
    assert shown["f1_user"]["stale"] is False  # the map: live
    assert _home_member(home, teams["f1"].full_name)["status"] == "live"
    # a call agent's status is the call centre's, as the board shows it (none yet: offline)
    board = _html(client, "/supervisor/board")
    for key in ("a1", "a2"):
        on_board = re.search(rf'data-agent="{teams[key].username}" data-status="([^"]+)"',
                             board).group(1)
        assert _home_member(home, teams[key].full_name)["status"] == on_board, key


def test_the_field_agents_queue_holds_his_field_cases(client, login, csrf_token, db, teams):
    f1 = login(teams["f1"])
    home = _html(client, "/")
    stat = re.search(r'data-testid="stat-field-cases">.*?class="stat-value[^"]*">([^<]+)<', home)
    assert stat.group(1).strip() == "9"
    queue_page = _html(client, "/cases/")
    assert "9 open cases assigned to you" in queue_page
    response = client.post("/cases/next", headers={"X-CSRFToken": csrf_token("/cases/")})
    assert response.status_code == 302
    cif = response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    case = db.session.scalar(select(Case).where(Case.cif == cif))
    assert case.assigned_field_agent_id == f1.id  # one of his, not the shared pool's
    assert case.assigned_agent_id != f1.id
    pool = db.session.scalar(select(Case).where(Case.assigned_agent_id.is_(None),
                                                Case.assigned_field_agent_id.is_(None)))
    assert pool is not None  # the unassigned case stays in the call agents' pool
