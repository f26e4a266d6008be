"""The ops pages and actions over HTTP: permissions, confirmation-backed POSTs audited, run
detail with quarantined records and log lines, failed job requeue, /metrics parsed with the
Prometheus parser, /healthz and /readyz (503 with Redis unreachable)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from sqlalchemy import select

from integrations import control
from portal import clock
from portal.logging import correlation_scope
from portal.models import AuditLog, IntegrationRun, IntegrationSetting, QuarantinedRecord
from portal.ops import actions as ops_actions


def post(client, csrf_token, url, **data):
    token = csrf_token("/ops/integrations")
    return client.post(url, data={"csrf_token": token, **data})


@pytest.fixture
def run(db):
    at = clock.now() - timedelta(minutes=5)
    row = IntegrationRun(integration="W4", kind="sync", trigger="schedule", status="failed",
                         started_at=at, finished_at=at + timedelta(seconds=3), duration_ms=3000,
                         extracted=10, loaded=8, quarantined=1, failed=1, attempt=4,
                         correlation_id="cid-run-ops-1", control_totals={"records": 10},
                         errors=[{"message": "W4 unavailable: HTTP 503"}])
    db.session.add(row)
    db.session.flush()
    db.session.add(QuarantinedRecord(integration="W4", run_id=row.id, entity="card",
                                     record_key="4000-01", reason="credit_limit is negative",
                                     raw='{"contract_number": "4000-01", "credit_limit": -5}'))
    db.session.commit()
    return row


def test_health_page_renders_every_card_with_charts(client, login_as, run):
    login_as("ops")
    html = client.get("/ops/integrations").get_data(as_text=True)
    for name in ("T24", "W4", "LOS", "PAYMENTS", "CTI", "GPS", "EVENTS", "STRATEGIES"):
        assert f'data-testid="card-{name}"' in html
    # 3 per integration (the strategies' daily run too), 2 of the event bus, and the traffic of
    # the 3 push integrations
    assert html.count('<svg class="chart"') == 7 * 3 + 2 + 3
    assert 'data-state="degraded"' in html  # W4: its last run failed
    partial = client.get("/ops/integrations/cards", headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert "<html" not in partial.get_data(as_text=True)


def test_roles_without_ops_permissions_are_refused(client, login_as, csrf_token):
    login_as("agent")
    assert client.get("/ops/integrations").status_code == 403
    assert post(client, csrf_token, "/ops/integrations/W4/pause").status_code == 403


def test_admin_may_look_but_not_act(client, login_as, csrf_token, db):
    login_as("admin")
    assert client.get("/ops/integrations").status_code == 200
    assert post(client, csrf_token, "/ops/integrations/W4/pause", reason="x").status_code == 403
    assert db.session.get(IntegrationSetting, "W4") is None


def test_pause_and_resume_from_the_page_are_audited(client, login_as, csrf_token, db):
    control.clear_pause_cache()
    ops = login_as("ops")
    response = post(client, csrf_token, "/ops/integrations/PAYMENTS/pause",
                    reason="payment system maintenance", next="/ops/integrations")
    assert response.status_code == 303 and response.headers["Location"] == "/ops/integrations"
    assert control.is_paused("PAYMENTS")
    html = client.get("/ops/integrations").get_data(as_text=True)
    assert 'data-testid="card-PAYMENTS" data-state="paused"' in html
    assert "payment system maintenance" in html
    post(client, csrf_token, "/ops/integrations/PAYMENTS/resume")
    assert not control.is_paused("PAYMENTS")
    audit = db.session.scalars(select(AuditLog.action).where(AuditLog.actor_id == ops.id)
                               .order_by(AuditLog.id)).all()
    assert audit == ["integration.paused", "integration.resumed"]


def test_force_breaker_from_the_page(client, login_as, csrf_token, db):
    ops = login_as("ops")
    assert post(client, csrf_token, "/ops/breakers/W4", state="open").status_code == 303
    assert control.breaker("W4").state().state == "open"
    assert post(client, csrf_token, "/ops/breakers/W4", state="sideways").status_code == 400
    post(client, csrf_token, "/ops/breakers/W4", state="closed")
    assert control.breaker("W4").state().state == "closed"
    rows = db.session.scalars(select(AuditLog).where(AuditLog.action == "breaker.forced")).all()
    assert [(r.actor_id, r.after["state"]) for r in rows] == [(ops.id, "open"), (ops.id, "closed")]


def test_retry_a_failed_run_calls_the_registered_trigger(client, login_as, csrf_token, db, run):
    calls = []

    def retry(*, user, run):
        calls.append((user.username, run.id))
        return f"W4 retry of run {run.id} enqueued"

    saved = ops_actions.TRIGGERS.pop("W4", None)
    ops_actions.register_trigger("W4", retry_run=retry)
    try:
        ops = login_as("ops")
        response = post(client, csrf_token, f"/ops/integrations/runs/{run.id}/retry")
        assert response.status_code == 303
        assert calls == [(ops.username, run.id)]
        page = client.get(response.headers["Location"]).get_data(as_text=True)
        assert f"W4 retry of run {run.id} enqueued" in page
        audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "ops.retry_run"))
        assert (audit.actor_id, audit.entity_id, audit.after) == (ops.id, "W4",
                                                                  {"run_id": run.id})
    finally:
        ops_actions.TRIGGERS.pop("W4", None)
        if saved:
            ops_actions.TRIGGERS["W4"] = saved


def test_an_action_nobody_registered_says_so(client, login_as, csrf_token, db, monkeypatch):
    monkeypatch.delitem(ops_actions.TRIGGERS, "LOS", raising=False)  # restored afterwards
    login_as("ops")
    response = post(client, csrf_token, "/ops/integrations/LOS/run")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "LOS offers no &#39;run now&#39; action yet" in page


def test_run_detail_shows_counts_quarantine_and_log_lines(client, login_as, run, app):
    with app.test_request_context(), correlation_scope("cid-run-ops-1"):
        logging.getLogger("integrations.w4").warning("page 3 failed", extra={"page": 3})
    login_as("ops")
    html = client.get(f"/ops/integrations/runs/{run.id}").get_data(as_text=True)
    assert "credit_limit is negative" in html
    assert "&#34;credit_limit&#34;: -5" in html  # the raw payload, escaped
    assert "W4 unavailable: HTTP 503" in html
    assert 'data-testid="run-duration">3.0 s<' in html
    assert "page 3 failed" in html and "page=" in html
    assert client.get("/ops/integrations/runs/999999").status_code == 404


def test_retry_dead_letters_from_the_event_bus_card(client, login_as, csrf_token, db):
    from portal.models import Event, EventDelivery

    event = Event(type="CUSTOMER_UPDATED", version=1, aggregate_type="customer",
                  aggregate_id="C1", payload={"cif": "C1"})
    db.session.add(event)
    db.session.flush()
    db.session.add(EventDelivery(event_id=event.id, subscriber="portal.tests.nobody",
                                 status="dead", attempts=5))
    db.session.commit()
    ops = login_as("ops")
    assert 'data-testid="retry-dead"' in client.get("/ops/integrations").get_data(as_text=True)
    post(client, csrf_token, "/ops/dead-letters/retry")
    status = db.session.scalar(select(EventDelivery.status))
    assert status == "pending"
    audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "ops.retry_dead_letters"))
    assert audit.actor_id == ops.id


def test_failed_jobs_listed_with_exception_and_requeued(client, login_as, csrf_token, db,
                                                        redis_client):
    from rq import SimpleWorker

    from portal.queues import get_queue

    queue = get_queue("default", redis_client)
    job = queue.enqueue("workers.jobs.nonexistent_module.job_that_does_not_exist")
    SimpleWorker([queue], connection=redis_client).work(burst=True)
    assert queue.failed_job_registry.get_job_ids() == [job.id]
    ops = login_as("ops")
    html = client.get("/ops/workers").get_data(as_text=True)
    assert job.id in html and "Invalid attribute name: job_that_does_not_exist" in html
    post(client, csrf_token, "/ops/workers/failed/requeue", queue="default", job_id=job.id)
    assert queue.failed_job_registry.get_job_ids() == []
    assert job.id in queue.get_job_ids()
    audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "ops.requeue_failed"))
    assert (audit.actor_id, audit.after) == (ops.id, {"job_id": job.id, "requeued": 1})


def test_metrics_parse_with_the_prometheus_parser(client, login_as, run, db):
    from portal.permissions import tokens as api_tokens

    assert client.get("/metrics").status_code == 401
    ops = login_as("ops")
    client.get("/ops/integrations")
    body = client.get("/metrics").get_data(as_text=True)
    families = {f.name: f for f in text_string_to_metric_families(body)}
    runs = {(s.labels["integration"], s.labels["status"]): s.value
            for s in families["crm_integration_runs"].samples if s.name.endswith("_total")}
    assert runs[("W4", "failed")] == 1
    states = {s.labels["integration"]: s.labels["state"]
              for s in families["crm_integration_state"].samples if s.value == 1}
    assert states["W4"] == "degraded"
    assert "crm_queue_depth" in families and "crm_breaker_state" in families
    assert "crm_event_lag_seconds" in families
    requests_seen = [s for s in families["crm_http_requests"].samples
                     if s.labels.get("endpoint") == "ops.integrations"]
    assert requests_seen and requests_seen[0].value >= 1
    # a scraper's API token with the api.integrations scope
    _, raw = api_tokens.create_token(db.session, name="prometheus", scopes=["api.integrations"],
                                     user=None, created_by=ops)
    db.session.commit()
    scraped = client.get("/metrics", headers={"Authorization": f"Bearer {raw}"})
    assert scraped.status_code == 200 and scraped.mimetype == "text/plain"


def test_healthz_and_readyz(client, app):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    saved = app.extensions.get("portal_redis")
    app.extensions["portal_redis"] = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.3)
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.get_json()["checks"]["redis"].startswith("error")
        assert client.get("/healthz").status_code == 200
    finally:
        app.extensions["portal_redis"] = saved


@pytest.mark.parametrize("integration, func", [
    ("PAYMENTS", "workers.jobs.payments.run_payments_reconciliation"),
    ("CTI", "workers.jobs.calls.reconcile_calls"),
    ("GPS", "workers.jobs.field.forward_locations"),
])
def test_run_now_queues_the_integrations_own_job(client, login_as, csrf_token, db, redis_client,
                                                 integration, func):
    from rq import Queue

    login_as("ops")
    response = post(client, csrf_token, f"/ops/integrations/{integration}/run")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "queued (job" in page
    jobs = Queue("integrations", connection=redis_client).get_jobs()
    assert func in {job.func_name for job in jobs}
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "ops.run_now")) \
        .entity_id == integration
