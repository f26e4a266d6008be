"""A strategy's daily run, end to end in the browser and in Vietnamese (issue 23 acceptance): the
supervisor starts today's run from the strategies page; the worker runs it; the SMS it queued
goes through the sandbox gateway and its delivery report shows on the case's timeline; the
account at the call step goes to the team's queue ahead of a case the strategy leaves alone —
at 1440 px and on a phone (390 px), clean of serious axe violations."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from rq import SimpleWorker
from sqlalchemy import select

from portal import clock
from portal.messages import dispatch
from portal.models import IntegrationRun, Message
from portal.queues import get_queue
from portal.strategies import operations
from tests.e2e.test_vietnamese_walk import page_problems
from tests.factories import DEFAULT_PASSWORD
from tests.messages_support import wait_until

WIDTHS = {1440: {"width": 1440, "height": 900}, 390: {"width": 390, "height": 844}}


def _strategy(db, supervisor, team, at):
    """Accounts up to DPD 30: an SMS reminder from DPD 10, the team's call queue (weight 200)
    from DPD 5."""
    strategy = operations.create_strategy(db.session, supervisor, "NHAC_SOM", "Nhắc sớm")
    version = strategy.versions[0]
    segment = operations.add_segment(db.session, supervisor, version, "Sớm",
                                     [{"field": "dpd", "op": "le", "value": "30"}], [])
    operations.add_step(db.session, supervisor, segment,
                        {"key": "dpd", "at_value": "5", "action": "call",
                         "priority_weight": "200", "team_id": str(team.id)})
    operations.add_step(db.session, supervisor, segment,
                        {"key": "dpd", "at_value": "10", "action": "sms",
                         "template_code": "SMS_NHAC"})
    operations.activate(db.session, supervisor, version, at)
    db.session.commit()
    return strategy


@pytest.mark.parametrize("width", WIDTHS)
def test_the_daily_run_texts_through_the_gateway_and_fills_the_teams_call_queue(
        page, live_server, db, redis_client, make_user, make_team, ws_case, make_phone,
        make_template, bank_hours, sign_in, screenshot, sms_gateway, width):
    team = make_team(name="Đội Gọi 1")
    supervisor = make_user("supervisor", full_name="Lê Văn Giám", team_id=team.id,
                           language="vi")
    agent = make_user("agent", full_name="Trần Thị Thu", team_id=team.id, language="vi")
    make_template("SMS_NHAC", name="Nhắc nợ SMS")
    texted = ws_case(agent, dpd=12, overdue="5000000")
    make_phone(texted.cif, "0912345678", is_primary=True, is_verified=True,
               verified_at=bank_hours - timedelta(days=40))
    to_call = ws_case(None, dpd=7, overdue="2000000")
    # more overdue and later, but outside the strategy: without its weight it would come first
    untouched = ws_case(None, dpd=45, overdue="90000000")
    _strategy(db, supervisor, team, bank_hours)

    page.set_viewport_size(WIDTHS[width])
    sign_in(page, supervisor.username, DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/strategies/")
    page.get_by_test_id("strategy-run-now").click()
    expect(page.locator(".flashes")).to_contain_text("Lần chạy hằng ngày đã bắt đầu")
    queue = get_queue("default", redis_client)
    assert len(queue) == 1
    SimpleWorker([queue], connection=redis_client).work(burst=True)
    db.session.expire_all()
    run = db.session.scalar(select(IntegrationRun).where(IntegrationRun.integration
                                                         == "STRATEGIES"))
    assert run is not None and run.status == "succeeded", run and run.errors
    assert (run.control_totals["messages"], run.control_totals["cases_weighted"]) == (1, 1)
    page.reload()
    row = page.get_by_test_id(f"strategy-run-{run.id}")
    expect(row).to_contain_text("Thành công")
    screenshot(page, f"strategy-run-vi-{width}")
    assert page_problems(page) == []

    # the SMS the run queued: rendered, sent through the sandbox gateway, delivered
    assert dispatch.dispatch_due(db.session, clock.now()) == {"sent": 1}
    message = db.session.scalar(select(Message))
    assert (message.cif, message.source) == (texted.cif, "strategy")

    def delivered():
        db.session.expire_all()
        return db.session.get(Message, message.id).status == "delivered"

    assert wait_until(delivered), "no delivery report"

    page.context.clear_cookies()
    sign_in(page, agent.username, DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/cases/{texted.cif}")
    status = page.get_by_test_id("message-status").first
    expect(status).to_have_attribute("data-message-status", "delivered")
    expect(status).to_contain_text("Đã đến người nhận")
    screenshot(page, f"strategy-sms-delivered-vi-{width}")
    assert page_problems(page) == []

    # the call step put the DPD-7 account first in the team's shared queue
    page.goto(f"{live_server.url}/cases/")
    page.get_by_test_id("next-case").first.click()
    expect(page).to_have_url(re.compile(rf"/cases/{to_call.cif}$"))
    assert untouched.cif != to_call.cif
    screenshot(page, f"strategy-call-case-vi-{width}")
    assert page_problems(page) == []
