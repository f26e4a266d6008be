"""A reversal must leave a loan as the payments still standing say, whatever the floor at zero
took: found by the scenario (a loan with nothing due, paid, then the payment reversed, ended
with the whole payment due). Reported to the owner of portal/payments/effects.py."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portal.models import Loan
from tests.integration.test_events_support import drain
from tests.integration.test_payments_webhook import notification, post


@pytest.mark.xfail(strict=True, reason="portal/payments/effects.py sync_payment raises "
                   "due_amount back by the whole payment on a reversal (reported)")
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
