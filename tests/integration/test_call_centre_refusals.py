"""Click-to-call tells the call centre's answer as what it is (issue 19, finding 13): a call
centre that answered and refused the dial (409 ``agent_busy``, 404 ``unknown_agent``) is "the
call centre refused", with its code and message; only one that could not be reached (an
outage's 503s, the breaker open) is "cannot be reached" with manual logging offered; a
refused key says so. Over real HTTP to the sandbox call centre (its fault knobs)."""

from __future__ import annotations

import re

import pytest
import requests
from sqlalchemy import func, select

from integrations.control import breaker, force
from tests.integration.test_call_centre import (  # noqa: F401 - fixtures
    callcentre,
    open_window,
    portal,
    team_of_agents,
)


def text(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


@pytest.fixture
def dialling(db, client, login, callcentre, team_of_agents, make_loan, make_phone,  # noqa: F811
             csrf_token, open_window):  # noqa: F811
    """An agent of the sandbox call centre with a case and its customer's mobile; returns a
    function that clicks Call and gives the response."""
    from portal.models import Case

    _, agents = team_of_agents(1)
    agent = agents[0]
    loan = make_loan(dpd=25)
    db.session.add(Case(cif=loan.cif, assigned_agent_id=agent.id))
    db.session.commit()
    phone = make_phone(loan.cif, "0912000444")
    login(agent)
    token = csrf_token("/calls/")

    def dial():
        return client.post("/calls/dial", data={"cif": loan.cif, "phone_id": phone.id},
                           headers={"X-CSRFToken": token, "HX-Request": "true"})

    dial.agent = agent
    return dial


def call_records(db) -> int:
    from portal.models import CallRecord

    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(CallRecord))


def test_a_busy_agent_is_told_the_call_centre_refused_with_its_code_not_unreachable(
        db, callcentre, dialling):  # noqa: F811
    callcentre.centre.reset([{"agent_id": dialling.agent.cti_agent_id, "extension": "2001",
                              "status": "on_call"}])
    response = dialling()
    html = text(response)
    assert response.status_code == 422, html
    assert 'data-testid="callcentre-refused"' in html and 'data-code="agent_busy"' in html
    assert "The call centre refused the call." in html
    assert "You are already on a call" in html
    # its own answer, as it gave it: status, code and message
    assert "409 agent_busy · the agent is already on a call" in html
    assert "cannot be reached" not in html and 'data-testid="callcentre-down"' not in html
    assert 'data-testid="manual-call-form"' not in html
    assert callcentre.centre.calls == {} and call_records(db) == 0
    # it answered: the call centre is up, its breaker stays closed
    assert breaker("CTI").state().state == "closed"


def test_an_agent_the_call_centre_does_not_know_is_told_so_with_its_code(
        db, callcentre, dialling):  # noqa: F811
    callcentre.centre.reset([{"agent_id": "CTI-7777", "extension": "7777"}])
    response = dialling()
    html = text(response)
    assert response.status_code == 422, html
    assert 'data-code="unknown_agent"' in html
    assert "does not know your agent id or extension" in html
    assert "404 unknown_agent" in html and "cannot be reached" not in html


def test_an_unreachable_call_centre_is_cannot_be_reached_with_manual_logging(
        db, callcentre, dialling):  # noqa: F811
    callcentre.centre.reset([{"agent_id": dialling.agent.cti_agent_id, "extension": "2001"}])
    requests.put(callcentre.url + "/_sandbox/faults", json={"outage": True}, timeout=5)
    html = text(dialling())
    assert 'data-testid="callcentre-down"' in html and 'data-testid="manual-call-form"' in html
    assert "The call centre cannot be reached." in html
    assert "HTTP 503" in html  # what the portal saw
    assert 'data-testid="callcentre-refused"' not in html


def test_an_open_breaker_is_cannot_be_reached_and_the_call_centre_is_not_called(
        db, callcentre, dialling):  # noqa: F811
    callcentre.centre.reset([{"agent_id": dialling.agent.cti_agent_id, "extension": "2001"}])
    force("CTI", "open", None, session=db.session, reason="test")
    db.session.commit()
    html = text(dialling())
    assert "The call centre cannot be reached." in html and "circuit breaker open" in html
    assert 'data-testid="manual-call-form"' in html
    assert callcentre.centre.calls == {}


def test_a_refused_api_key_is_reported_as_such_not_as_unreachable(
        app, db, callcentre, dialling):  # noqa: F811
    callcentre.centre.reset([{"agent_id": dialling.agent.cti_agent_id, "extension": "2001"}])
    app.config["CALLCENTRE_API_KEY"] = "not-the-key"  # the portal fixture restores it
    html = text(dialling())
    assert "The call centre refused the portal&#39;s key." in html
    assert "401" in html and "cannot be reached" not in html
    assert 'data-testid="manual-call-form"' in html  # nobody can dial: log by hand
