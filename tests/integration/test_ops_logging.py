"""Structured logs: JSON lines carry correlation id, user and job id; the capture handler keeps
the recent lines of each correlation id in Redis (capped, with a TTL) and never fails or blocks
its caller when Redis is gone. The alert evaluator runs as a real RQ job."""

from __future__ import annotations

import io
import json
import logging
import time

from portal.logging import (
    LOG_CAPTURE_PREFIX,
    CorrelationLogCapture,
    captured_lines,
    correlation_scope,
    make_handler,
)


def test_lines_are_capped_and_expire(app, redis_client):
    handler = CorrelationLogCapture(app.config["REDIS_URL"], max_lines=5, ttl_seconds=600)
    log = logging.getLogger("tests.capture")
    log.propagate = False  # only this handler (the app installed one on the root logger)
    log.addHandler(handler)
    try:
        with correlation_scope("cid-cap"):
            for n in range(8):
                log.warning("line %d", n, extra={"integration": "W4"})
        log.warning("no correlation id: not kept")
    finally:
        log.removeHandler(handler)
    lines = captured_lines(redis_client, "cid-cap")
    assert [entry["message"] for entry in lines] == [f"line {n}" for n in range(3, 8)]
    assert lines[0]["integration"] == "W4" and lines[0]["correlation_id"] == "cid-cap"
    assert 0 < redis_client.ttl(LOG_CAPTURE_PREFIX + "cid-cap") <= 600


def test_capture_never_fails_or_blocks_when_redis_is_down():
    handler = CorrelationLogCapture("redis://127.0.0.1:1/0")
    log = logging.getLogger("tests.capture.down")
    log.propagate = False
    log.addHandler(handler)
    try:
        with correlation_scope("cid-down"):
            started = time.perf_counter()
            log.error("first line tries Redis once")
            for _ in range(200):
                log.error("then the handler stays silent")
            elapsed = time.perf_counter() - started
    finally:
        log.removeHandler(handler)
    assert elapsed < 1.0


def test_request_lines_carry_the_signed_in_user(app, client, login_as, csrf_token):
    from portal.ops import actions as ops_actions

    def broken_trigger(*, user, run):
        raise RuntimeError("GPS system refused the forward")

    stream = io.StringIO()
    handler = make_handler("json", stream)
    logger = logging.getLogger("portal")  # current_app.logger
    logger.addHandler(handler)
    saved = ops_actions.TRIGGERS.pop("GPS", None)  # the product's, put back afterwards
    ops_actions.register_trigger("GPS", run_now=broken_trigger)
    try:
        ops = login_as("ops")
        response = client.post("/ops/integrations/GPS/run",
                               data={"csrf_token": csrf_token("/ops/integrations")},
                               headers={"X-Request-ID": "req-user-1"})
        assert response.status_code == 303
    finally:
        logger.removeHandler(handler)
        ops_actions.TRIGGERS.pop("GPS", None)
        if saved is not None:
            ops_actions.TRIGGERS["GPS"] = saved
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    entry = next(line for line in lines if line["message"] == "ops action failed")
    assert entry["user"] == ops.username and entry["correlation_id"] == "req-user-1"
    assert "GPS system refused the forward" in entry["exc_info"]


def test_alert_job_runs_in_a_real_worker_with_its_job_id(db, redis_client, make_user):
    from rq import SimpleWorker

    from portal.queues import enqueue, get_queue
    from portal.schedules import SCHEDULES

    assert any(s.func == "workers.jobs.alerts.evaluate_alerts" and s.cron == "* * * * *"
               for s in SCHEDULES)
    make_user(role="ops")
    job = enqueue("default", "workers.jobs.alerts.evaluate_alerts", connection=redis_client)
    SimpleWorker([get_queue("default", redis_client)], connection=redis_client).work(burst=True)
    job.refresh()
    assert job.get_status() == "finished", job.latest_result()
    result = job.return_value()
    # the worker running the job is alive; no cron scheduler runs against this Redis
    assert "worker_heartbeat:scheduler" in result["raised"]
    assert "worker_heartbeat:workers" not in result["raised"]
    lines = captured_lines(redis_client, job.id)  # the job's own id is its correlation id
    raised = [entry for entry in lines if entry["message"].startswith("alert raised")]
    assert raised and raised[0]["job_id"] == job.id
