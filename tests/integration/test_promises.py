"""Promises: validation with field-level messages, FIFO allocation of payments, undo on
reversal."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.cases.contact_rules import PromiseRules, save_promise_rules
from portal.cases.promises import (
    PromiseValidationError,
    allocate_payment,
    create_promise,
    undo_allocations,
)
from portal.models import AuditLog, Event, Promise, PromiseAllocation

TODAY = date(2026, 11, 24)


@pytest.fixture
def debtor(make_customer, make_loan, make_user):
    customer = make_customer()
    loan = make_loan(customer, dpd=35, due_amount=Decimal("5000000"))
    return customer, loan, make_user(role="agent")


def promise_errors(db, **kwargs) -> dict[str, str]:
    with pytest.raises(PromiseValidationError) as info:
        create_promise(db.session, today=TODAY, action_id=None, **kwargs)
    db.session.rollback()
    assert db.session.scalar(select(Promise.id)) is None
    return info.value.errors


def test_a_valid_promise_is_pending_with_its_event_and_audit_row(db, debtor):
    customer, loan, agent = debtor
    promise = create_promise(db.session, agent_id=agent.id, cif=customer.cif,
                             account_number=loan.account_number, amount=Decimal("2000000"),
                             promised_date=TODAY + timedelta(days=3), action_id=None,
                             today=TODAY)
    db.session.commit()
    assert promise.status == "pending" and promise.paid_amount == 0
    assert promise.currency == "VND" and promise.account_number == loan.account_number
    event = db.session.scalar(select(Event).where(Event.type == "PROMISE_CREATED"))
    assert event.payload["promise_id"] == promise.id
    assert event.payload["amount"] == "2000000"
    assert event.payload["promised_date"] == "2026-11-27"
    audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "promise.create"))
    assert audit.entity_id == str(promise.id) and audit.actor_id == agent.id


def test_today_is_allowed_and_the_max_horizon_is_inclusive(db, debtor):
    customer, loan, agent = debtor
    for day in (TODAY, TODAY + timedelta(days=30)):  # the second replaces the first
        create_promise(db.session, agent_id=agent.id, cif=customer.cif, account_number=None,
                       amount=Decimal("100000"), promised_date=day, action_id=None, today=TODAY,
                       replace_pending=True)
    db.session.commit()
    assert len(db.session.scalars(select(Promise)).all()) == 2


@pytest.mark.parametrize(("amount", "promised_date", "field", "message"), [
    (Decimal("1000000"), TODAY - timedelta(days=1), "promised_date", "in the past"),
    (Decimal("1000000"), TODAY + timedelta(days=31), "promised_date", "at most 30 days"),
    (Decimal("0"), TODAY, "amount", "greater than zero"),
    (Decimal("-500000"), TODAY, "amount", "cannot be negative"),
    (Decimal("1000.005"), TODAY, "amount", "VND has no decimals"),
    ("5,000.50", TODAY, "amount", "mixes separators"),
    ("abc", TODAY, "amount", "Enter an amount"),
    (Decimal("NaN"), TODAY, "amount", "Enter an amount"),
    (None, TODAY, "amount", "Enter the amount"),
    (Decimal("5000001"), TODAY, "amount", "more than due on loan"),
])
def test_invalid_promises_name_the_field(db, debtor, amount, promised_date, field, message):
    customer, loan, agent = debtor
    errors = promise_errors(db, agent_id=agent.id, cif=customer.cif,
                            account_number=loan.account_number, amount=amount,
                            promised_date=promised_date)
    assert list(errors) == [field]
    assert message in errors[field]


def test_several_errors_come_together(db, debtor):
    customer, loan, agent = debtor
    errors = promise_errors(db, agent_id=agent.id, cif=customer.cif, account_number="NOPE",
                            amount=Decimal("-1"), promised_date=TODAY - timedelta(days=2))
    assert set(errors) == {"amount", "promised_date", "account_number"}


def test_an_unknown_loan_is_refused(db, debtor):
    customer, _, agent = debtor
    errors = promise_errors(db, agent_id=agent.id, cif=customer.cif,
                            account_number="LN_DOES_NOT_EXIST", amount=Decimal("1000"),
                            promised_date=TODAY)
    assert errors == {"account_number": "There is no loan LN_DOES_NOT_EXIST."}


def test_a_loan_of_another_customer_is_refused(db, debtor, make_loan):
    customer, _, agent = debtor
    other = make_loan(dpd=10)
    errors = promise_errors(db, agent_id=agent.id, cif=customer.cif,
                            account_number=other.account_number, amount=Decimal("1000"),
                            promised_date=TODAY)
    assert "belongs to another customer" in errors["account_number"]


def test_without_a_loan_the_customer_total_due_across_loans_and_cards_is_the_limit(
        db, debtor, make_loan):
    from portal.models import Card

    customer, _, agent = debtor
    make_loan(customer, dpd=5, due_amount=Decimal("1500000"))
    make_loan(customer, dpd=0, due_amount=Decimal("900000"), status="CLOSED")  # not counted
    db.session.add(Card(contract_number="C-1", cif=customer.cif,
                        masked_card_number="4111********1111",
                        credit_limit=Decimal("50000000"), outstanding=Decimal("20000000"),
                        min_due=Decimal("500000"), days_overdue=12, bucket="1-30",
                        source_system="W4"))
    db.session.commit()
    make_loan(customer, dpd=200, due_amount=Decimal("2000000"), status="WRITTEN_OFF")
    db.session.add(Card(contract_number="C-2", cif=customer.cif,
                        masked_card_number="4111********2222",
                        credit_limit=Decimal("10000000"), outstanding=Decimal("1000000"),
                        min_due=Decimal("300000"), days_overdue=0, bucket="current",
                        source_system="W4"))  # not overdue: its minimum due is not yet owed
    db.session.commit()
    # 5,000,000 + 1,500,000 + 2,000,000 (written off, still recovered) + 500,000: the case's
    # total overdue, by the same definition (queue.collectible_products)
    total = Decimal("9000000")
    from portal.cases.queue import recompute_case_totals
    from portal.models import Case
    case = Case(cif=customer.cif, status="open")
    db.session.add(case)
    db.session.flush()
    recompute_case_totals(db.session, [case.id])
    db.session.commit()
    db.session.refresh(case)
    assert case.total_overdue == total
    errors = promise_errors(db, agent_id=agent.id, cif=customer.cif, account_number=None,
                            amount=total + Decimal("1"), promised_date=TODAY)
    assert "more than the customer's total due (9,000,000\u00a0₫)" in errors["amount"]
    create_promise(db.session, agent_id=agent.id, cif=customer.cif, account_number=None,
                   amount=total, promised_date=TODAY, action_id=None, today=TODAY)


def test_the_horizon_is_configurable(app, db, debtor, make_user, monkeypatch):
    customer, loan, agent = debtor
    monkeypatch.setitem(app.config, "PROMISE_MAX_DAYS", 10)
    errors = promise_errors(db, agent_id=agent.id, cif=customer.cif,
                            account_number=loan.account_number, amount=Decimal("1000"),
                            promised_date=TODAY + timedelta(days=11))
    assert "at most 10 days ahead" in errors["promised_date"]
    # the value stored from the admin page wins over the config
    save_promise_rules(db.session, PromiseRules(max_days=7), make_user(role="admin"))
    db.session.commit()
    errors = promise_errors(db, agent_id=agent.id, cif=customer.cif,
                            account_number=loan.account_number, amount=Decimal("1000"),
                            promised_date=TODAY + timedelta(days=8))
    assert "at most 7 days ahead (until 01/12/2026)" in errors["promised_date"]


# -- FIFO allocation ----------------------------------------------------------------------------


def kept_events(db) -> list[dict]:
    return [e.payload for e in db.session.scalars(
        select(Event).where(Event.type == "PROMISE_KEPT").order_by(Event.occurred_at))]


def test_one_payment_over_two_promises_fills_the_oldest_first(db, debtor, make_promise,
                                                               make_payment):
    customer, loan, agent = debtor
    # one pending promise per loan: the older one is partly paid already
    later = make_promise(customer, "1000000", TODAY + timedelta(days=5), loan=loan, agent=agent)
    first = make_promise(customer, "1200000", TODAY + timedelta(days=2), loan=loan, agent=agent,
                         status="partially_kept", paid_amount=Decimal("200000"))
    payment = make_payment(loan, "1500000")
    allocations = allocate_payment(db.session, payment)
    db.session.commit()
    assert [(a.promise_id, a.amount) for a in allocations] == [
        (first.id, Decimal("1000000")), (later.id, Decimal("500000"))]
    assert (first.status, first.paid_amount) == ("kept", Decimal("1200000"))
    assert first.resolved_at is not None
    assert (later.status, later.paid_amount) == ("partially_kept", Decimal("500000"))
    assert later.resolved_at is None
    events = kept_events(db)
    assert [(e["promise_id"], e["status"]) for e in events] == [
        (first.id, "kept"), (later.id, "partially_kept")]
    assert events[0]["payment_reference"] == payment.reference_number


def test_partial_then_exact_payment(db, debtor, make_promise, make_payment):
    customer, loan, agent = debtor
    promise = make_promise(customer, "2000000", TODAY + timedelta(days=1), loan=loan)
    allocate_payment(db.session, make_payment(loan, "750000"))
    assert (promise.status, promise.paid_amount) == ("partially_kept", Decimal("750000"))
    allocate_payment(db.session, make_payment(loan, "1250000"))
    db.session.commit()
    assert (promise.status, promise.paid_amount) == ("kept", Decimal("2000000"))


def test_over_payment_leaves_the_remainder_unallocated(db, debtor, make_promise, make_payment):
    customer, loan, _ = debtor
    promise = make_promise(customer, "1000000", TODAY, loan=loan)
    kept_before = make_promise(customer, "300000", TODAY - timedelta(days=3), loan=loan,
                               status="kept", paid_amount=Decimal("300000"))
    payment = make_payment(loan, "4000000")
    allocations = allocate_payment(db.session, payment)
    db.session.commit()
    assert [(a.promise_id, a.amount) for a in allocations] == [(promise.id, Decimal("1000000"))]
    assert promise.status == "kept" and promise.paid_amount == Decimal("1000000")
    assert kept_before.paid_amount == Decimal("300000")
    # allocating the same payment again changes nothing
    again = allocate_payment(db.session, payment)
    assert [a.id for a in again] == [a.id for a in allocations]
    assert promise.paid_amount == Decimal("1000000")


def test_the_payments_loan_comes_first_then_customer_level_and_never_another_loan(
        db, debtor, make_loan, make_promise, make_payment):
    customer, loan, _ = debtor
    other_loan = make_loan(customer, dpd=40)
    customer_level = make_promise(customer, "500000", TODAY)  # oldest, but no loan
    on_other_loan = make_promise(customer, "500000", TODAY, loan=other_loan)
    on_this_loan = make_promise(customer, "500000", TODAY + timedelta(days=4), loan=loan)
    allocations = allocate_payment(db.session, make_payment(loan, "800000"))
    db.session.commit()
    assert [(a.promise_id, a.amount) for a in allocations] == [
        (on_this_loan.id, Decimal("500000")), (customer_level.id, Decimal("300000"))]
    assert on_other_loan.paid_amount == 0 and on_other_loan.status == "pending"


def test_broken_cancelled_and_failed_are_left_alone(db, debtor, make_promise, make_payment):
    customer, loan, _ = debtor
    broken = make_promise(customer, "500000", TODAY - timedelta(days=2), loan=loan,
                          status="broken")
    cancelled = make_promise(customer, "500000", TODAY, loan=loan, status="cancelled")
    assert allocate_payment(db.session, make_payment(loan, "800000")) == []
    open_one = make_promise(customer, "500000", TODAY, loan=loan)
    assert allocate_payment(db.session, make_payment(loan, "800000", status="failed")) == []
    assert broken.paid_amount == cancelled.paid_amount == open_one.paid_amount == 0


# -- reversal -----------------------------------------------------------------------------------


def test_reversal_reopens_promises_whose_date_has_not_passed(db, debtor, make_promise,
                                                             make_payment):
    customer, loan, _ = debtor
    first = make_promise(customer, "1000000", TODAY, loan=loan)
    second = make_promise(customer, "1000000", TODAY + timedelta(days=3))  # whole customer
    earlier = make_payment(loan, "400000")
    allocate_payment(db.session, earlier)
    payment = make_payment(loan, "1200000")
    allocate_payment(db.session, payment)
    db.session.commit()
    assert (first.status, second.status) == ("kept", "partially_kept")

    reversed_ = undo_allocations(db.session, payment, today=TODAY)
    db.session.commit()
    assert len(reversed_) == 2 and all(a.reversed_at is not None for a in reversed_)
    # the first keeps the 400,000 of the earlier payment; the second has nothing left
    assert (first.status, first.paid_amount) == ("partially_kept", Decimal("400000"))
    assert first.resolved_at is None
    assert (second.status, second.paid_amount) == ("pending", Decimal("0"))
    live = db.session.scalars(select(PromiseAllocation)
                              .where(PromiseAllocation.reversed_at.is_(None))).all()
    assert [a.payment_id for a in live] == [earlier.id]
    # undoing twice is a no-op
    assert undo_allocations(db.session, payment, today=TODAY) == []


def test_reversal_after_the_promised_date_breaks_the_promise(db, debtor, make_promise,
                                                             make_payment):
    customer, loan, agent = debtor
    promise = make_promise(customer, "1000000", TODAY - timedelta(days=1), loan=loan,
                           agent=agent)
    payment = make_payment(loan, "1000000")
    allocate_payment(db.session, payment)
    db.session.commit()
    assert promise.status == "kept"
    undo_allocations(db.session, payment, today=TODAY)
    db.session.commit()
    assert promise.status == "broken" and promise.paid_amount == 0
    event = db.session.scalar(select(Event).where(Event.type == "PROMISE_BROKEN"))
    assert event.payload["previous_status"] == "kept"
    assert event.payload["agent_id"] == agent.id


def test_a_written_off_loan_takes_promises_but_a_closed_one_does_not(db, debtor, make_loan):
    customer, _, agent = debtor
    written_off = make_loan(customer, dpd=400, due_amount=Decimal("3000000"),
                            status="WRITTEN_OFF")
    closed = make_loan(customer, dpd=0, due_amount=Decimal("0"), status="CLOSED")
    errors = promise_errors(db, agent_id=agent.id, cif=customer.cif,
                            account_number=closed.account_number, amount=Decimal("1000"),
                            promised_date=TODAY)
    assert errors["account_number"] == f"Loan {closed.account_number} is closed."
    promise = create_promise(db.session, agent_id=agent.id, cif=customer.cif,
                             account_number=written_off.account_number,
                             amount=Decimal("3000000"), promised_date=TODAY, action_id=None,
                             today=TODAY)
    assert promise.status == "pending" and promise.account_number == written_off.account_number
