"""The daily broken-promise job, across the bank's day boundary (Asia/Ho_Chi_Minh, UTC+7)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.cases.queue import PriorityInputs, compute_priority
from portal.events.subscribers import deliver
from portal.models import AuditLog, Case, Event, Notification, Promise
from workers.jobs.promises import run_broken_promises

PROMISED = date(2026, 11, 24)


@pytest.fixture
def setup(make_customer, make_loan, make_user, make_case, make_promise):
    agent = make_user(role="agent", full_name="Tran Thi Mai")
    customer = make_customer(name="Le Van Hung")
    loan = make_loan(customer, dpd=20, due_amount=Decimal("6000000"))
    case = make_case(customer, agent, priority=10)
    due_today = make_promise(customer, "2000000", PROMISED, loan=loan, agent=agent)
    return agent, customer, loan, case, due_today


def statuses(db) -> dict[int, str]:
    db.session.expire_all()
    return dict(db.session.execute(select(Promise.id, Promise.status)).all())


def test_nothing_breaks_until_the_bank_day_is_over(db, setup, frozen_now):
    _, _, _, case, promise = setup
    frozen_now("2026-11-24T16:59:00+00:00")  # 23:59 on the 24th in Ho Chi Minh City
    assert run_broken_promises() == {"business_date": "2026-11-24", "broken": 0,
                                     "instalments_missed": 0, "plans_broken": 0}
    assert statuses(db)[promise.id] == "pending"
    assert db.session.get(Case, case.id).next_action_at is None


def test_at_2330_utc_it_is_already_the_next_day_in_the_bank(db, setup, frozen_now,
                                                            make_promise):
    agent, customer, loan, case, promise = setup
    tomorrow = make_promise(customer, "1000000", date(2026, 11, 25), agent=agent)  # customer
    short = make_promise(customer, "1000000", date(2026, 11, 23), loan=loan, agent=agent,
                         status="partially_kept", paid_amount=Decimal("400000"))
    kept = make_promise(customer, "1000000", date(2026, 11, 20), loan=loan, agent=agent,
                        status="kept", paid_amount=Decimal("1000000"))
    frozen_now("2026-11-24T23:30:00+00:00")  # 06:30 on the 25th in Ho Chi Minh City

    assert run_broken_promises() == {"business_date": "2026-11-25", "broken": 2,
                                     "instalments_missed": 0, "plans_broken": 0}

    now = statuses(db)
    assert now[promise.id] == "broken" and now[short.id] == "broken"
    assert now[tomorrow.id] == "pending" and now[kept.id] == "kept"
    broken = db.session.get(Promise, promise.id)
    assert broken.resolved_at == datetime(2026, 11, 24, 23, 30, tzinfo=UTC)
    events = db.session.scalars(select(Event).where(Event.type == "PROMISE_BROKEN")
                                .order_by(Event.occurred_at)).all()
    assert sorted((e.payload["promise_id"], e.payload["previous_status"]) for e in events) == \
        sorted([(promise.id, "pending"), (short.id, "partially_kept")])
    short_event = next(e for e in events if e.payload["promise_id"] == short.id)
    assert short_event.payload["paid_amount"] == "400000.00"
    # the case is due again, now, and its priority is the queue's formula (two broken
    # promises, and the one dated the 25th is due today)
    case = db.session.get(Case, case.id)
    assert case.next_action_at == datetime(2026, 11, 24, 23, 30, tzinfo=UTC)
    assert case.priority == compute_priority(
        PriorityInputs(case.max_dpd, case.total_overdue, broken_promises_30d=2,
                       promise_due=True, next_action_at=case.next_action_at,
                       last_contact_at=None), case.next_action_at)
    assert case.priority > 10
    assert db.session.scalar(select(AuditLog.action).where(
        AuditLog.entity_id == str(promise.id))) == "promise.broken"
    # running again the same night changes nothing
    assert run_broken_promises()["broken"] == 0


def test_the_agent_is_notified_once(db, setup, frozen_now):
    agent, customer, _, _, promise = setup
    frozen_now("2026-11-25T00:10:00+00:00")
    run_broken_promises()
    event = db.session.scalar(select(Event).where(Event.type == "PROMISE_BROKEN"))
    assert deliver(db.session, event.id, "notifications.promise_broken") == "delivered"
    assert deliver(db.session, event.id, "notifications.promise_broken") == "already-delivered"
    notes = db.session.scalars(select(Notification)).all()
    assert len(notes) == 1
    note = notes[0]
    assert note.user_id == agent.id and note.kind == "promise_broken"
    assert note.title == "Promise broken: Le Van Hung"
    assert "2,000,000\u00a0₫ promised for 24/11/2026" in note.body and "0\u00a0₫ paid" in note.body
    assert note.cif == customer.cif and customer.cif in note.link
    assert note.event_id == str(event.id) and note.read_at is None


def test_a_promise_without_agent_notifies_the_case_agent(db, setup, frozen_now, make_promise):
    agent, customer, loan, _, promise = setup
    promise.agent_id = None
    db.session.commit()
    frozen_now("2026-11-25T03:00:00+00:00")
    run_broken_promises()
    event = db.session.scalar(select(Event).where(Event.type == "PROMISE_BROKEN"))
    deliver(db.session, event.id, "notifications.promise_broken")
    assert db.session.scalar(select(Notification.user_id)) == agent.id


def test_the_relay_routes_promise_broken_to_the_notification_subscriber(db, setup, frozen_now):
    from portal.events.relay import relay_once
    from portal.models import EventDelivery

    frozen_now("2026-11-25T00:10:00+00:00")
    run_broken_promises()
    relay_once(db.session)
    subscribers = db.session.scalars(select(EventDelivery.subscriber)).all()
    assert "notifications.promise_broken" in subscribers
