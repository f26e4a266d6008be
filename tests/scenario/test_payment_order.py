"""A reversal must leave a loan as the payments still standing say, whatever the floor at zero
took and whatever order payments and reversals arrive in: found by the scenario (a loan with
nothing due, paid, then the payment reversed, ended with the whole payment due)."""

from __future__ import annotations

from decimal import Decimal

from portal.models import Loan
from tests.integration.test_events_support import drain
from tests.integration.test_payments_webhook import notification, post


def test_due_amount_after_a_reversal_follows_the_payments_standing(app, client, db,
                                                                   make_customer, make_loan):
    loan = make_loan(make_customer(), dpd=0, due_amount=Decimal(0),
                     outstanding=Decimal("10000000"))
    paid = notification(loan, amount="481000.00")
    assert post(client, paid).status_code == 201
    drain(app)  # the payment counts (nothing was due: the due amount stays at zero) ...
    reversal = notification(loan, n=2, type="payment.reversed", amount="481000.00",
                            original_reference=paid["reference_number"])
    assert post(client, reversal).status_code == 201
    drain(app)  # ... then it is reversed
    db.session.rollback()
    row = db.session.get(Loan, loan.id)
    assert row.outstanding == Decimal("10000000")
    assert row.due_amount == Decimal(0)


def test_due_amount_does_not_depend_on_the_order_of_payments_and_reversals(app, client, db,
                                                                            make_customer,
                                                                            make_loan):
    """Due 100: B (50) then A (80) take it to zero; B reversed leaves A standing: 20 due."""
    loan = make_loan(make_customer(), dpd=10, due_amount=Decimal("100000"),
                     outstanding=Decimal("10000000"))
    b = notification(loan, n=1, amount="50000.00")
    a = notification(loan, n=2, amount="80000.00")
    for body in (b, a):
        assert post(client, body).status_code == 201
        drain(app)
    db.session.rollback()
    assert db.session.get(Loan, loan.id).due_amount == Decimal(0)
    reversal = notification(loan, n=3, type="payment.reversed", amount="50000.00",
                            original_reference=b["reference_number"])
    assert post(client, reversal).status_code == 201
    drain(app)
    db.session.rollback()
    row = db.session.get(Loan, loan.id)
    assert (row.outstanding, row.due_amount) == (Decimal("9920000"), Decimal("20000"))
