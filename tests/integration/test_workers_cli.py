"""``flask workers run|status|schedules``, the cron scheduler and the health service."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo
from redis import Redis
from rq import Queue
from sqlalchemy import select

from portal.events import publish
from portal.events.subscribers import subscribers_for
from portal.models.events import EventDelivery
from portal.schedules import SCHEDULES, Schedule
from tests.integration.test_events_support import (  # noqa: F401  (bus is a fixture)
    RECORD,
    ROOT,
    bus,
    customer_updated,
    effects,
    flask_command,
    start_worker,
    stop_process,
    wait_for,
    worker_env,
)
from workers.schedule import run_cron_scheduler


def invoke(app, group, args):
    result = CliRunner().invoke(group, args, obj=ScriptInfo(create_app=lambda: app))
    assert result.exit_code == 0, result.output
    return result.output


def test_schedules_are_data_and_listed(app):
    from workers.cli import workers

    assert {s.name for s in SCHEDULES} >= {"events.relay", "events.sweep"}
    for s in SCHEDULES:
        assert s.resolve() is not None  # every entry points at a real job function
        assert s.job_timeout > 0
    output = invoke(app, workers, ["schedules"])
    assert "events.relay" in output and "* * * * *" in output
    rows = json.loads(invoke(app, workers, ["schedules", "--json"]))
    relay = next(r for r in rows if r["name"] == "events.relay")
    assert relay["queue"] == "events" and relay["timeout"] == 120 and relay["next_run"]


def test_schedule_validation():
    with pytest.raises(ValueError):
        Schedule("bad", "workers.jobs.maintenance.noop", "default", cron="61 * * * *")
    with pytest.raises(ValueError):
        Schedule("both", "workers.jobs.maintenance.noop", "default", cron="* * * * *",
                 interval=5)
    with pytest.raises(KeyError):
        Schedule("queue", "workers.jobs.maintenance.noop", "nowhere", interval=5)


def _cron_child(redis_url: str, parent_pid: int) -> None:
    schedules = (Schedule("test.noop", "workers.jobs.maintenance.noop", "default", interval=1),)
    run_cron_scheduler(Redis.from_url(redis_url), parent_pid=parent_pid, schedules=schedules,
                       tick=0.2)


def test_cron_scheduler_enqueues_on_schedule_and_only_one_is_active(app, redis_client):
    ctx = multiprocessing.get_context("fork")
    url = app.config["REDIS_URL"]
    first = ctx.Process(target=_cron_child, args=(url, os.getpid()))
    second = ctx.Process(target=_cron_child, args=(url, os.getpid()))
    first.start()
    try:
        queue = Queue("default", connection=redis_client)
        wait_for(lambda: queue.count >= 2, timeout=15, what="two scheduled noop jobs")
        second.start()
        wait_for(lambda: len(redis_client.zrange("rq:cron_schedulers", 0, -1)) == 2,
                 timeout=10, what="the second scheduler to register")
        before = queue.count
        import time

        time.sleep(2.5)
        # one job per second from the lock holder only (not two)
        added = queue.count - before
        assert added in range(1, 5), added
        assert all(job.func_name == "workers.jobs.maintenance.noop" for job in queue.get_jobs())
    finally:
        for proc in (first, second):
            if proc.pid and proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)
            if proc.pid:
                proc.join(10)
    assert first.exitcode == 0


@pytest.mark.usefixtures("bus")
def test_worker_run_with_scheduler_reports_health_then_stops(app, db, redis_client):
    from portal.ops.worker_health import collect_health

    publish("CUSTOMER_UPDATED", customer_updated("C-RUN"))
    db.session.commit()
    proc = start_worker(app, "--with-scheduler", "--name", "bus-test-worker")
    try:
        def delivered():  # every subscriber of the type (the test's and the product's)
            statuses = set(db.session.scalars(select(EventDelivery.status)))
            db.session.rollback()
            return statuses == {"delivered"}

        wait_for(delivered, timeout=60, what="the event to be delivered by the worker")

        def health_ready():
            h = collect_health(redis_client)
            return h if h["workers"] and h["cron_schedulers"] else None

        health = wait_for(health_ready, timeout=20, what="worker and cron heartbeats")
        (worker,) = health["workers"]
        assert worker["name"] == "bus-test-worker" and worker["alive"]
        assert worker["queues"] == ["events", "default", "integrations"]
        assert worker["successful_jobs"] >= 2  # relay + delivery (+ recover)
        (cron,) = health["cron_schedulers"]
        assert cron["alive"] and cron["holds_lock"]
        assert {j["name"] for j in cron["jobs"]} == {s.name for s in SCHEDULES}
        queues = {q["name"]: q for q in health["queues"]}
        assert set(queues) == {"events", "default", "integrations"}
        assert queues["events"]["workers"] == 1 and queues["events"]["depth"] == 0
        assert queues["events"]["retry_scheduler"]  # RQ's scheduler holds the queue lock
        assert health["events"]["deliveries"]["delivered"] \
            == len(subscribers_for("CUSTOMER_UPDATED"))
        assert health["ok"], health["problems"]
        # a graceful stop unregisters the worker and the cron scheduler
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        stop_process(proc)
    assert effects(db, RECORD) == 1
    health = collect_health(redis_client)
    assert health["workers"] == []
    assert not health["ok"] and "no live worker" in health["problems"]


@pytest.mark.usefixtures("bus")
def test_worker_run_burst_subprocess_and_status_command(app, db, redis_client):
    from portal.queues import enqueue

    publish("CUSTOMER_UPDATED", customer_updated("C-BURST"), correlation_id="cid-burst")
    db.session.commit()
    # a database job on a forked queue, after the worker process used the database itself
    forked = enqueue("default", "workers.jobs.events.sweep_deliveries")
    done = subprocess.run(flask_command("workers", "run", "--burst", "--with-scheduler"),
                          cwd=ROOT, env=worker_env(app), capture_output=True, timeout=90)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    assert effects(db, RECORD) == 1
    forked.refresh()
    assert forked.get_status() == "finished" and forked.return_value() == 0
    # the worker's log lines are JSON; the delivery's carry the event's correlation id
    lines = [json.loads(line) for line in done.stderr.decode().splitlines()
             if line.startswith("{")]
    assert lines and all("correlation_id" in entry for entry in lines)
    about_delivery = [e for e in lines if e["logger"].startswith("rq.")
                      and e["correlation_id"] == "cid-burst"]
    assert about_delivery, "RQ's lines about the delivery job carry the event's correlation id"

    status = subprocess.run(flask_command("workers", "status", "--json"), cwd=ROOT,
                            env=worker_env(app), capture_output=True, timeout=60)
    assert status.returncode == 0, status.stderr.decode()
    health = json.loads(status.stdout.decode())
    assert health["events"]["deliveries"]["delivered"] == len(subscribers_for("CUSTOMER_UPDATED"))
    assert health["events"]["unrelayed"] == 0
    from workers.cli import workers

    text = invoke(app, workers, ["status"])
    delivered = len(subscribers_for("CUSTOMER_UPDATED"))
    assert "queues:" in text and "events: 0 unrelayed" in text
    assert f"delivered={delivered}" in text
