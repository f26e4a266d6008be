"""`flask check invariants`: the demo portfolio holds every truth; each truth, broken by hand in
the tables, is reported with the ids of the rows that break it; the command exits non-zero; the
nightly job stores its result and ops see it."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from rq import Queue
from sqlalchemy import select, text

from portal import clock
from portal.events.subscribers import all_subscribers, load_subscribers
from portal.models.ops import InvariantRun
from portal.ops import invariants
from tests.integration.test_seed import SMALL


def execute(db, sql: str, **params):
    result = db.session.execute(text(sql), params)
    db.session.commit()
    return result


def one(db, sql: str, **params):
    return db.session.execute(text(sql), params).first()


def violations(db, name: str) -> list[dict]:
    [result] = invariants.check_all(db.session, names=[name])
    assert result.error is None, result.error
    return result.sample


@pytest.fixture
def demo(app, db, frozen_now):
    """The small demo portfolio, seeded at a frozen instant the checks then run at."""
    frozen_now(clock.running_now())
    result = app.test_cli_runner().invoke(args=SMALL)
    assert result.exit_code == 0, result.output
    db.session.rollback()
    return db


def test_the_demo_portfolio_holds_every_invariant(demo):
    results = invariants.check_all(demo.session)
    assert [r.name for r in results] == [i.name for i in invariants.INVARIANTS]
    assert {r.name: (r.violations, r.error, r.sample[:2]) for r in results} == {
        r.name: (0, None, []) for r in results}


def test_a_case_total_that_differs_from_its_products_is_named(demo):
    case = one(demo, "SELECT id, cif FROM cases WHERE total_overdue > 0 ORDER BY id LIMIT 1")
    execute(demo, "UPDATE cases SET total_overdue = total_overdue + 1 WHERE id = :id", id=case.id)
    found = violations(demo, "case_totals")
    assert [(v["case_id"], v["cif"]) for v in found] == [(case.id, case.cif)]
    # the check changed nothing
    assert violations(demo, "case_totals") == found


def test_a_stale_priority_is_named(demo):
    case = one(demo, "SELECT id FROM cases WHERE status <> 'closed' ORDER BY id LIMIT 1")
    execute(demo, "UPDATE cases SET priority = priority + 7 WHERE id = :id", id=case.id)
    assert [v["case_id"] for v in violations(demo, "case_priority")] == [case.id]


def test_a_priority_written_within_the_hour_is_not_stale_when_time_moves_it(demo, frozen_now):
    # written with a follow-up due for 30 minutes and 4 days and 23:55 of silence; 10 minutes
    # later it is a 5th silent day, and an hour before the follow-up was not yet due: neither
    # "now" nor "the last hourly refresh" gives the stored priority, the time it was written does
    from portal.cases.queue import compute_priority, priority_inputs

    written = clock.now()
    case = one(demo, "SELECT id FROM cases WHERE status <> 'closed' ORDER BY id LIMIT 1")
    execute(demo, "UPDATE cases SET next_action_at = :due, last_contact_at = :contact, "
                  "updated_at = :written WHERE id = :id", due=written - timedelta(minutes=30),
            contact=written - timedelta(days=5) + timedelta(minutes=5), written=written,
            id=case.id)
    [(_, _, inputs)] = priority_inputs(demo.session, written, [case.id])
    execute(demo, "UPDATE cases SET priority = :p WHERE id = :id",
            p=compute_priority(inputs, written), id=case.id)
    frozen_now(written + timedelta(minutes=10))
    assert violations(demo, "case_priority") == []
    execute(demo, "UPDATE cases SET priority = priority + 7 WHERE id = :id", id=case.id)
    assert [v["case_id"] for v in violations(demo, "case_priority")] == [case.id]


def test_a_promise_whose_paid_amount_is_not_its_allocations_is_named(demo):
    promise = one(demo, "SELECT id FROM promises ORDER BY id LIMIT 1")
    execute(demo, "UPDATE promises SET paid_amount = paid_amount + 1000 WHERE id = :id",
            id=promise.id)
    assert [v["promise_id"] for v in violations(demo, "promise_allocations")] == [promise.id]


def test_a_promise_left_pending_after_its_date_is_named(demo):
    promise = one(demo, "SELECT id FROM promises WHERE status = 'pending' AND paid_amount = 0 "
                        "ORDER BY id LIMIT 1")
    execute(demo, "UPDATE promises SET promised_date = :day WHERE id = :id",
            day=clock.bank_today() - timedelta(days=3), id=promise.id)
    assert [v["promise_id"] for v in violations(demo, "promise_allocations")] == [promise.id]


def test_a_second_primary_phone_of_one_type_is_named(demo, make_phone):
    """The database refuses it (uq_phones_primary_cif_type); the check still names it where a
    copy or a restore lacks the index."""
    phone = one(demo, "SELECT cif, type FROM phones WHERE is_primary AND cif IS NOT NULL "
                      "ORDER BY id LIMIT 1")
    index = one(demo, "SELECT pg_get_indexdef('uq_phones_primary_cif_type'::regclass) AS ddl")
    execute(demo, "DROP INDEX uq_phones_primary_cif_type")
    try:
        extra = make_phone(phone.cif, "0903123456", type=phone.type, is_primary=True,
                           source_system="CRM")
        [found] = violations(demo, "primary_contacts")
        assert (found["kind"], found["owner"], found["type"]) == ("phone", phone.cif, phone.type)
        assert extra.id in found["ids"]
    finally:
        demo.session.rollback()
        execute(demo, "DELETE FROM phones WHERE number = '0903123456' AND source_system = 'CRM'")
        execute(demo, index.ddl)


def test_a_relayed_event_without_its_deliveries_is_named(demo):
    load_subscribers()
    sub = next(s for s in all_subscribers() if s.event_types)
    delivered, missing = uuid.uuid4(), uuid.uuid4()
    for event_id, relayed in ((delivered, "crm_now() - interval '1 minute'"),
                              (missing, "crm_now()")):
        execute(demo, "INSERT INTO events (id, type, version, aggregate_type, aggregate_id, "
                      "payload, relayed_at) VALUES (:id, :type, 1, 'test', 'x', '{}', "
                      f"{relayed})",
                id=event_id, type=sub.event_types[0])
    execute(demo, "INSERT INTO event_deliveries (event_id, subscriber, status, attempts, "
                  "enqueued_at, updated_at) VALUES (:id, :sub, 'delivered', 1, "
                  "crm_now() - interval '1 minute', crm_now())", id=delivered, sub=sub.name)
    found = {(v["event_id"], v["subscriber"]) for v in violations(demo, "event_deliveries")}
    assert (str(missing), sub.name) in found
    assert str(delivered) not in {event_id for event_id, _ in found}


def test_a_loan_due_that_ignores_a_standing_payment_is_named(demo):
    loan = one(demo, "SELECT account_number, cif FROM loans WHERE due_amount > 1000000 "
                     "ORDER BY id LIMIT 1")
    execute(demo, """
        INSERT INTO payments (reference_number, account_number, cif, amount, currency, paid_at,
                              status, source, applied_amount, due_applied, effects_at)
        VALUES ('INV-TEST-1', :account, :cif, 500000, 'VND', crm_now(), 'received', 'webhook',
                500000, 500000, crm_now() + interval '1 second')""",
            account=loan.account_number, cif=loan.cif)
    assert loan.account_number not in {v["account_number"] for v in violations(demo, "loan_due")}
    # the due took only part of a payment while something is still due
    execute(demo, "UPDATE payments SET due_applied = 400000 WHERE reference_number = 'INV-TEST-1'")
    assert loan.account_number in {v["account_number"] for v in violations(demo, "loan_due")}


def test_flask_check_invariants_prints_the_ids_and_exits_non_zero(app, demo):
    case = one(demo, "SELECT id FROM cases ORDER BY id LIMIT 1")
    execute(demo, "UPDATE cases SET max_dpd = max_dpd + 400 WHERE id = :id", id=case.id)
    result = app.test_cli_runner().invoke(args=["check", "invariants", "--only", "case_totals"])
    assert result.exit_code == 1, result.output
    assert f"case_id={case.id}" in result.output
    assert "VIOLATED  case_totals" in result.output
    run = demo.session.query(InvariantRun).order_by(InvariantRun.id.desc()).first()
    assert (run.trigger, run.violations) == ("cli", 1)

    execute(demo, "UPDATE cases SET max_dpd = max_dpd - 400 WHERE id = :id", id=case.id)
    clean = app.test_cli_runner().invoke(args=["check", "invariants", "--no-record"])
    assert clean.exit_code == 0, clean.output
    assert "0 violation(s)" in clean.output


def test_the_nightly_check_is_recorded_and_shown_to_ops(app, demo, login_as, client):
    run = invariants.run_and_record(demo.session, trigger="schedule")
    assert (run.violations, run.errors) == (0, 0)
    assert len(run.results) == len(invariants.INVARIANTS)
    promise = one(demo, "SELECT id FROM promises ORDER BY id LIMIT 1")
    execute(demo, "UPDATE promises SET paid_amount = paid_amount + 5 WHERE id = :id",
            id=promise.id)
    invariants.run_and_record(demo.session, trigger="schedule")

    login_as("ops")
    page = client.get("/ops/invariants")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "1 violation" in html
    assert f"promise_id={promise.id}" in html
    assert 'data-invariant="promise_allocations"' in html


def test_check_now_queues_the_job_and_leaves_a_trace(app, demo, login_as, client, csrf_token,
                                                     redis_client):
    user = login_as("ops")
    response = client.post("/ops/invariants/check", data={"csrf_token": csrf_token()})
    assert response.status_code == 303
    audit = one(demo, "SELECT actor_id, action, after FROM audit_log "
                      "WHERE action = 'invariants.check' ORDER BY id DESC LIMIT 1")
    assert audit.actor_id == user.id
    jobs = Queue("default", connection=redis_client).jobs
    assert [j.func_name for j in jobs if j.id == audit.after["job_id"]] == [
        "workers.jobs.invariants.check_invariants"]



def test_the_demo_strategys_daily_run_keeps_every_invariant(demo):
    """The demo's active strategy (portal/seed/strategies.py) has accounts in both segments;
    its daily run assigns each account once, queues its messages, and every invariant holds
    after it — the case priorities it raised included."""
    from portal.models import Strategy
    from portal.strategies import engine, run

    strategy = demo.session.scalar(select(Strategy).where(Strategy.code == "DEMO_STANDARD"))
    active = next(v for v in strategy.versions if v.status == "active")
    day = clock.bank_today()
    simulated = engine.simulate(demo.session, active, day)
    assert all(segment["accounts"] > 0 for segment in simulated.segments)
    counts = run.run_business_date(demo.session, day)
    demo.session.commit()
    assert counts["assigned"] == sum(s["accounts"] for s in simulated.segments)
    assert counts["messages"] > 0 and counts["cases_weighted"] > 0
    results = invariants.check_all(demo.session)
    assert {r.name: (r.violations, r.error, r.sample[:2]) for r in results} == {
        r.name: (0, None, []) for r in results}
