"""W4 and LOS syncs end to end against the sandbox servers over real HTTP (free ports): cards
and applications in the database, the cursor stored per integration, only changes published,
an outage mid-pagination retried and resumed from the cursor without duplicates, malformed
records quarantined, ops alerted when every attempt fails; the on-demand trigger, the CLI and
the schedules."""

from __future__ import annotations

from datetime import date

import pytest
import requests

from integrations.sandbox._api import ServerThread
from integrations.sandbox.t24_files import SeedSource, generate_day
from integrations.sync import SyncError, progress, run_sync, trigger
from integrations.t24.load import load_set
from integrations.t24.manifest import verify
from tests.integration.sync_helpers import conn_fixture, count, events  # noqa: F401 - fixture

CUSTOMERS, PRODUCTS = 60, 90
# the bank's date of the T24 set, the cards and the applications: one portfolio, one day
BANK_DAY = date(2026, 11, 24)


@pytest.fixture(scope="module")
def cards():
    from integrations.sandbox.w4_server import seed_cards

    return seed_cards(CUSTOMERS, PRODUCTS, business_date=BANK_DAY)


@pytest.fixture(scope="module")
def applications():
    from integrations.sandbox.los_server import seed_applications

    return seed_applications(CUSTOMERS, PRODUCTS, business_date=BANK_DAY)


@pytest.fixture
def t24_loaded(conn, tmp_path):
    """The customers and loans the cards and applications belong to (T24 day 0)."""
    source = SeedSource(CUSTOMERS, PRODUCTS, business_date=BANK_DAY)
    load_set(conn, verify(generate_day(tmp_path / "t24", source)))
    conn.execute("TRUNCATE events, integration_runs CASCADE")
    return conn


@pytest.fixture
def w4(app, cards, monkeypatch):
    from integrations.sandbox.w4_server import DEFAULT_API_KEY, create_app

    with ServerThread(create_app(cards)) as server:
        monkeypatch.setitem(app.config, "W4_API_URL", server.url)
        monkeypatch.setitem(app.config, "W4_API_KEY", DEFAULT_API_KEY)
        monkeypatch.setitem(app.config, "SYNC_PAGE_SIZE", 10)
        monkeypatch.setitem(app.config, "SYNC_HTTP_RETRIES", 1)
        yield server


@pytest.fixture
def los(app, applications, monkeypatch):
    from integrations.sandbox.los_server import DEFAULT_TOKEN, create_app

    with ServerThread(create_app(applications)) as server:
        monkeypatch.setitem(app.config, "LOS_API_URL", server.url)
        monkeypatch.setitem(app.config, "LOS_API_TOKEN", DEFAULT_TOKEN)
        monkeypatch.setitem(app.config, "SYNC_PAGE_SIZE", 10)
        monkeypatch.setitem(app.config, "SYNC_HTTP_RETRIES", 1)
        yield server


def faults(server, **knobs):
    assert requests.put(f"{server.url}/_sandbox/faults", json=knobs, timeout=5).ok


def stored_cursor(conn, integration):
    row = conn.execute("SELECT cursor FROM integration_settings WHERE integration = %s",
                       (integration,)).fetchone()
    return row and row[0]


def card_state(conn):
    return conn.execute("SELECT contract_number, cif, outstanding, min_due, days_overdue, "
                        "bucket, status, w4_case_id, w4_case_status FROM cards "
                        "ORDER BY 1").fetchall()


