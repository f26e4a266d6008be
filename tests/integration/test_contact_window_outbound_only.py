"""The contact window limits outbound contact only (issue 19, finding 14).

- A call the customer makes is recorded at any hour: its result on the action form ("Customer
  called, promise to pay" at 22:51), a manual log of it, the outcome of an inbound CTI call.
- An outbound call outside the window, from any source (the dialler's CTI events over real
  HTTP, in any order; a call logged by hand), is recorded and flagged on its call record with
  the window it broke, listed in My calls and on the supervisor's board, told to the team's
  supervisor once per agent and day, and counted in the KPIs (equal to a recount from the raw
  call records). The invariant proposed for ``flask check invariants`` holds afterwards.

The clock is frozen at 22:51 bank time on the running business date, whatever TEST_CLOCK says.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import func, select, text

from portal import clock
from portal.ops import invariants
from tests.integration.test_call_centre import (  # noqa: F401 - fixtures
    portal,
    post_event,
    team_of_agents,
)

WINDOW = "07:00–21:00"

def html_of(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def bank_time(hour: int, minute: int, second: int = 0) -> datetime:
    """``hour:minute`` bank time on the running clock's business date (UTC)."""
    return clock.bank_datetime(clock.bank_today(clock.running_now()),
                               time(hour, minute, second))


@pytest.fixture
def night(db, frozen_now, team_of_agents, ws_case, make_phone, ws_action_codes,  # noqa: F811
          client, login, csrf_token):
    """22:51 bank time; a supervisor, an agent (CTI-2001) and a case of the agent's with a
    mobile; the agent logged in."""
    late = frozen_now(bank_time(22, 51))
    supervisor, agents = team_of_agents(1)
    agent = agents[0]
    case = ws_case(agent, dpd=30, overdue="4000000")
    phone = make_phone(case.cif, "0912000555")
    login(agent)
    token = csrf_token(f"/cases/{case.cif}")

    class Night:
        pass

    n = Night()
    n.now, n.supervisor, n.agent, n.case, n.phone, n.token = late, supervisor, agent, case, \
        phone, token
    n.codes = ws_action_codes
    return n


def cti_call(url: str, call_id: str, agent, phone: str, direction: str, started: datetime,
             seconds: int = 40, *, ended_first: bool = False) -> None:
    """A call's events as the dialler posts them (the end first when ``ended_first``)."""
    data = {"call_id": call_id, "agent_id": agent.cti_agent_id, "phone": phone,
            "direction": direction, "started_at": started.isoformat()}
    ended = started + timedelta(seconds=seconds + 10)
    end = {**{k: v for k, v in data.items() if k != "started_at"}, "duration_seconds": seconds,
           "disposition": "ANSWERED", "answered_at": (started + timedelta(seconds=10))
           .isoformat(), "ended_at": ended.isoformat()}
    steps = [("call.started", data, started), ("call.ended", end, ended)]
    if ended_first:
        steps.reverse()
    for kind, body, at in steps:
        response = post_event(url, kind, body, at)
        assert response.status_code == 200, response.text


