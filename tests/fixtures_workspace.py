"""Factory fixtures for the workspace tests (plugin registered in tests/conftest.py).

Names start with ``ws_`` so they never collide with the workflow plugin's fixtures."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

_seq = itertools.count(1)


@pytest.fixture
def ws_action_codes(db):
    """The default action-code catalogue (portal.seed.action_codes), as {(type, subtype,
    result): ActionCode}."""
    from portal.models import ActionCode
    from portal.seed.action_codes import DEFAULT_ACTION_CODES

    codes = {}
    for order, spec in enumerate(DEFAULT_ACTION_CODES):
        code = ActionCode(type=spec.type, subtype=spec.subtype, result=spec.result,
                          label=spec.label, is_contact=spec.is_contact,
                          is_promise=spec.is_promise, follow_up_days=spec.follow_up_days,
                          sort_order=order)
        db.session.add(code)
        codes[(spec.type, spec.subtype, spec.result)] = code
    db.session.commit()
    return codes


@pytest.fixture
def ws_case(db, make_customer, make_loan):
    """A customer with one overdue loan and a case: ``ws_case(agent, dpd=45, overdue=...)``.
    Returns the Case (``case.customer``, and ``case.loan`` set on the object)."""
    from portal.models import Case

    def make(agent=None, dpd: int = 10, overdue: Decimal | str = "5000000", customer=None,
             **kwargs):
        national_id = kwargs.pop("national_id", f"0790{next(_seq):08d}")
        segment = kwargs.pop("segment", "MASS")
        customer = customer or make_customer(national_id=national_id, segment=segment)
        overdue = Decimal(overdue)
        loan = make_loan(customer=customer, dpd=dpd, due_amount=overdue)
        kwargs.setdefault("products", [loan.product_type])
        case = Case(cif=customer.cif, assigned_agent_id=agent.id if agent else None,
                    max_dpd=dpd, total_overdue=overdue, total_outstanding=loan.outstanding,
                    **kwargs)
        db.session.add(case)
        db.session.commit()
        case.loan = loan
        return case

    return make