def test_w4_full_sync_then_incremental_only_what_changed(app, t24_loaded, w4, cards):
    conn = t24_loaded
    conn.execute("INSERT INTO cases (cif) SELECT cif FROM customers")
    outcome = run_sync("W4", app=app, retries=0)
    assert outcome.status == "succeeded", outcome.errors
    assert count(conn, "cards") == len(cards) > 20
    card_events = events(conn, "LOAN_UPDATED")
    assert sorted(a for _, a, _ in card_events) == sorted(c["contract_number"] for c in cards)
    assert all(p["source_system"] == "W4" and p["created"] for *_, p in card_events)
    w4_case = next(c for c in cards if c["collection_case"])
    assert conn.execute("SELECT w4_case_id, w4_case_status FROM cards WHERE contract_number = "
                        "%s", (w4_case["contract_number"],)).fetchone() == (
        w4_case["collection_case"]["case_id"], w4_case["collection_case"]["status"])
    cursor = stored_cursor(conn, "W4")
    run = conn.execute("SELECT status, extracted, loaded, unchanged, cursor_before, "
                       "cursor_after, progress_done, progress_total FROM integration_runs"
                       ).fetchone()
    assert run == ("succeeded", len(cards), len(cards), 0, None, cursor, len(cards), len(cards))
    # case totals include the cards (overdue ones count their minimum due)
    cif = w4_case["client_cif"]
    expected = conn.execute("""
        SELECT (SELECT coalesce(sum(outstanding), 0) FROM loans WHERE cif = %(c)s
                AND status <> 'CLOSED') + (SELECT coalesce(sum(outstanding), 0) FROM cards
                WHERE cif = %(c)s AND status <> 'CLOSED')""", {"c": cif}).fetchone()[0]
    assert conn.execute("SELECT total_outstanding FROM cases WHERE cif = %s",
                        (cif,)).fetchone()[0] == expected

    # nothing changed since: nothing loaded, nothing published but SYNC_COMPLETED
    before = card_state(conn)
    outcome = run_sync("W4", app=app, retries=0)
    assert outcome.summary["extracted"] == 0 and card_state(conn) == before
    assert len(events(conn, "LOAN_UPDATED")) == len(cards)
    assert len(events(conn, "SYNC_COMPLETED")) == 2

    touched = requests.post(f"{w4.url}/_sandbox/touch", json={"count": 7},
                            timeout=5).json()["touched"]
    outcome = run_sync("W4", app=app, retries=0)
    assert outcome.summary["extracted"] == 7
    new = [(a, p) for _, a, p in events(conn, "LOAN_UPDATED") if not p["created"]]
    assert sorted(a for a, _ in new) == sorted(touched)  # each touched card really changed
    assert all(set(p["changes"]) <= {"days_overdue", "bucket", "min_due", "status",
                                     "w4_case_id", "w4_case_status", "due_date"}
               for _, p in new)  # a cured or rolled card's next due date moves (issue 19)
    assert stored_cursor(conn, "W4") > cursor


def test_w4_outage_mid_pagination_is_retried_and_resumes_from_the_cursor(app, t24_loaded, w4,
                                                                        cards, monkeypatch):
    conn = t24_loaded
    monkeypatch.setitem(app.config, "SYNC_PAGE_SIZE", 5)
    assert len(cards) > 20
    faults(w4, outage_after=3)  # three pages, then W4 goes down
    waits = []

    def back_up(seconds):  # the backoff between attempts: W4 comes back meanwhile
        waits.append(seconds)
        faults(w4, outage=False, outage_after=None)

    outcome = run_sync("W4", app=app, retries=2, backoff=5, sleep=back_up)
    assert outcome.status == "succeeded" and outcome.attempts == 2 and waits == [5]
    runs = conn.execute("SELECT id, status, trigger, retry_of_id, extracted, cursor_before, "
                        "cursor_after FROM integration_runs ORDER BY id").fetchall()
    (first, second) = runs
    assert first[1:3] == ("failed", "manual") and first[4] == 15
    assert second[1:4] == ("succeeded", "retry", first[0])
    assert second[5] == first[6]  # resumed from the cursor stored by the failed run
    assert first[4] + second[4] == len(cards)  # nothing read twice
    assert count(conn, "cards") == len(cards)
    keys = [a for _, a, _ in events(conn, "LOAN_UPDATED")]
    assert len(keys) == len(set(keys)) == len(cards)  # no duplicate events


def test_w4_down_for_every_attempt_alerts_ops(app, t24_loaded, w4, make_user):
    from portal.extensions import db

    ops = make_user("ops")
    make_user("agent")
    db.session.commit()
    faults(w4, outage=True)
    with pytest.raises(SyncError, match="after 3 attempt"):
        run_sync("W4", app=app, retries=2, backoff=0, sleep=lambda s: None)
    statuses = [s for (s,) in t24_loaded.execute(
        "SELECT status FROM integration_runs ORDER BY id")]
    assert statuses == ["failed", "failed", "failed"]
    notes = t24_loaded.execute("SELECT user_id, kind, body FROM notifications").fetchall()
    assert [(u, k) for u, k, _ in notes] == [(ops.id, "sync_failed")]
    assert "W4 unavailable" in notes[0][2]


def test_w4_malformed_records_are_quarantined_and_neighbours_load(app, t24_loaded, w4, cards):
    conn = t24_loaded
    faults(w4, malformed_rate=0.2, duplicates=True)
    outcome = run_sync("W4", app=app, retries=0)
    assert outcome.status == "partial"
    stored = conn.execute("SELECT record_key, reason, payload FROM quarantined_records "
                          "WHERE integration = 'W4'").fetchall()
    assert 0 < len(stored) < len(cards) // 2
    assert all(reason and payload for _, reason, payload in stored)
    assert count(conn, "cards") == len(cards) - len(stored)
    keys = [a for _, a, _ in events(conn, "LOAN_UPDATED")]
    assert len(keys) == len(set(keys)) == count(conn, "cards")  # the repeated records: once
    assert not {k for k, _, _ in stored} & set(keys)


