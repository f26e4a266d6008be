"""The work queue: priority ordering, filters, counts, paging, the page and its HTMX partial,
and "Next case" handing two concurrent agents two different cases."""

from __future__ import annotations

import re
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.cases import queue
from portal.models import AuditLog, Card, Case, CaseAssignment, Promise

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # 10:00 in Ho Chi Minh City
TODAY = date(2026, 11, 24)


def names(page) -> list[str]:
    return [row.case.cif for row in page.rows]


@pytest.fixture
def portfolio(db, make_user, ws_case, make_phone, frozen_now):
    """Five cases of one agent, one of another agent, one unassigned."""
    frozen_now(NOW)
    agent = make_user("agent")
    other = make_user("agent")
    cases = {
        "mild": ws_case(agent, dpd=5, overdue="2000000", last_contact_at=NOW - timedelta(hours=1)),
        "big": ws_case(agent, dpd=20, overdue="80000000",
                       last_contact_at=NOW - timedelta(hours=1)),
        "late": ws_case(agent, dpd=95, overdue="3000000", last_contact_at=NOW - timedelta(days=2)),
        "promise": ws_case(agent, dpd=12, overdue="4000000",
                           last_contact_at=NOW - timedelta(hours=3)),
        "follow": ws_case(agent, dpd=8, overdue="1000000", next_action_at=NOW - timedelta(hours=1),
                          last_contact_at=NOW - timedelta(hours=5), status="in_progress"),
        "theirs": ws_case(other, dpd=60, overdue="9000000"),
        "pool": ws_case(None, dpd=70, overdue="9000000"),
    }
    db.session.add(Promise(cif=cases["promise"].cif, agent_id=agent.id, amount=Decimal("1000000"),
                           promised_date=TODAY, status="pending"))
    db.session.add(Card(contract_number="W4C0001", cif=cases["big"].cif,
                        masked_card_number="4111 **** **** 1111", days_overdue=20, bucket="1-30"))
    db.session.commit()
    make_phone(cases["mild"].cif, "0912345678")
    queue.recompute_case_totals(db.session)  # the card joins "big"'s products
    queue.recompute_priorities(db.session, now=NOW)
    db.session.commit()
    return agent, other, cases


def test_priority_orders_the_queue(db, portfolio):
    agent, _, cases = portfolio
    page = queue.queue_page(db.session, agent.id, queue.QueueFilters(), NOW)
    order = names(page)
    assert order[0] == cases["late"].cif  # 90+ bucket first
    # a promise due today outranks a bigger amount in the same bucket
    assert order.index(cases["promise"].cif) < order.index(cases["big"].cif)
    # a reached follow-up outranks a case with no follow-up and similar figures
    assert order.index(cases["follow"].cif) < order.index(cases["mild"].cif)
    assert order.index(cases["big"].cif) < order.index(cases["mild"].cif)  # amount
    assert cases["theirs"].cif not in order and cases["pool"].cif not in order
    priorities = [row.case.priority for row in page.rows]
    assert priorities == sorted(priorities, reverse=True)


def test_recompute_stores_only_changes(db, portfolio):
    assert queue.recompute_priorities(db.session, now=NOW) == 0
    # a day later, silence grows for the five contacted cases (never contacted: already capped)
    assert queue.recompute_priorities(db.session, now=NOW + timedelta(days=1)) == 5
    assert queue.recompute_priorities(db.session, [], now=NOW) == 0


def test_filters(db, portfolio):
    agent, _, cases = portfolio

    def cifs(**kwargs):
        return set(names(queue.queue_page(db.session, agent.id, queue.QueueFilters(**kwargs),
                                          NOW)))

    assert cifs(bucket="90+") == {cases["late"].cif}
    assert cifs(bucket="1-30") == {cases[k].cif for k in ("mild", "big", "promise", "follow")}
    assert cifs(follow_up_due=True) == {cases["follow"].cif}
    assert cifs(promise_due=True) == {cases["promise"].cif}
    assert cifs(status="in_progress") == {cases["follow"].cif}
    assert cifs(product="CARD") == {cases["big"].cif}
    assert cifs(product="PERSONAL_LOAN") == {cases[k].cif for k in
                                             ("mild", "big", "late", "promise", "follow")}
    # search by cif, name, phone (any format) and account number
    assert cifs(q=cases["late"].cif) == {cases["late"].cif}
    assert cifs(q=cases["late"].cif.lower()) == {cases["late"].cif}
    assert cifs(q=cases["big"].customer.name) == {cases["big"].cif}
    assert cifs(q="0912 345 678") == {cases["mild"].cif}
    assert cifs(q="+84912345678") == {cases["mild"].cif}
    assert cifs(q=cases["promise"].loan.account_number) == {cases["promise"].cif}
    assert cifs(q="W4C0001") == {cases["big"].cif}
    assert cifs(q="nobody at all") == set()
    cases["late"].customer.name = "Trần Thị Ánh"
    db.session.commit()
    assert cifs(q="tran thi anh") == cifs(q="Ánh") == cifs(q="TRẦN") == {cases["late"].cif}
    assert cifs(q="%") == set()  # LIKE wildcards are matched literally
    assert cifs(q=cases["theirs"].cif) == set()  # another agent's case is not in my queue