def test_inbound_calls_and_their_outcomes_are_recorded_outside_the_window(
        db, client, portal, night):  # noqa: F811
    from portal.models import Action, CallRecord, Promise

    case, codes, token = night.case, night.codes, night.token
    headers = {"X-CSRFToken": token, "HX-Request": "true", "HX-Target": "action-form"}
    promise_date = clock.add_days(clock.bank_today(), 2).isoformat()
    # the action form at 22:51: "Customer called, promise to pay"
    response = client.post(f"/cases/{case.cif}/actions", headers=headers, data={
        "action_code_id": codes[("CALL", "INBOUND", "PTP")].id,
        "account_number": case.loan.account_number, "phone_id": night.phone.id,
        "promise_amount": "3000000", "promise_date": promise_date,
        "notes": "called us after work"})
    assert response.status_code == 200, html_of(response)
    assert 'data-testid="contact-refused"' not in html_of(response)
    db.session.rollback()
    promise = db.session.scalar(select(Promise).where(Promise.cif == case.cif))
    assert promise is not None and promise.status == "pending"

    # a manual log of an inbound call at 22:51: recorded, not a breach
    saved = client.post("/calls/manual", headers={"X-CSRFToken": token}, data={
        "cif": case.cif, "phone_id": night.phone.id, "direction": "inbound",
        "duration_minutes": "2", "action_code_id": codes[("CALL", "INBOUND", "RPC_QUERY")].id})
    assert saved.status_code == 200, html_of(saved)
    db.session.rollback()
    manual = db.session.scalar(select(CallRecord).where(CallRecord.source == "manual"))
    assert manual.direction == "inbound" and manual.window_breach is None

    # an inbound CTI call at 22:47 and its outcome
    cti_call(portal.url, "IN-NIGHT-1", night.agent, night.phone.number_e164, "inbound",
             bank_time(22, 47))
    db.session.rollback()
    record = db.session.scalar(select(CallRecord).where(CallRecord.call_id == "IN-NIGHT-1"))
    assert record.window_breach is None and record.action_id is not None
    outcome = client.post("/calls/IN-NIGHT-1/outcome", headers={"X-CSRFToken": token}, data={
        "action_code_id": codes[("CALL", "INBOUND", "RPC_QUERY")].id})
    assert outcome.status_code == 200, html_of(outcome)
    db.session.rollback()
    assert db.session.get(Action, record.action_id).result == "RPC_QUERY"

    # the window still limits outbound contact: a call to the customer now is refused
    refused = client.post(f"/cases/{case.cif}/actions", headers=headers, data={
        "action_code_id": codes[("CALL", "OUTBOUND", "NO_ANSWER")].id,
        "phone_id": night.phone.id})
    assert refused.status_code == 422
    assert "outside the contact window" in html_of(refused)
    # a manual log whose direction contradicts its result is an error on the direction
    wrong = client.post("/calls/manual", headers={"X-CSRFToken": token}, data={
        "cif": case.cif, "phone_id": night.phone.id, "direction": "inbound",
        "action_code_id": codes[("CALL", "OUTBOUND", "NO_ANSWER")].id})
    assert wrong.status_code == 422
    assert 'data-error-for="direction"' in html_of(wrong)


def test_outbound_calls_outside_the_window_are_flagged_shown_told_and_counted(
        app, db, client, login, portal, night):  # noqa: F811
    from portal.calls import operations as calls
    from portal.kpi import operations as kpis
    from portal.models import CallRecord, Notification

    agent, case, codes, token = night.agent, night.case, night.codes, night.token
    number = night.phone.number_e164
    # the dialler, for agent01 at 22:44 and 22:49; the second call's end arrives first
    cti_call(portal.url, "OUT-NIGHT-1", agent, number, "outbound", bank_time(22, 44))
    cti_call(portal.url, "OUT-NIGHT-2", agent, number, "outbound", bank_time(22, 49),
             ended_first=True)
    # inside the window, and an inbound call at night: not breaches
    cti_call(portal.url, "OUT-DAY-1", agent, number, "outbound", bank_time(20, 30))
    cti_call(portal.url, "IN-NIGHT-2", agent, number, "inbound", bank_time(22, 45))
    # a call dialled by hand at 22:48, logged at 22:51: recorded and flagged, not refused
    saved = client.post("/calls/manual", headers={"X-CSRFToken": token}, data={
        "cif": case.cif, "phone_id": night.phone.id, "direction": "outbound",
        "started_time": "22:48", "duration_minutes": "1",
        "action_code_id": codes[("CALL", "OUTBOUND", "NO_ANSWER")].id})
    assert saved.status_code == 200, html_of(saved)

    db.session.rollback()
    flags = dict(db.session.execute(select(CallRecord.call_id, CallRecord.window_breach)).all())
    manual_id = next(c for c in flags if c.startswith("MAN-"))
    assert flags == {"OUT-NIGHT-1": WINDOW, "OUT-NIGHT-2": WINDOW, manual_id: WINDOW,
                     "OUT-DAY-1": None, "IN-NIGHT-2": None}

    # My calls: each breach on its row, and the day's count
    day = clock.bank_today()
    page = html_of(client.get(f"/calls/?day={day.isoformat()}"))
    assert page.count('data-testid="window-breach"') == 3
    assert re.search(r'data-testid="history-breaches">.*?stat-value">3<', page)

    # the supervisor: told once (agent and day), the board counts 3
    supervisor = night.supervisor
    told = list(db.session.scalars(select(Notification).where(
        Notification.user_id == supervisor.id, Notification.kind == "window_breach")))
    assert len(told) == 1
    assert told[0].link == f"/calls/?agent={agent.id}&day={day.isoformat()}"
    assert "outside the contact window" in told[0].title and WINDOW in told[0].body
    login(supervisor)
    board = html_of(client.get("/supervisor/board"))
    assert re.search(r'data-testid="total-breaches">.*?stat-value">3<', board)
    row = re.search(rf'data-agent="{agent.username}".*?</tr>', board).group(0)
    assert re.search(r'data-testid="agent-breaches">.*?>3</a>', row)
    inbox = html_of(client.get("/notifications/"))
    assert "outside the contact window" in inbox

    # the KPIs: the figure equals a recount from the raw call records
    figures = next(r for r in kpis.dashboard(db.session, [agent.team_id], "today").agent_rows
                   if r.key == agent.id)
    zone = str(clock.bank_zone())
    recount = db.session.scalar(text(
        "SELECT count(*) FROM call_records WHERE agent_id = :a AND direction = 'outbound' "
        "AND (started_at AT TIME ZONE :zone)::date = :day "
        "AND NOT ((started_at AT TIME ZONE :zone)::time >= '07:00' "
        "         AND (started_at AT TIME ZONE :zone)::time < '21:00')"),
        {"a": agent.id, "zone": zone, "day": day})
    assert figures.values["window_breaches"] == recount == 3
    dashboard = html_of(client.get("/supervisor/kpi/?period=today"))
    assert "Window breaches" in dashboard
    assert "window_breaches" in client.get("/supervisor/kpi/export.csv?period=today") \
        .get_data(as_text=True).splitlines()[0]

    # the invariant holds, and would catch an unflagged breach
    assert violations(db.session, "call_window_breaches") == []
    db.session.execute(text("UPDATE call_records SET window_breach = NULL "
                            "WHERE call_id = 'OUT-NIGHT-1'"))
    assert [(v["call_id"], v["problem"]) for v in violations(db.session,
                                                             "call_window_breaches")] == [
        ("OUT-NIGHT-1", "outbound call outside the window")]
    db.session.rollback()
    assert calls.BREACH_KIND == "window_breach"



