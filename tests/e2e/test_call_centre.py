"""The call centre in the browser, with the sandbox call centre on its own port: the supervisor's
board follows the call centre without a reload; an agent clicks a number, the call arrives from
the sandbox and the agent records its outcome on the case."""

from __future__ import annotations

import re
from datetime import timedelta

import requests
from playwright.sync_api import expect

from portal import clock
from tests.factories import DEFAULT_PASSWORD
from tests.integration.test_call_centre import (  # noqa: F401 - fixtures
    callcentre,
    open_window,
    portal,
    portfolio,
    post_event,
    simulate,
    team_of_agents,
)


def test_board_follows_the_call_centre_without_reload(page, app, db, portal, callcentre,  # noqa: F811,E501
                                                      team_of_agents, portfolio, sign_in,  # noqa: F811
                                                      screenshot):
    app.config["BOARD_POLL_SECONDS"] = 1
    try:
        supervisor, agents = team_of_agents(8)
        numbers = portfolio(20)
        callcentre.centre.reset([{"agent_id": a.cti_agent_id, "extension": a.phone_extension}
                                 for a in agents])
        # a morning of calls, then the current state of each agent
        simulate(callcentre, agents=[a.cti_agent_id for a in agents[:7]], phones=sorted(numbers),
                 minutes=90, seed=4, unknown_rate=0.05)
        for i, agent in enumerate(agents[:7]):
            status = ("available", "on_call", "wrap_up", "break")[i % 4]
            requests.post(f"{callcentre.url}/_sandbox/agents/{agent.cti_agent_id}/status",
                          json={"status": status}, timeout=10)
        now = clock.now()
        post_event(portal.url, "agent.status_changed",  # on a break for 35 minutes: stuck
                   {"agent_id": agents[7].cti_agent_id, "status": "break"},
                   now - timedelta(minutes=35))
        live = {"call_id": "LIVE-1", "direction": "outbound",
                "agent_id": agents[1].cti_agent_id, "phone": sorted(numbers)[0],
                "started_at": (now - timedelta(minutes=2)).isoformat()}
        post_event(portal.url, "call.started", live, now - timedelta(minutes=2))
        post_event(portal.url, "call.answered", live, now - timedelta(seconds=95))
        sign_in(page, supervisor.username, DEFAULT_PASSWORD)
        page.goto(f"{portal.url}/supervisor/board")
        rows = page.get_by_test_id("board-row")
        expect(rows).to_have_count(8)
        expect(page.get_by_test_id("stuck")).to_have_count(1)
        target = agents[0]
        row = page.locator(f'[data-testid="board-row"][data-agent="{target.username}"]')
        expect(row).to_have_attribute("data-status", "available")
        page.evaluate("window.__marker = 'no reload'")
        requests.post(f"{callcentre.url}/_sandbox/agents/{target.cti_agent_id}/status",
                      json={"status": "break"}, timeout=10)
        expect(row).to_have_attribute("data-status", "break", timeout=8000)
        assert page.evaluate("window.__marker") == "no reload"
        expect(page.get_by_test_id("count-break")).to_contain_text("3")
        page.get_by_test_id("sort-name").click()
        expect(page.get_by_test_id("sort-name")).to_contain_text("▲")
        page.get_by_test_id("board-status").select_option("break")
        expect(rows).to_have_count(3)
        page.goto(f"{portal.url}/supervisor/board")
        expect(rows).to_have_count(8)
        screenshot(page, "agent_board")
    finally:
        app.config["BOARD_POLL_SECONDS"] = 5


def test_agent_clicks_a_number_and_records_the_outcome(page, app, db, portal, callcentre,  # noqa: F811,E501
                                                       team_of_agents, open_window,  # noqa: F811
                                                       ws_action_codes, make_loan, make_phone,
                                                       sign_in, screenshot):
    from portal.models import Case

    _, agents = team_of_agents(1)
    agent = agents[0]
    callcentre.centre.reset([{"agent_id": agent.cti_agent_id, "extension": "2001",
                              "status": "available"}])
    callcentre.centre.timing.update({"ring": 0.5, "talk": 1.5, "wrap": 1.0})
    loan = make_loan(dpd=35)
    db.session.add(Case(cif=loan.cif, assigned_agent_id=agent.id))
    db.session.commit()
    phone = make_phone(loan.cif, "0912345000")
    sign_in(page, agent.username, DEFAULT_PASSWORD)
    page.goto(f"{portal.url}/cases/{loan.cif}")
    expect(page.get_by_test_id("agent-status-pill")).to_be_visible()
    page.get_by_test_id(f"call-{phone.id}").click()
    widget = page.get_by_test_id("call-widget")
    expect(widget).to_be_visible()
    expect(widget).to_have_attribute("data-state", re.compile("ringing|answered"))
    expect(page.get_by_test_id("agent-status-pill")).to_be_visible()
    expect(page.get_by_test_id("outcome-form")).to_be_visible(timeout=15000)
    timeline = page.get_by_test_id("panel-timeline")
    expect(timeline).to_contain_text("outcome to record")  # the call, waiting for its result
    screenshot(page, "call_awaiting_outcome")
    page.get_by_test_id("outcome-result").select_option(label="Promise to pay (promise)")
    page.get_by_test_id("outcome-promise-amount").fill("2500000")
    page.get_by_test_id("outcome-notes").fill("Pays on Friday")
    page.get_by_test_id("outcome-save").click()
    expect(page.get_by_test_id("outcome-saved")).to_contain_text("Promise to pay")
    expect(timeline).to_contain_text("Pays on Friday")
    expect(timeline).to_contain_text("Promise to pay")
    screenshot(page, "call_outcome_recorded")