def test_los_applications_link_customers_loans_and_referees(app, t24_loaded, los, applications):
    conn = t24_loaded
    outcome = run_sync("LOS", app=app, retries=0)
    assert outcome.status == "succeeded", outcome.errors
    assert count(conn, "loan_applications") == len(applications)
    disbursed = [a for a in applications if a["loan_account_number"]]
    linked = dict(conn.execute("SELECT application_id, account_number FROM loan_applications "
                               "WHERE account_number IS NOT NULL"))
    assert disbursed and linked == {a["application_id"]: a["loan_account_number"]
                                    for a in disbursed}
    referees = {r["referee_id"]: (a["customer_cif"], r) for a in applications
                for r in a["referees"]}
    stored = {r[0]: r[1:] for r in conn.execute(
        "SELECT ref_cif, primary_cif, name, source_system FROM reference_customers "
        "WHERE source_system = 'LOS'")}
    assert referees and set(stored) == set(referees)
    for ref_cif, (cif, record) in referees.items():
        assert stored[ref_cif] == (cif, record["full_name"], "LOS")
    phones = {r for (r,) in conn.execute("SELECT ref_cif FROM phones WHERE source_system = "
                                          "'LOS'")}
    assert phones == {k for k, (_, r) in referees.items() if r["phone"]}
    assert stored_cursor(conn, "LOS")
    # again: nothing
    before = count(conn, "events")
    outcome = run_sync("LOS", app=app, retries=0)
    assert outcome.summary["extracted"] == 0 and count(conn, "events") == before + 1


def test_los_unknown_customer_is_quarantined(app, conn, los, applications):
    outcome = run_sync("LOS", app=app, retries=0)  # no T24 load: no customer is known
    assert outcome.status == "partial"
    assert count(conn, "loan_applications") == 0
    reasons = [r for (r,) in conn.execute("SELECT reason FROM quarantined_records")]
    assert len(reasons) == len(applications)
    assert all("is not a known customer" in r for r in reasons)


def test_trigger_enqueues_a_job_the_worker_runs(app, t24_loaded, w4, cards, make_user):
    from rq.job import Job

    from portal.extensions import get_redis

    user = make_user("ops")
    job_id = trigger("w4", full=True, user_id=user.id)
    job = Job.fetch(job_id, connection=get_redis())
    assert job.origin == "integrations" and job.func_name == "workers.jobs.sync.run_sync_job"
    assert job.kwargs == {"full": True, "business_date": None, "trigger": "manual",
                          "user_id": user.id}
    result = job.perform()
    assert result["status"] == "succeeded"
    row = t24_loaded.execute("SELECT trigger, triggered_by_id, mode FROM integration_runs"
                             ).fetchone()
    assert row == ("manual", user.id, "full")
    from portal.extensions import db

    assert progress(db.session, "W4")["percent"] == 100.0


def test_cli_runs_a_sync(app, t24_loaded, los, applications):
    result = app.test_cli_runner().invoke(args=["sync", "los", "--retries", "0"])
    assert result.exit_code == 0, result.output
    assert '"status": "succeeded"' in result.output
    assert count(t24_loaded, "loan_applications") == len(applications)
    result = app.test_cli_runner().invoke(args=["sync", "status"])
    assert "LOS:" in result.output and '"percent": 100.0' in result.output


def test_daily_schedules_are_declared():
    from portal.schedules import SCHEDULES

    mine = {s.name: s for s in SCHEDULES if s.name.startswith("sync.")}
    assert set(mine) == {"sync.t24", "sync.w4", "sync.los"}
    for name, schedule in mine.items():
        assert schedule.queue == "integrations" and schedule.args == (name[5:].upper(),)
        assert schedule.resolve().__name__ == "run_scheduled_sync"


def test_the_ops_page_buttons_enqueue_syncs(app, db, make_user):
    from rq.job import Job

    from portal.extensions import get_redis

    ops_actions = pytest.importorskip("portal.ops.actions")
    import integrations.sync  # noqa: F401 - registers the buttons

    user = make_user("ops")
    for name in ("T24", "W4", "LOS"):
        assert ops_actions.available(name) == {"run_now": True, "full_resync": True,
                                               "retry_run": True}
    message = ops_actions.trigger(db.session, "w4", "full_resync", user)
    job_id = message.rsplit("job ", 1)[1].rstrip(")")
    job = Job.fetch(job_id, connection=get_redis())
    assert job.args == ("W4",) and job.kwargs["full"] is True
    assert job.kwargs["user_id"] == user.id
