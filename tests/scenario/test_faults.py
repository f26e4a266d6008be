"""Faults injected into the scenario day, one test each; each ends in recovery — by itself or
by the ops action docs/operations.md ("Recovering from faults") names, called as ops call it —
and every invariant of tests/scenario/invariants.py holding afterwards."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections import Counter
from dataclasses import replace

import psycopg
import pytest

from integrations.t24.load import load_set
from integrations.t24.manifest import verify
from tests.integration.sync_helpers import pg_url, snapshot, truncate_bank_data
from tests.scenario import invariants
from tests.scenario.faults import (
    OwnRedis,
    busy_worker,
    events_cli,
    force_closed,
    last_run,
    ops_action,
    sigkill,
    start_worker,
    sweep_until_done,
    terminate_loader_when_copying,
    wait_until,
)
from tests.scenario.harness import POISON_SUBSCRIBER
from tests.scenario.sizes import FAULT_DAY


def bank_events(conn) -> Counter:
    """The events a load published, as a multiset (the run's own SYNC_COMPLETED and run id
    aside)."""
    return Counter((t, a, json.dumps({k: v for k, v in p.items() if k != "integration_run_id"},
                                     sort_keys=True))
                   for t, a, p in conn.execute("SELECT type, aggregate_id, payload FROM events "
                                               "WHERE type <> 'SYNC_COMPLETED'"))


def count(day, query: str, **params) -> int:
    value = day.sql(query, **params).scalar()
    day.db.session.rollback()
    return value


# -- Redis restarted --

@pytest.fixture
def own_redis(app, monkeypatch, tmp_path):
    """The portal and its workers on a redis-server of this test's own (never the machine's)."""
    server = OwnRedis(tmp_path / "redis")
    server.start()
    monkeypatch.setitem(app.config, "REDIS_URL", server.url)
    app.extensions.pop("portal_redis", None)
    try:
        yield server
    finally:
        app.extensions.pop("portal_redis", None)
        server.close()


def test_redis_restarted_mid_day_loses_no_payment_and_no_event(day_factory, own_redis):
    """Redis dies while payment webhooks pour in, and again once they are all in, coming back
    empty each time: the webhooks were stored with their events all the same; ops relay and
    sweep (runbook), and the day ends as if nothing happened."""
    day = day_factory(FAULT_DAY)
    restarted = threading.Event()

    def restart_while_paying(day):
        def restart():
            with psycopg.connect(pg_url(day.app), autocommit=True) as conn:
                wait_until(lambda: conn.execute("SELECT count(*) FROM payments").fetchone()[0]
                           >= FAULT_DAY.payments // 3, what="a third of the payments")
            own_redis.restart(down_for=0.5)
            restarted.set()

        threading.Thread(target=restart, daemon=True).start()

    def recover(day):
        assert restarted.wait(60), "Redis was not restarted"
        stranded = count(day, "SELECT count(*) FROM events WHERE relayed_at IS NULL") + count(
            day, "SELECT count(*) FROM event_deliveries WHERE status IN ('pending', 'failed')")
        assert stranded > 0, "the restart lost no job: nothing was tested"
        events_cli(day, "relay")  # events whose relay job was lost
        sweep_until_done(day)  # deliveries whose job was lost
        day.work()

    def handle_payments():
        day.wait_for_payment_system()
        assert restarted.wait(60), "Redis was not restarted"
        own_redis.restart(down_for=0.5)  # again, before any worker took the queued jobs
        day.work()

    day.handle_payments = handle_payments
    day.run({"before_payments": restart_while_paying, "after_payments": recover})
    invariants.all_hold(day)


# -- PostgreSQL connection dropped mid-load --

def test_loader_backend_terminated_mid_t24_load_then_retry_gives_the_full_state(
        app, day_factory, monkeypatch):
    """pg_terminate_backend on the loader's connection while it copies: the run fails, nothing
    of the set is half-loaded; ops' *Retry run* loads it whole (the set waited in work/)."""
    monkeypatch.setitem(app.config, "SYNC_RETRIES", 0)  # the ops action, not the job, retries
    # a portfolio large enough for the load to be caught copying (the rest of the day as usual)
    day = day_factory(replace(FAULT_DAY, customers=FAULT_DAY.customers * 4,
                              products=FAULT_DAY.products * 4))

    def interrupted_load(day):
        day.write_t24_set()
        day.send_t24_set()
        killer = terminate_loader_when_copying(pg_url(app))
        day.sync("T24")
        day.work()
        killer.join(5)
        assert killer.killed, "the loader was never seen copying"
        failed = last_run(day, "T24")
        assert failed.status == "failed", failed
        assert count(day, "SELECT count(*) FROM loans") == 0, "a failed load left rows"
        assert count(day, "SELECT count(*) FROM events WHERE type <> 'SYNC_COMPLETED'") == 0
        assert list((day.inbox / "work").iterdir()), "the set did not wait in work/"
        ops_action(day, "T24", "retry_run", failed.id)
        day.work()
        day.assert_last_run("T24", "succeeded")
        # the same state as an uninterrupted load of the same set, made afresh to compare
        with psycopg.connect(pg_url(app), autocommit=True) as conn:
            retried = snapshot(conn), bank_events(conn)
            truncate_bank_data(conn)
            manifest = next((day.inbox / "processed").glob("*/*/t24_manifest_*.json"))
            assert load_set(conn, verify(manifest)).status == "succeeded"
            assert (snapshot(conn), bank_events(conn)) == retried
        assert count(day, "SELECT count(*) FROM loans") == len(day.record.loans)

    day.t24_full_load = lambda: interrupted_load(day)
    day.run()
    invariants.all_hold(day)


