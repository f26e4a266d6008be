"""Factory fixtures for the workflow tests (plugin registered in tests/conftest.py)."""

from __future__ import annotations

import itertools
from datetime import date, datetime
from decimal import Decimal

import pytest

from portal import clock

_seq = itertools.count(1)


@pytest.fixture
def make_action_code(db):
    from portal.models import ActionCode

    def make(type="CALL", subtype="OUTBOUND", result=None, **kwargs):
        n = next(_seq)
        kwargs.setdefault("label", f"Result {n}")
        code = ActionCode(type=type, subtype=subtype, result=result or f"RESULT_{n}", **kwargs)
        db.session.add(code)
        db.session.commit()
        return code

    return make


@pytest.fixture
def make_action(db):
    """``make_action(customer, at=..., type="CALL")``: an action row as recorded by an agent."""
    from portal.models import Action

    def make(customer, at: datetime | None = None, type: str = "CALL", **kwargs):
        action = Action(cif=customer.cif, type=type, at=at or clock.now(), **kwargs)
        db.session.add(action)
        db.session.commit()
        return action

    return make


@pytest.fixture
def make_case(db):
    from portal.models import Case

    def make(customer, agent=None, **kwargs):
        case = Case(cif=customer.cif, assigned_agent_id=agent.id if agent else None, **kwargs)
        db.session.add(case)
        db.session.commit()
        return case

    return make


@pytest.fixture
def make_promise(db):
    """A promise row written directly (no validation), for allocation and job tests."""
    from portal.models import Promise

    def make(customer, amount, promised_date: date, loan=None, agent=None, **kwargs):
        kwargs.setdefault("status", "pending")
        kwargs.setdefault("paid_amount", Decimal(0))
        promise = Promise(cif=customer.cif, account_number=loan.account_number if loan else None,
                          agent_id=agent.id if agent else None, amount=Decimal(amount),
                          promised_date=promised_date, **kwargs)
        db.session.add(promise)
        db.session.commit()
        return promise

    return make


@pytest.fixture
def make_payment(db):
    from portal.models import Payment

    def make(loan, amount, paid_at: datetime | None = None, **kwargs):
        n = next(_seq)
        kwargs.setdefault("reference_number", f"PAY{n:010d}")
        kwargs.setdefault("currency", "VND")
        payment = Payment(account_number=loan.account_number, cif=loan.cif,
                          amount=Decimal(amount), paid_at=paid_at or clock.now(),
                          **kwargs)
        db.session.add(payment)
        db.session.commit()
        return payment

    return make