def violations(session, name: str) -> list[dict]:
    """The rows ``flask check invariants`` names for the invariant ``name``."""
    [result] = invariants.check_all(session, names=[name])
    assert result.error is None, result.error
    return result.sample


@pytest.mark.parametrize("local", ["06:59:59", "07:30:00", "07:59:59", "08:00:00", "19:59:59",
                                   "20:00:00", "23:30:00", "00:00:00"])
def test_the_sql_breach_rule_is_the_python_rule_with_the_stored_window(db, local):
    from portal.cases import contact_rules
    from portal.cases.contact_rules import ContactRules, window_breach, window_breach_sql

    rules = ContactRules(window_start=time(8, 0), window_end=time(20, 0))
    contact_rules.save_contact_rules(db.session, rules, None)
    db.session.flush()
    at = datetime.combine(clock.bank_today(), time.fromisoformat(local),
                          tzinfo=clock.bank_zone()).astimezone(UTC)
    for direction in ("outbound", "inbound"):
        in_sql = db.session.execute(text(
            f"WITH w AS {contact_rules.WINDOW_SQL} "
            f"SELECT {window_breach_sql(':direction', ':at', ':zone')} FROM w"),
            {"direction": direction, "at": at, "zone": str(clock.bank_zone())}).scalar()
        assert in_sql == window_breach(rules, direction, at), (direction, local)
    assert window_breach(rules, "outbound", at) in (None, "08:00–20:00")
    db.session.rollback()


def test_a_call_record_without_an_agent_or_a_supervisor_is_flagged_without_telling(
        db, portal, night):  # noqa: F811
    from portal.models import CallRecord, Notification

    cti_call(portal.url, "OUT-NOBODY", type("A", (), {"cti_agent_id": "CTI-0000"}),
             night.phone.number_e164, "outbound", bank_time(23, 5) - timedelta(hours=1))
    db.session.rollback()
    record = db.session.scalar(select(CallRecord).where(CallRecord.call_id == "OUT-NOBODY"))
    assert record.window_breach == WINDOW and record.agent_id is None
    assert db.session.scalar(select(func.count()).select_from(Notification)) == 0
