"""Call centre over real HTTP: the sandbox call centre (its own port) posts signed CTI events to
the portal (a live server on a free port); the portal calls the sandbox's REST API back."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from datetime import time as dtime

import pytest
import requests
from sqlalchemy import func, select

from integrations.sandbox._api import ServerThread
from integrations.sandbox.callcentre_server import create_app as create_callcentre
from portal import clock
from portal.signing import signed_headers
from tests.integration.test_events_support import wait_for

SECRET = "test-cti-secret"
API_KEY = "test-cc-key"


@pytest.fixture
def portal(app, live_server, db):
    """The live portal configured for the sandbox call centre (restored afterwards)."""
    saved = {k: app.config.get(k) for k in ("CTI_WEBHOOK_SECRETS", "CALLCENTRE_URL",
                                            "CALLCENTRE_API_KEY")}
    app.config["CTI_WEBHOOK_SECRETS"] = SECRET
    app.config["CALLCENTRE_API_KEY"] = API_KEY
    yield live_server
    app.config.update(saved)


@pytest.fixture
def callcentre(app, portal):
    """The sandbox call centre on a free port, posting to the live portal."""
    sandbox = create_callcentre(agents=[], portal_url=portal.url, secret=SECRET,
                                api_key=API_KEY, traffic=False,
                                timing={"ring": 0.3, "talk": 0.6, "wrap": 0.3})
    with ServerThread(sandbox) as server:
        app.config["CALLCENTRE_URL"] = server.url
        server.centre = sandbox.extensions["callcentre"]
        yield server


@pytest.fixture
def team_of_agents(db, make_team, make_user):
    """A supervisor and ``n`` call agents (extensions 2001…, agent ids CTI-2001…)."""

    def make(n: int):
        team = make_team(name=f"Calls {uuid.uuid4().hex[:6]}")
        supervisor = make_user(role="supervisor", team_id=team.id)
        team.supervisor_id = supervisor.id
        db.session.commit()
        agents = [make_user(role="agent", team_id=team.id, phone_extension=str(2001 + i),
                            cti_agent_id=f"CTI-{2001 + i}") for i in range(n)]
        return supervisor, agents

    return make


@pytest.fixture
def portfolio(db, make_customer, make_phone):
    """Customers with mobiles and a reference person's phone each; returns E.164 numbers by
    cif (the reference's number maps to the customer too)."""

    def make(n: int):
        from portal.models import Phone, ReferenceCustomer

        numbers: dict[str, str] = {}
        for i in range(n):
            customer = make_customer()
            phone = make_phone(customer, f"090{i:07d}")
            numbers[phone.number_e164] = customer.cif
            if i % 4 == 0:
                ref = ReferenceCustomer(ref_cif=f"R{customer.cif}", primary_cif=customer.cif,
                                        relationship_type="spouse", name="Tran Thi Vo",
                                        source_system="T24")
                db.session.add(ref)
                db.session.commit()
                ref_phone = Phone(ref_cif=ref.ref_cif, number=f"091{i:07d}",
                                  number_e164=f"+8491{i:07d}", type="MOBILE",
                                  source_system="T24")
                db.session.add(ref_phone)
                db.session.commit()
                numbers[ref_phone.number_e164] = customer.cif
        return numbers

    return make


def post_event(url: str, kind: str, data: dict, at: datetime, event_id: str | None = None,
               secret: str = SECRET) -> requests.Response:
    body = json.dumps({"event_id": event_id or uuid.uuid4().hex, "type": kind,
                       "occurred_at": at.astimezone(UTC).isoformat(), "data": data}).encode()
    return requests.post(url + "/api/v1/cti/events", data=body,
                         headers=signed_headers(secret, body), timeout=10)


def assert_portal_holds_exactly(db, result: dict, numbers: dict[str, str], agents) -> None:
    from portal.models import Action, AgentStatus, CallRecord, Event

    db.session.rollback()
    expected = {c["call_id"]: c for c in result["calls"]}
    records = {r.call_id: r for r in db.session.scalars(select(CallRecord))}
    assert set(records) == set(expected), "call records differ from the calls made"
    by_ref = {a.cti_agent_id: a.id for a in agents}
    for call_id, call in expected.items():
        record = records[call_id]
        assert record.agent_id == by_ref[call["agent_id"]]
        assert record.phone == call["phone"]
        assert record.direction == call["direction"]
        assert record.duration_s == call["duration_seconds"]
        assert record.disposition == call["disposition"]
        assert (record.answered_at is not None) == ("answered_at" in call)
        assert record.started_at == datetime.fromisoformat(call["started_at"])
        assert record.ended_at == datetime.fromisoformat(call["ended_at"])
        assert record.cif == numbers.get(call["phone"])
        assert (record.unmatched_reason == "unknown_number") == call["unknown_number"]
    actions = list(db.session.scalars(select(Action)))
    matched = [c for c in expected.values() if not c["unknown_number"]]
    assert len(actions) == len(matched)
    assert {a.call_id for a in actions} == {c["call_id"] for c in matched}
    for action in actions:
        record = records[action.call_id]
        assert (action.type, action.result, action.source) == ("CALL", None, "cti")
        assert action.cif == record.cif and action.agent_id == record.agent_id
        assert record.action_id == action.id
    logged = db.session.scalar(select(func.count()).select_from(Event)
                               .where(Event.type == "CALL_LOGGED"))
    assert logged == len(expected)
    statuses = {s.agent_id: s.status for s in db.session.scalars(select(AgentStatus))}
    for ref, status in result["final_status"].items():
        assert statuses[by_ref[ref]] == status
    assert all(s.current_call_id is None for s in db.session.scalars(select(AgentStatus)))


def simulate(server, **body) -> dict:
    response = requests.post(server.url + "/_sandbox/simulate", json=body, timeout=600)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["failed"] == 0
    return result


def test_a_simulated_hour_of_25_agents_gives_exactly_the_calls_and_actions(
        db, callcentre, team_of_agents, portfolio):
    _, agents = team_of_agents(25)
    numbers = portfolio(40)
    result = simulate(callcentre, agents=[a.cti_agent_id for a in agents],
                      phones=sorted(numbers), minutes=60, seed=3, unknown_rate=0.1)
    assert len(result["calls"]) > 25 * 5  # a busy hour: several calls per agent
    assert any(c["unknown_number"] for c in result["calls"])
    assert any(c["phone"] in numbers and numbers[c["phone"]] for c in result["calls"])
    assert_portal_holds_exactly(db, result, numbers, agents)


def test_duplicated_and_shuffled_events_end_in_the_same_state(
        db, callcentre, team_of_agents, portfolio):
    _, agents = team_of_agents(6)
    numbers = portfolio(12)
    result = simulate(callcentre, agents=[a.cti_agent_id for a in agents],
                      phones=sorted(numbers), minutes=45, seed=5, unknown_rate=0.1,
                      duplicate_rate=0.5, shuffle=True)
    assert result["posted"] > result["events"]  # duplicates were sent
    assert_portal_holds_exactly(db, result, numbers, agents)


def snapshot(db, prefix: str) -> dict:
    from portal.models import Action, CallRecord

    db.session.rollback()
    calls = {r.call_id.removeprefix(prefix): (
        r.agent_id, r.cif, r.phone, r.direction, r.started_at, r.answered_at, r.ended_at,
        r.duration_s, r.disposition, r.recording_ref, r.unmatched_reason)
        for r in db.session.scalars(select(CallRecord).where(
            CallRecord.call_id.startswith(prefix)))}
    actions = {a.call_id.removeprefix(prefix): (a.cif, a.agent_id, a.at, a.subtype, a.notes)
               for a in db.session.scalars(select(Action).where(
                   Action.call_id.startswith(prefix)))}
    return {"calls": calls, "actions": actions}


def test_ended_before_answered_and_repeats_give_the_state_of_the_ordered_events(
        db, portal, team_of_agents, portfolio):
    _, agents = team_of_agents(2)
    numbers = portfolio(3)
    phones = sorted(numbers)
    base = clock.now().replace(microsecond=0) - timedelta(minutes=30)
    plans = []
    for n in range(6):
        start = base + timedelta(minutes=3 * n)
        answered = n % 3 != 2
        talk = 40 + n * 7 if answered else 0
        data = {"call_id": f"#{n}", "direction": "outbound",
                "agent_id": agents[n % 2].cti_agent_id, "phone": phones[n % len(phones)],
                "started_at": start.isoformat()}
        events = [("call.started", dict(data), start)]
        if answered:
            events.append(("call.answered", {**data, "answered_at": (
                start + timedelta(seconds=9)).isoformat()}, start + timedelta(seconds=9)))
        end = start + timedelta(seconds=9 + talk)
        events.append(("call.ended", {**data, "ended_at": end.isoformat(),
                                      "duration_seconds": talk,
                                      "answered_at": None,
                                      "disposition": "ANSWERED" if answered else "NO_ANSWER",
                                      "recording_ref": f"rec/{n}.mp3" if answered else None},
                       end))
        plans.append(events)

    def play(prefix: str, order) -> None:
        for kind, data, at, event_id in order:
            data = {**data, "call_id": prefix + data["call_id"]}
            data = {k: v for k, v in data.items() if v is not None}
            response = post_event(portal.url, kind, data, at, event_id=prefix + event_id)
            assert response.status_code == 200, response.text

    ordered = [(k, d, at, f"{i}-{j}") for i, events in enumerate(plans)
               for j, (k, d, at) in enumerate(events)]
    play("A", ordered)
    disordered = [e for e in ordered if e[0] == "call.ended"] + \
        [e for e in ordered if e[0] != "call.ended"]
    disordered += random.Random(1).sample(ordered, 8)  # repeats
    play("B", disordered)
    a, b = snapshot(db, "A"), snapshot(db, "B")
    assert len(a["calls"]) == 6 and len(a["actions"]) == 6
    assert a == b


def test_an_unknown_number_is_a_call_flagged_unmatched_for_supervisors(
        db, portal, client, login, team_of_agents):
    from portal.models import Action, CallRecord

    supervisor, agents = team_of_agents(1)
    at = clock.now() - timedelta(minutes=2)
    data = {"call_id": "UNK-1", "direction": "inbound", "agent_id": agents[0].cti_agent_id,
            "phone": "0987 654 321", "started_at": at.isoformat()}
    assert post_event(portal.url, "call.started", data, at).status_code == 200
    response = post_event(portal.url, "call.ended",
                          {**data, "duration_seconds": 0, "disposition": "NO_ANSWER"},
                          at + timedelta(seconds=20))
    assert response.status_code == 200
    assert response.json()["matched"] is False
    db.session.rollback()
    record = db.session.scalar(select(CallRecord).where(CallRecord.call_id == "UNK-1"))
    assert record.phone == "+84987654321"
    assert record.unmatched_reason == "unknown_number" and record.cif is None
    assert db.session.scalar(select(func.count()).select_from(Action)) == 0
    login(supervisor)
    page = client.get("/supervisor/board").get_data(as_text=True)
    assert "UNK-1" in page and "Unknown number" in page


def test_bad_signatures_and_unreadable_events_are_refused(db, portal):
    at = clock.now()
    wrong = post_event(portal.url, "call.started", {"call_id": "X"}, at, secret="other")
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "signature_mismatch"
    missing = post_event(portal.url, "call.started", {"call_id": "X"}, at)
    assert missing.status_code == 400 and missing.json()["error"]["field"] == "data.phone"
    odd = post_event(portal.url, "call.exploded", {}, at)
    assert odd.status_code == 400 and odd.json()["error"]["field"] == "type"


def _status_form(client, status: str, csrf_token):
    return client.post("/calls/status", data={"status": status},
                       headers={"X-CSRFToken": csrf_token("/calls/")})


def test_call_centre_down_keeps_the_status_unsynced_then_the_job_syncs_it(
        db, app, client, login, callcentre, team_of_agents, csrf_token):
    from portal.models import AgentStatus, AgentStatusEvent
    from workers.jobs.calls import sync_agent_statuses

    supervisor, agents = team_of_agents(1)
    agent = agents[0]
    callcentre.centre.reset([{"agent_id": agent.cti_agent_id, "extension": "2001"}])
    requests.put(callcentre.url + "/_sandbox/faults", json={"outage": True}, timeout=5)
    login(agent)
    response = _status_form(client, "break", csrf_token)
    assert response.status_code == 200
    assert 'data-testid="agent-status-unsynced"' in response.get_data(as_text=True)
    db.session.rollback()
    row = db.session.get(AgentStatus, agent.id)
    assert (row.status, row.synced, row.sync_attempts) == ("break", False, 1)
    assert "unavailable" in row.sync_error
    assert callcentre.centre.agents[agent.cti_agent_id]["status"] == "offline"
    assert sync_agent_statuses()["failed"] == 1  # still down: stays unsynced

    login(supervisor)
    assert "unsynced" in client.get("/supervisor/board").get_data(as_text=True)

    requests.put(callcentre.url + "/_sandbox/faults", json={"outage": False}, timeout=5)
    assert sync_agent_statuses() == {"pending": 1, "synced": 1, "failed": 0}
    db.session.rollback()
    row = db.session.get(AgentStatus, agent.id)
    assert row.synced and row.sync_error is None and row.status == "break"
    assert callcentre.centre.agents[agent.cti_agent_id]["status"] == "break"
    assert [e.status for e in db.session.scalars(select(AgentStatusEvent))] == ["break"]


def test_status_changes_from_the_call_centre_show_and_late_ones_go_to_history(
        db, callcentre, team_of_agents):
    from portal.models import AgentStatus, AgentStatusEvent

    _, agents = team_of_agents(1)
    agent = agents[0]
    callcentre.centre.reset([{"agent_id": agent.cti_agent_id, "extension": "2001"}])
    url = callcentre.url + f"/_sandbox/agents/{agent.cti_agent_id}/status"
    assert requests.post(url, json={"status": "wrap_up"}, timeout=10).status_code == 200
    db.session.rollback()
    assert db.session.get(AgentStatus, agent.id).status == "wrap_up"
    late = post_event(callcentre.centre.portal_url, "agent.status_changed",
                      {"agent_id": agent.cti_agent_id, "status": "break"},
                      clock.now() - timedelta(hours=1))
    assert late.json()["changed"] is False
    db.session.rollback()
    assert db.session.get(AgentStatus, agent.id).status == "wrap_up"
    assert db.session.scalar(select(func.count()).select_from(AgentStatusEvent)) == 2


@pytest.fixture
def open_window(db):
    """Contact rules that allow calls at any hour (the tests run at any time of day)."""
    from portal.cases import contact_rules

    contact_rules.save_contact_rules(
        db.session, contact_rules.ContactRules(window_start=dtime(0, 0),
                                               window_end=dtime(23, 59, 59)), None)
    db.session.commit()


def test_click_to_call_dials_the_call_arrives_and_the_outcome_completes_the_action(
        db, client, login, callcentre, team_of_agents, make_loan, make_phone, csrf_token,
        ws_action_codes, open_window):
    from portal.models import Action, ActionCode, CallRecord, Case, Promise

    _, agents = team_of_agents(1)
    agent = agents[0]
    callcentre.centre.reset([{"agent_id": agent.cti_agent_id, "extension": "2001",
                              "status": "available"}])
    loan = make_loan(dpd=20)
    db.session.add(Case(cif=loan.cif, assigned_agent_id=agent.id))
    db.session.commit()
    phone = make_phone(loan.cif, "0912000111")
    login(agent)
    token = csrf_token("/calls/")
    response = client.post("/calls/dial", data={"cif": loan.cif, "phone_id": phone.id},
                           headers={"X-CSRFToken": token, "HX-Request": "true"})
    assert response.status_code == 200, response.get_data(as_text=True)
    html = response.get_data(as_text=True)
    assert 'data-testid="call-widget"' in html
    call = callcentre.centre.calls[next(iter(callcentre.centre.calls))]
    assert call["phone"] == "+84912000111" and call["reference"] == loan.cif

    def ended():
        db.session.rollback()
        record = db.session.scalar(select(CallRecord).where(
            CallRecord.call_id == call["call_id"]))
        return record if record is not None and record.action_id else None

    record = wait_for(ended, timeout=15.0, what="the call to end")
    assert record.cif == loan.cif and record.agent_id == agent.id and record.answered_at
    widget = client.get(f"/calls/{record.call_id}/widget").get_data(as_text=True)
    assert 'data-testid="outcome-form"' in widget
    ptp = db.session.scalar(select(ActionCode).where(
        ActionCode.type == "CALL", ActionCode.subtype == "OUTBOUND", ActionCode.is_promise))
    saved = client.post(f"/calls/{record.call_id}/outcome", headers={"X-CSRFToken": token},
                        data={"action_code_id": ptp.id, "account_number": loan.account_number,
                              "promise_amount": "3000000",
                              "promise_date": (clock.now().date() + timedelta(days=2))
                              .isoformat(), "notes": "Will pay Friday"})
    assert saved.status_code == 200, saved.get_data(as_text=True)
    assert "case-updated" in saved.headers["HX-Trigger"]
    db.session.rollback()
    action = db.session.get(Action, record.action_id)
    assert (action.result, action.action_code_id, action.notes) == (ptp.result, ptp.id,
                                                                    "Will pay Friday")
    assert db.session.scalar(select(Promise).where(Promise.action_id == action.id)) is not None
    assert db.session.scalar(select(Case).where(Case.cif == loan.cif)).status == "promised"
    again = client.post(f"/calls/{record.call_id}/outcome", headers={"X-CSRFToken": token},
                        data={"action_code_id": ptp.id})
    assert again.status_code == 409
    page = client.get(f"/cases/{loan.cif}").get_data(as_text=True)
    assert f'data-testid="call-{phone.id}"' in page


def test_click_to_call_honours_do_not_contact_without_dialling(
        db, client, login, callcentre, team_of_agents, make_customer, make_phone, csrf_token,
        open_window):
    _, agents = team_of_agents(1)
    callcentre.centre.reset([{"agent_id": agents[0].cti_agent_id, "extension": "2001"}])
    customer = make_customer()
    phone = make_phone(customer, "0912000222", do_not_contact=True)
    login(agents[0])
    response = client.post("/calls/dial", data={"cif": customer.cif, "phone_id": phone.id},
                           headers={"X-CSRFToken": csrf_token("/calls/")})
    assert response.status_code == 422
    assert "do-not-contact" in response.get_data(as_text=True)
    assert callcentre.centre.calls == {}


def test_call_centre_down_offers_manual_logging_and_nothing_is_lost(
        db, client, login, callcentre, team_of_agents, make_loan, make_phone, csrf_token,
        ws_action_codes, open_window):
    from portal.models import Action, ActionCode, CallRecord, Event

    _, agents = team_of_agents(1)
    callcentre.centre.reset([{"agent_id": agents[0].cti_agent_id, "extension": "2001"}])
    requests.put(callcentre.url + "/_sandbox/faults", json={"outage": True}, timeout=5)
    loan = make_loan(dpd=40)
    phone = make_phone(loan.cif, "0912000333")
    login(agents[0])
    token = csrf_token("/calls/")
    response = client.post("/calls/dial", data={"cif": loan.cif, "phone_id": phone.id},
                           headers={"X-CSRFToken": token})
    html = response.get_data(as_text=True)
    assert 'data-testid="callcentre-down"' in html and 'data-testid="manual-call-form"' in html
    code = db.session.scalar(select(ActionCode).where(
        ActionCode.type == "CALL", ActionCode.subtype == "OUTBOUND",
        ActionCode.result == "RPC_REFUSED"))
    saved = client.post("/calls/manual", headers={"X-CSRFToken": token}, data={
        "cif": loan.cif, "phone_id": phone.id, "direction": "outbound",
        "duration_minutes": "2.5", "action_code_id": code.id, "notes": "dialled by hand"})
    assert saved.status_code == 200, saved.get_data(as_text=True)
    db.session.rollback()
    record = db.session.scalar(select(CallRecord))
    assert (record.source, record.duration_s, record.cif) == ("manual", 150, loan.cif)
    action = db.session.get(Action, record.action_id)
    assert (action.result, action.call_id, action.source) == ("RPC_REFUSED", record.call_id,
                                                              "manual")
    event = db.session.scalar(select(Event).where(Event.type == "CALL_LOGGED"))
    assert event.payload["source"] == "manual" and event.payload["call_id"] == record.call_id


def test_daily_reconciliation_adds_calls_the_portal_missed(
        db, app, callcentre, team_of_agents, portfolio):
    from integrations.callcentre.client import CallCentreClient
    from portal import clock
    from portal.calls import operations as calls
    from portal.models import CallRecord, Discrepancy

    _, agents = team_of_agents(3)
    numbers = portfolio(5)
    result = simulate(callcentre, agents=[a.cti_agent_id for a in agents],
                      phones=sorted(numbers), minutes=30, seed=9, unknown_rate=0)
    db.session.rollback()
    lost = result["calls"][0]["call_id"]
    db.session.execute(CallRecord.__table__.delete().where(CallRecord.call_id == lost))
    db.session.commit()
    days = {clock.bank_today(datetime.fromisoformat(c["started_at"])) for c in result["calls"]}
    with CallCentreClient(callcentre.url, API_KEY) as client:
        runs = [calls.reconcile_day(db.session, client, day) for day in sorted(days)]
    db.session.commit()
    assert sum(r.source_count for r in runs) == len(result["calls"])
    gaps = list(db.session.scalars(select(Discrepancy)))
    assert [(g.kind, g.key) for g in gaps] == [("missing_in_crm", lost)]
    assert db.session.scalar(select(CallRecord).where(CallRecord.call_id == lost)) is not None


def test_the_agents_day_lists_calls_outcomes_to_record_and_status_changes(
        db, client, login, portal, team_of_agents, portfolio, make_user):
    supervisor, agents = team_of_agents(2)
    agent = agents[0]
    numbers = portfolio(2)
    known = sorted(numbers)[0]
    at = clock.now() - timedelta(minutes=20)
    for call_id, phone in (("DAY-1", known), ("DAY-2", "0977000111")):
        data = {"call_id": call_id, "agent_id": agent.cti_agent_id, "phone": phone,
                "started_at": at.isoformat()}
        post_event(portal.url, "call.started", data, at)
        post_event(portal.url, "call.ended", {**data, "duration_seconds": 30,
                                              "disposition": "ANSWERED"},
                   at + timedelta(seconds=40))
    post_event(portal.url, "agent.status_changed",
               {"agent_id": agent.cti_agent_id, "status": "break", "reason": "lunch"},
               at + timedelta(minutes=5))
    login(agent)
    page = client.get("/calls/").get_data(as_text=True)
    assert "DAY-1" in page and "DAY-2" in page
    assert page.count('data-testid="awaiting-outcome"') == 1  # the unknown number has none
    assert 'data-testid="unmatched"' in page and "lunch" in page
    widget = client.get("/calls/DAY-1/widget")
    assert widget.status_code == 200 and 'data-testid="outcome-form"' in widget.get_data(
        as_text=True)
    login(agents[1])
    assert client.get("/calls/DAY-1/widget").status_code == 404  # not their call
    login(supervisor)
    page = client.get(f"/calls/?agent={agent.id}").get_data(as_text=True)
    assert "DAY-1" in page and 'data-testid="record-outcome"' not in page
    stranger = make_user(role="agent", cti_agent_id="CTI-9999")
    page = client.get(f"/calls/?agent={stranger.id}").get_data(as_text=True)
    assert stranger.full_name not in page  # not in the supervisor's teams


def test_the_awaiting_outcome_panel_lists_the_agents_pending_calls(
        app, db, portal, team_of_agents, portfolio):
    from flask import render_template
    from flask_login import login_user

    from portal.cases import case_view

    _, agents = team_of_agents(1)
    numbers = portfolio(1)
    phone, cif = next(iter(numbers.items()))
    at = clock.now() - timedelta(minutes=3)
    data = {"call_id": "WAIT-1", "agent_id": agents[0].cti_agent_id, "phone": phone,
            "started_at": at.isoformat()}
    post_event(portal.url, "call.ended", {**data, "duration_seconds": 12}, at)
    db.session.rollback()
    with app.test_request_context("/"):
        login_user(agents[0])
        html = render_template("calls/_awaiting_outcome.html",
                               v=case_view.load_case_view(db.session, cif), can_work=True)
    assert 'data-testid="calls-awaiting-outcome"' in html
    assert "/calls/WAIT-1/widget" in html