def test_counts_per_filter(db, portfolio):
    agent, _, _ = portfolio
    counts = queue.queue_counts(db.session, agent.id, NOW)
    assert counts.total == 5
    assert counts.buckets == {"current": 0, "1-30": 4, "31-60": 0, "61-90": 0, "90+": 1}
    assert counts.follow_up_due == 1 and counts.promise_due == 1
    assert counts.statuses == {"open": 4, "in_progress": 1}
    assert counts.products == {"PERSONAL_LOAN": 5, "CARD": 1}


def test_paging(db, portfolio):
    agent, _, _ = portfolio
    first = queue.queue_page(db.session, agent.id, queue.QueueFilters(page=1), NOW, per_page=2)
    third = queue.queue_page(db.session, agent.id, queue.QueueFilters(page=3), NOW, per_page=2)
    beyond = queue.queue_page(db.session, agent.id, queue.QueueFilters(page=9), NOW, per_page=2)
    assert (first.total, first.pages, len(first.rows)) == (5, 3, 2)
    assert len(third.rows) == 1 and (third.first, third.last) == (5, 5)
    assert beyond.page == 3  # clamped to the last page
    everything = queue.queue_page(db.session, agent.id, queue.QueueFilters(), NOW)
    assert names(first) == names(everything)[:2]


def test_queue_page_and_partial(client, login, portfolio):
    agent, _, cases = portfolio
    login(agent)
    html = client.get("/cases/").get_data(as_text=True)
    assert "Work queue" in html and 'data-testid="next-case"' in html
    assert html.count('data-testid="queue-row"') == 5
    assert re.search(r"90\+ DPD \(1\)", html)  # counts in the filter options
    partial = client.get("/cases/?bucket=90%2B", headers={"HX-Request": "true",
                                                          "HX-Target": "queue-results"})
    body = partial.get_data(as_text=True)
    assert partial.status_code == 200 and "<html" not in body
    assert body.count('data-testid="queue-row"') == 1 and cases["late"].cif in body


def test_agent_home_is_the_queue(client, login, portfolio):
    agent, _, cases = portfolio
    login(agent)
    html = client.get("/").get_data(as_text=True)
    assert 'data-testid="queue-table"' in html and cases["late"].cif in html
    assert 'data-testid="stat-open-cases"' in html


def test_supervisor_has_no_queue_but_can_search(client, login_as, portfolio):
    _, _, cases = portfolio
    login_as("supervisor")
    assert client.get("/cases/").status_code == 403
    html = client.get(f"/cases/search?q={cases['theirs'].cif}").get_data(as_text=True)
    assert html.count('data-testid="search-row"') == 1


def test_next_case_locks_the_top_case(client, login, csrf_token, db, portfolio, app):
    agent, _, cases = portfolio
    login(agent)
    token = csrf_token("/cases/")
    response = client.post("/cases/next", headers={"X-CSRFToken": token})
    assert response.status_code == 302
    # the unassigned pool case (61-90, never contacted) outranks the agent's own 90+ case
    # (contacted two days ago): Next case follows the priority, and takes it from the pool
    assert response.headers["Location"].endswith(f"/cases/{cases['pool'].cif}")
    db.session.expire_all()
    late = db.session.get(Case, cases["pool"].id)
    assert late.assigned_agent_id == agent.id
    assert late.locked_by_id == agent.id
    assert late.locked_until == NOW + timedelta(minutes=10)
    # asking again releases that lock and hands the same top case (nothing was recorded)
    client.post("/cases/next", headers={"X-CSRFToken": token})
    db.session.expire_all()
    assert db.session.scalar(select(Case.locked_by_id).where(Case.id == late.id)) == agent.id


def test_next_case_skips_cases_locked_by_others_and_takes_from_the_pool(db, portfolio,
                                                                        make_user):
    agent, _, cases = portfolio
    colleague = make_user("agent")
    first = queue.next_case(db.session, colleague, NOW)
    assert first.cif == cases["pool"].cif  # the colleague has no cases: the shared pool
    assert first.assigned_agent_id == colleague.id
    assert db.session.scalar(select(CaseAssignment.reason).where(
        CaseAssignment.case_id == first.id)).startswith("Taken from the shared pool")
    assert db.session.scalar(select(AuditLog.action)) == "case.assigned"
    mine = queue.next_case(db.session, agent, NOW)
    assert mine.cif == cases["late"].cif
    # a lock that has expired does not protect the case
    later = NOW + timedelta(minutes=11)
    assert queue.next_case(db.session, colleague, later).cif == cases["pool"].cif