# -- a worker SIGKILLed while handling --

def test_worker_killed_while_applying_payments_applies_each_once(day_factory):
    """A ``flask workers run`` process handling the payments' deliveries is SIGKILLed
    mid-stream; a new worker (its start-up recovery) hands the lost deliveries over, and every
    payment counts once in the balances and promises."""
    day = day_factory(FAULT_DAY)

    def kill_a_worker(day):
        day.wait_for_payment_system()
        total = count(day, "SELECT count(*) FROM events WHERE type LIKE 'PAYMENT_%'")
        worker = start_worker(day, "--queues", "events")
        try:
            wait_until(lambda: count(
                day, "SELECT count(*) FROM event_deliveries d JOIN events e ON e.id = "
                     "d.event_id WHERE e.type LIKE 'PAYMENT_%' AND d.status = 'delivered'")
                >= total // 4, timeout=120, what="the worker to handle a quarter")
            busy_worker(day)  # kill it in the middle of a delivery
        finally:
            sigkill(worker)
        pending = count(day, "SELECT count(*) FROM event_deliveries WHERE status <> "
                             "'delivered' AND subscriber <> :poison", poison=POISON_SUBSCRIBER)
        assert pending > 0, "the worker finished before it was killed"
        time.sleep(1.2)  # EVENTS_STALE_AFTER of the workers: the dead one's jobs are stale
        # runbook: restart the worker; its start-up recovery hands the lost jobs over
        second = start_worker(day, "--queues", "events", "--burst")
        try:
            second.communicate(timeout=120)
        finally:
            sigkill(second)
        day.work()  # what the new worker left scheduled (retries)

    day.handle_payments = lambda: kill_a_worker(day)
    day.run()
    invariants.all_hold(day)


# -- external systems down for a while --

def _bank_apis_down():
    def down(day):
        for system in ("W4", "LOS"):
            day.systems.faults(system, outage=True)

    def back(day):
        for system in ("W4", "LOS"):
            failed = last_run(day, system)
            assert failed.status == "failed", failed
            day.systems.faults(system, outage=False)
            force_closed(day, system)  # runbook: breaker *closed* once the system is back
            ops_action(day, system, "retry_run", failed.id)  # runbook: *Retry run*
        day.work()
        for system in ("W4", "LOS"):
            day.assert_last_run(system, "succeeded")

    return {"before_sync_w4_los": down, "after_sync_w4_los": back}


def _payments_down():
    def down(day):
        day.systems.faults("PAYMENTS", outage=True)

    def back(day):
        failed = last_run(day, "PAYMENTS")
        assert failed is not None and failed.status == "failed", failed
        day.systems.faults("PAYMENTS", outage=False)
        force_closed(day, "PAYMENTS")
        ops_action(day, "PAYMENTS", "retry_run", failed.id)  # runbook: *Retry run*
        day.work()
        assert last_run(day, "PAYMENTS").status == "succeeded"

    return {"before_reconcile": down, "after_reconcile": back}


def _call_centre_down():
    def down(day):  # its events do not reach us and its API refuses
        day.systems.centre.portal_url = ""
        day.systems.faults("CTI", outage=True)

    def back(day):
        assert count(day, "SELECT count(*) FROM call_records") == 0
        day.systems.centre.portal_url = day.systems.portal_url
        day.systems.faults("CTI", outage=False)
        from portal.queues import enqueue

        # runbook: the call reconciliation of the day brings the calls we missed
        enqueue("integrations", "workers.jobs.calls.reconcile_calls", day.today.isoformat())
        day.work()

    return {"before_calls": down, "after_calls": back}


def _gps_down():
    def down(day):
        day.systems.faults("GPS", outage=True)

    def back(day):
        waiting = count(day, "SELECT count(*) FROM agent_locations WHERE forwarded_at IS NULL")
        assert waiting > 0, "nothing waited while the GPS system was down"
        # check-ins went on, decided by the local rule
        assert len(day.record.checkins) == FAULT_DAY.field_agents * \
            FAULT_DAY.visits_per_field_agent
        assert {c["verification_source"] for c in day.record.checkins} == {"local"}
        day.systems.faults("GPS", outage=False)
        force_closed(day, "GPS")
        ops_action(day, "GPS", "run_now")  # runbook: *Run now* (forwarding)
        day.work()

    return {"before_field_day": down, "after_field_day": back}


def test_each_external_system_down_for_a_while_then_back(day_factory):
    """W4 and LOS during their syncs, the call centre during its traffic, the GPS system during
    the field day, the payment system's report during reconciliation: each down, then back
    and recovered by the runbook's action; the day ends whole."""
    day = day_factory(FAULT_DAY)
    hooks = {**_bank_apis_down(), **_call_centre_down(), **_gps_down(), **_payments_down()}
    day.run(hooks)
    invariants.all_hold(day)


# -- a T24 file half-written in the inbox --

def test_half_written_t24_file_waits_or_is_rejected_with_reason_then_loads(day_factory):
    """While T24 still copies (data file half there, no manifest) the sync finds nothing to
    do; a manifest that arrives before its data file is complete gets the set rejected with
    the reason; the complete set, sent again, is processed."""
    day = day_factory(FAULT_DAY)

    def half_written_load(day):
        day.write_t24_set()
        inbox = day.inbox / "inbox"
        inbox.mkdir(parents=True, exist_ok=True)
        loans = next(day.outbox.glob("t24_loans_*"))
        data = loans.read_bytes()
        (inbox / loans.name).write_bytes(data[: len(data) // 2])  # still being copied
        day.sync("T24")
        day.work()
        assert (inbox / loans.name).exists(), "a file still being copied was moved"
        assert count(day, "SELECT count(*) FROM loans") == 0
        # no set loaded: the run says it found nothing to do (finding 16: every triggered job
        # leaves a trace), not that it loaded an incomplete set
        run = last_run(day, "T24")
        assert run is not None and run.status == "skipped", run
        note = day.sql("SELECT note FROM integration_runs WHERE id = :i", i=run.id).scalar()
        day.db.session.rollback()
        assert "no T24 file set waiting" in note, note

        # the sender writes the manifest while the loans file is still half there
        manifest = next(day.outbox.glob("t24_manifest_*"))
        for path in day.outbox.iterdir():
            if path.name not in (loans.name, manifest.name):
                shutil.copyfile(path, inbox / path.name)
        shutil.copyfile(manifest, inbox / manifest.name)
        day.sync("T24")
        day.work()
        assert count(day, "SELECT count(*) FROM loans") == 0, "a half file was loaded"
        reasons = list((day.inbox / "rejected").glob("*/*/reason.json"))
        assert len(reasons) == 1
        errors = " ".join(json.loads(reasons[0].read_text())["errors"])
        assert loans.name in errors, errors

        day.send_t24_set()  # T24 sends the complete set again
        day.sync("T24")
        day.work()
        day.assert_last_run("T24", "succeeded")
        assert list((day.inbox / "processed").glob("*/*/" + loans.name))

    day.t24_full_load = lambda: half_written_load(day)
    day.run()
    invariants.all_hold(day)
