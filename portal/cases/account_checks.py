"""Bank data that contradicts itself: THE rule, one SQL statement, read by the case view (a
"Bank data inconsistent: …" marker on the account) and by ``flask check invariants``.

The portal shows the bank's figures as the bank sent them; it never repairs them. A loan whose
due a payment has reduced (``payments.due_applied``) shows the portal's figure, not the bank's,
so the two amount rules do not judge it (its dates still are). An open loan
or card (any status but CLOSED) contradicts itself, on the bank's business date ``today``, when:

==================================  ===========================================================
``overdue_without_amount``          days past due, but nothing due (a loan's ``due_amount``,
                                    a card's ``min_due``, is 0)
``due_while_current``               a loan at 0 days past due with an amount due: a current
                                    account has nothing overdue
``due_below_minimum``               a loan's amount due below its minimum payment
``next_payment_not_after_overdue``  days past due, and a next payment date on or before the
                                    oldest unpaid instalment (``today`` − DPD)
``next_payment_past``               0 days past due, and a next payment date before ``today``
==================================  ===========================================================

A card's overdue amount is its ``min_due`` once it has days past due
(``portal.cases.queue.collectible_products``): a current card's ``min_due`` is the statement's
minimum, not an overdue amount, so it owes nothing overdue by definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.orm import Session

from portal import clock

CODES = ("overdue_without_amount", "due_while_current", "due_below_minimum",
         "next_payment_not_after_overdue", "next_payment_past")

# {scope}: "" for every account, or a condition on the customer (``:cif``)
_SQL = """
WITH accounts AS (
    -- paid_down: a payment took part of the due the bank sent, so the due shown is
    -- the portal's (portal.payments.effects) and the amount rules do not judge it
    SELECT 'loan' AS kind, l.id, l.account_number AS account, l.cif, l.currency, l.dpd,
           l.due_amount AS due, l.min_pay, l.next_payment_date AS next_date,
           EXISTS (SELECT 1 FROM payments p WHERE p.account_number = l.account_number
                   AND p.due_applied > 0) AS paid_down
    FROM loans l WHERE l.status <> 'CLOSED' {scope}
    UNION ALL
    SELECT 'card', id, contract_number, cif, currency, days_overdue, min_due, NULL, due_date,
           false
    FROM cards WHERE status <> 'CLOSED' {scope}
)
SELECT a.kind, a.id, a.account, a.cif, c.code, a.currency, a.dpd, a.due, a.min_pay,
       a.next_date
FROM accounts a
CROSS JOIN LATERAL (VALUES
    ('overdue_without_amount', a.dpd > 0 AND a.due <= 0 AND NOT a.paid_down),
    ('due_while_current', a.kind = 'loan' AND a.dpd = 0 AND a.due > 0),
    ('due_below_minimum', a.due < a.min_pay AND NOT a.paid_down),
    ('next_payment_not_after_overdue', a.dpd > 0 AND a.next_date <= CAST(:today AS date) - a.dpd),
    ('next_payment_past', a.dpd = 0 AND a.next_date < CAST(:today AS date))
) AS c(code, failed)
WHERE c.failed
ORDER BY a.cif, a.kind, a.account, c.code
"""
ALL_ACCOUNTS_SQL = _SQL.format(scope="")
CUSTOMER_SQL = _SQL.format(scope="AND cif = :cif")


@dataclass(frozen=True)
class Inconsistency:
    kind: str  # "loan" or "card"
    id: int
    account: str  # account number or card contract number
    cif: str
    code: str  # one of CODES
    currency: str
    dpd: int
    due: Decimal  # a loan's due_amount, a card's min_due
    min_pay: Decimal | None  # a loan's (cards have none)
    next_date: date | None  # a loan's next_payment_date, a card's due_date

    def oldest_unpaid(self, today: date) -> date:
        return today - timedelta(days=self.dpd)


def inconsistencies(session: Session, *, cif: str | None = None,
                    today: date | None = None) -> list[Inconsistency]:
    """The contradictions of every open account (or of ``cif``'s) on ``today`` (the bank's
    business date by default), one row per account and rule broken."""
    params = {"today": today or clock.bank_today()}
    if cif is not None:
        params["cif"] = cif
    rows = session.execute(text(CUSTOMER_SQL if cif is not None else ALL_ACCOUNTS_SQL), params)
    return [Inconsistency(*row) for row in rows]


def by_account(session: Session, cif: str, today: date | None = None
               ) -> dict[str, list[Inconsistency]]:
    """{account or contract number: its contradictions} of ``cif``'s open accounts."""
    found: dict[str, list[Inconsistency]] = {}
    for item in inconsistencies(session, cif=cif, today=today):
        found.setdefault(item.account, []).append(item)
    return found


def violations(session: Session, now: datetime) -> list[dict]:
    """Every contradiction as a row of ``flask check invariants`` (the shape of
    ``portal.ops.invariants.Invariant.find``): kind, id, account, cif, rule, and the figures."""
    return [{"kind": i.kind, "id": i.id, "account": i.account, "cif": i.cif, "rule": i.code,
             "dpd": i.dpd, "due": str(i.due),
             "min_pay": None if i.min_pay is None else str(i.min_pay),
             "next_date": None if i.next_date is None else i.next_date.isoformat()}
            for i in inconsistencies(session, today=clock.bank_today(now))]
