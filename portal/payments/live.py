"""What the case's live payments partial shows, and a fingerprint that changes whenever a
payment of the customer arrives or its effects (promises kept, reversal) are applied."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.models import Payment, Promise, PromiseAllocation

LATEST = 5


@dataclass
class LivePayment:
    payment: Payment
    promises: list[Promise] = field(default_factory=list)

    @property
    def outcome(self) -> str | None:
        """"kept" / "partially_kept" when the payment counted towards a promise."""
        statuses = {p.status for p in self.promises}
        for status in ("kept", "partially_kept"):
            if status in statuses:
                return status
        return None


@dataclass
class CaseState:
    fingerprint: str
    payments: list[LivePayment]
    count: int


def case_state(session: Session, cif: str) -> CaseState:
    count, last_change = session.execute(
        select(func.count(Payment.id), func.max(Payment.updated_at)).where(Payment.cif == cif)
    ).one()
    payments = list(session.scalars(
        select(Payment).where(Payment.cif == cif)
        .order_by(Payment.paid_at.desc(), Payment.id.desc()).limit(LATEST)
    ))
    touched: dict[int, list[Promise]] = {}
    if payments:
        for payment_id, promise in session.execute(
            select(PromiseAllocation.payment_id, Promise)
            .join(Promise, Promise.id == PromiseAllocation.promise_id)
            .where(PromiseAllocation.payment_id.in_([p.id for p in payments]),
                   PromiseAllocation.reversed_at.is_(None))
        ):
            touched.setdefault(payment_id, []).append(promise)
    stamp = last_change.timestamp() if last_change is not None else 0
    return CaseState(fingerprint=f"{count}-{stamp:.6f}",
                     payments=[LivePayment(p, touched.get(p.id, [])) for p in payments],
                     count=count)
