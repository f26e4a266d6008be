"""The strategies pages (portal/strategies/views.py): who may see and change them, form errors
next to their field, and a strategy built, simulated and activated through the routes."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import func, select

from portal.models import AuditLog, MessageTemplate, Strategy
from tests.conftest import csrf_token_from

NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


def post(client, url: str, data: dict | None = None, **kwargs):
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    return client.post(url, data={**(data or {}), "csrf_token": token}, **kwargs)


def error_for(html: str, name: str) -> str | None:
    match = re.search(rf'data-error-for="{name}">([^<]*)<', html)
    return match.group(1) if match else None


def test_agents_cannot_reach_the_strategies(client, login_as, frozen_now):
    frozen_now(NOW)
    login_as("agent")
    assert client.get("/strategies/").status_code == 403
    assert post(client, "/strategies/", {"code": "X1", "name": "x"}).status_code == 403


def test_admin_reads_but_does_not_change(client, login_as, frozen_now):
    frozen_now(NOW)
    login_as("admin")
    assert client.get("/strategies/").status_code == 200
    assert post(client, "/strategies/", {"code": "X1", "name": "x"}).status_code == 403


def test_errors_show_next_to_their_field_and_nothing_is_written(db, client, login_as,
                                                               frozen_now):
    frozen_now(NOW)
    login_as("supervisor", language="vi")
    response = post(client, "/strategies/", {"code": "sai mã!", "name": ""})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert error_for(html, "code") == "2 đến 30 chữ in hoa, chữ số hoặc _."
    assert error_for(html, "name") == "Hãy nhập tên."
    assert db.session.scalar(select(func.count()).select_from(Strategy)) == 0


def test_build_simulate_and_activate_through_the_pages(db, client, login_as, frozen_now,
                                                       make_loan, make_customer):
    frozen_now(NOW)
    login_as("supervisor", language="vi")
    db.session.add(MessageTemplate(code="SMS_REMIND", channel="sms", name="Nhắc",
                                   body_vi="Nhắc", body_en="Remind"))
    db.session.commit()
    response = post(client, "/strategies/", {"code": "EARLY", "name": "Sớm", "rank": "10"})
    assert response.status_code == 302
    strategy = db.session.scalar(select(Strategy))
    base = f"/strategies/{strategy.id}"
    # a condition whose value is not a number: the error is next to that value, nothing added
    bad = post(client, f"{base}/segments", {"name": "Sớm", "cond_0_field": "dpd",
                                            "cond_0_op": "le", "cond_0_value": "ba mươi"})
    assert bad.status_code == 422
    assert error_for(bad.get_data(as_text=True), "segment_cond_0_value") == "Nhập một số nguyên."
    ok = post(client, f"{base}/segments", {"name": "Sớm", "cond_0_field": "dpd",
                                           "cond_0_op": "le", "cond_0_value": "30"})
    assert ok.status_code == 302
    segment = strategy.versions[0].segments[0]
    wrong = post(client, f"/strategies/segments/{segment.id}/steps",
                 {"key": "dpd", "at_value": "0", "action": "sms", "template_code": ""})
    assert error_for(wrong.get_data(as_text=True), f"step{segment.id}_template_code") == \
        "Chọn một mẫu tin nhắn."
    assert post(client, f"/strategies/segments/{segment.id}/steps",
                {"key": "dpd", "at_value": "0", "action": "sms",
                 "template_code": "SMS_REMIND"}).status_code == 302
    for dpd in (3, 10, 45):
        customer = make_customer()
        make_loan(customer, dpd=dpd)
        from portal.models import Case
        db.session.add(Case(cif=customer.cif))
    db.session.commit()
    page = client.get(f"{base}/simulate").get_data(as_text=True)
    count = re.search(r'data-testid="sim-segment-1-count">([^<]*)<', page).group(1)
    assert count == "2"
    assert post(client, f"{base}/activate").status_code == 302
    db.session.expire_all()
    assert strategy.versions[0].status == "active"
    assert db.session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == "strategy.activated")) == 1


def test_run_now_enqueues_the_daily_run_and_the_job_records_it(db, client, login_as,
                                                               frozen_now, redis_client):
    from rq import Queue

    from portal import clock
    from portal.models import IntegrationRun
    from workers.jobs.strategies import run_strategies

    frozen_now(NOW)
    sup = login_as("supervisor", language="vi")
    assert post(client, "/strategies/run").status_code == 302
    (job,) = [j for j in Queue("default", connection=redis_client).get_jobs()
              if j.func_name == "workers.jobs.strategies.run_strategies"]
    assert job.args == (clock.bank_today().isoformat(), "manual", sup.id)
    result = run_strategies(*job.args)
    recorded = db.session.get(IntegrationRun, result["run_id"])
    assert (recorded.integration, recorded.trigger, recorded.status, recorded.triggered_by_id) \
        == ("STRATEGIES", "manual", "succeeded", sup.id)
    page = client.get("/strategies/").get_data(as_text=True)
    assert f'data-testid="strategy-run-{recorded.id}"' in page


def test_the_cli_runs_a_business_date(app, db, frozen_now):
    from portal.models import IntegrationRun

    frozen_now(NOW)
    result = app.test_cli_runner().invoke(args=["strategies", "run", "--date", "2026-11-24"])
    assert result.exit_code == 0, result.output
    assert "0 assigned" in result.output
    recorded = db.session.scalar(select(IntegrationRun))
    assert (recorded.integration, recorded.trigger, recorded.business_date.isoformat()) == (
        "STRATEGIES", "manual", "2026-11-24")