def test_next_case_under_two_concurrent_agents(app, db, make_user, ws_case, frozen_now):
    """Agent A's transaction holds the row lock of the top case while agent B asks: B must get
    another case at once (SKIP LOCKED), not wait and not get the same one."""
    frozen_now(NOW)
    a, b = make_user("agent"), make_user("agent")
    top = ws_case(None, dpd=100, overdue="9000000")
    second = ws_case(None, dpd=50, overdue="9000000")
    queue.recompute_priorities(db.session, now=NOW)
    db.session.commit()

    a_has_row = threading.Event()
    b_done = threading.Event()
    results: dict[str, str] = {}
    errors: list[BaseException] = []
    engine = db.engine

    class Pausing(Session):
        """Agent A's session pauses after the SELECT ... FOR UPDATE, before committing."""

        def commit(self):
            a_has_row.set()
            results["b_finished_while_a_held_the_lock"] = b_done.wait(timeout=5)
            super().commit()

    def run(name, user_id, session_cls):
        try:
            with app.app_context(), session_cls(engine) as session:
                user = session.get(type(a), user_id)
                case = queue.next_case(session, user, NOW)
                results[name] = case.cif if case else None
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)
        finally:
            if name == "b":
                b_done.set()

    thread_a = threading.Thread(target=run, args=("a", a.id, Pausing))
    thread_a.start()
    assert a_has_row.wait(timeout=10)
    thread_b = threading.Thread(target=run, args=("b", b.id, Session))
    thread_b.start()
    thread_b.join(timeout=10)
    thread_a.join(timeout=10)
    assert not errors, errors
    # without SKIP LOCKED, B would wait for A's commit (and A's wait would time out)
    assert results == {"a": top.cif, "b": second.cif, "b_finished_while_a_held_the_lock": True}
    db.session.expire_all()
    assert db.session.get(Case, top.id).locked_by_id == a.id
    assert db.session.get(Case, second.id).locked_by_id == b.id


def test_next_case_when_nothing_is_due(client, login, csrf_token, make_user, ws_case,
                                       frozen_now):
    frozen_now(NOW)
    agent = make_user("agent")
    ws_case(agent, dpd=10, next_action_at=NOW + timedelta(days=1))
    login(agent)
    response = client.post("/cases/next", headers={"X-CSRFToken": csrf_token("/cases/")},
                           follow_redirects=True)
    assert "Nothing needs work right now" in response.get_data(as_text=True)


def test_cli_recomputes_every_open_case(app, db, make_user, ws_case, frozen_now):
    frozen_now(NOW)
    case = ws_case(make_user("agent"), dpd=95, overdue="3000000")
    assert case.priority == 0
    result = app.test_cli_runner().invoke(args=["cases", "recompute-priorities"])
    assert result.exit_code == 0 and "1 case priorities changed" in result.output
    db.session.expire_all()
    assert db.session.get(Case, case.id).priority == queue.compute_priority(
        queue.PriorityInputs(95, Decimal("3000000")), NOW)


def test_counts_are_cached_per_agent_and_forgotten_by_their_own_work(app, db, portfolio,
                                                                      redis_client):
    agent, _, cases = portfolio
    first = queue.queue_page(db.session, agent.id, queue.QueueFilters(), NOW)
    assert first.counts.total == 5 and first.total == 5
    assert redis_client.exists(queue.COUNTS_KEY.format(agent_id=agent.id))
    # a change made elsewhere (say a payment closing the case) shows within the TTL ...
    db.session.get(Case, cases["mild"].id).status = "closed"
    db.session.commit()
    cached = queue.queue_page(db.session, agent.id, queue.QueueFilters(), NOW)
    assert cached.counts.total == 5
    assert len(cached.rows) == 4  # the rows themselves are always read fresh
    # ... or at once when the agent's own work forgets the counts
    queue.forget_queue_counts(agent.id)
    fresh = queue.queue_page(db.session, agent.id, queue.QueueFilters(), NOW)
    assert fresh.counts.total == 4 and fresh.total == 4
    assert fresh.counts.buckets["1-30"] == 3


def test_counts_are_counted_directly_when_the_cache_is_off_or_redis_is_down(
        app, db, portfolio, monkeypatch):
    agent, _, _ = portfolio
    monkeypatch.setitem(app.config, "QUEUE_COUNTS_TTL", 0)
    assert queue.queue_page(db.session, agent.id, queue.QueueFilters(), NOW).counts.total == 5
    monkeypatch.setitem(app.config, "QUEUE_COUNTS_TTL", 30)
    from redis import Redis

    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    monkeypatch.setattr(queue, "get_redis", lambda: dead)
    page = queue.queue_page(db.session, agent.id, queue.QueueFilters(), NOW)
    assert page.counts.total == 5 and page.counts.promise_due == 1
