"""What a payment changes, as subscribers of PAYMENT_RECEIVED / _REVERSED / _FAILED.

Events are delivered at least once and in any order (each subscriber's delivery row makes a
redelivery a no-op, portal.events.subscribers); a reversal may even be handled before the payment
it reverses. So the money effects are not applied per event but brought in step with the
payment's state: ``payments.applied_amount`` is how much of the payment counts now (its amount
while ``received``, else 0), and ``sync_payment`` applies only the difference, under a row lock:

- the loan: ``outstanding`` and ``due_amount`` lowered by the difference (raised back on a
  reversal), never below zero — the bank's next sync brings the bank's figures;
- promises: FIFO allocation (kept / partially kept), or undone on a reversal, reopening or
  breaking promises and giving them what other payments have left over
  (portal.cases.promises); then what is left to the active payment plan's instalments, the
  same way (portal.cases.plans);
- the case: totals recomputed from the customer's products (same rule as
  portal.cases.queue.recompute_case_totals, for one customer), the follow-up closed when the
  customer owes nothing overdue any more, the priority recomputed — the payment's customer's
  case, and the loan's owner's too when a bank sync has moved the loan to another customer
  since the payment was made (integrations/owner_moves.py).

Per event (once each): a system action on the case timeline and a notification to the case's
agent and to the agents whose promises the payment touched.

While ops have paused the PAYMENTS integration (integrations.control), notifications are still
stored and acknowledged, but these subscribers hold their effects; resuming runs
``release_held_payments`` (a job), which applies every held payment's events once.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from integrations import control
from integrations.control import is_paused
from portal import clock
from portal.cases.plans import allocate_to_plan, undo_plan_allocations
from portal.cases.promises import allocate_payment, undo_allocations
from portal.cases.queue import recompute_case_totals, recompute_priorities
from portal.events import subscriber
from portal.models import Action, Case, Customer, Event, Loan, Payment, Promise, PromiseAllocation
from portal.notifications.messages import N_, Message, code, counted, message, money
from portal.notifications.operations import notify
from portal.notifications.subscribers import case_link
from portal.queues import enqueue
from portal.schedules import Jobs

log = logging.getLogger(__name__)

ZERO = Decimal(0)
INTEGRATION = "PAYMENTS"


def target_amount(payment: Payment) -> Decimal:
    """How much of ``payment`` should count in the loan's balance and the promises."""
    if payment.status == "received" and payment.original_reference is None:
        return Decimal(payment.amount)
    return ZERO


def sync_payment(session: Session, payment_id: int) -> Decimal:
    """Bring the loan, the promises and the case in step with the payment's state; returns the
    amount applied now (negative when undone, 0 when nothing changed). No commit."""
    payment = session.get(Payment, payment_id, with_for_update=True, populate_existing=True)
    if payment is None:
        return ZERO
    delta = target_amount(payment) - Decimal(payment.applied_amount or 0)
    if delta == 0:
        return ZERO
    loan = session.scalar(select(Loan).where(Loan.account_number == payment.account_number)
                          .with_for_update())
    if loan is not None:
        loan.outstanding = max(ZERO, Decimal(loan.outstanding or 0) - delta)
        _apply_to_due(session, loan, payment, delta)
    payment.applied_amount = Decimal(payment.applied_amount or 0) + delta
    payment.effects_at = clock.now()
    session.flush()
    if delta > 0:  # promises first, the rest to the active plan's instalments (cases/plans.py)
        allocate_payment(session, payment)
        allocate_to_plan(session, payment)
    else:
        undo_allocations(session, payment, reallocate=True)
        undo_plan_allocations(session, payment, reallocate=True)
    update_case(session, payment.cif)  # the customer it was paid for (its promises)
    if loan is not None and loan.cif != payment.cif:
        update_case(session, loan.cif)  # a bank sync moved the loan since: its owner now
    return delta


def _apply_to_due(session: Session, loan: Loan, payment: Payment, delta: Decimal) -> None:
    """The loan's due amount after ``payment`` counts ``delta`` more (less, when undone): the
    bank's due less the payments standing since the loan's last sync, never below zero — the
    same whatever order payments and reversals arrive in. ``due_applied`` of those payments
    adds up to what they took off the bank's figure (their sum is what matters), so the bank's
    figure is ``due_amount`` + that sum."""
    query = select(func.coalesce(func.sum(Payment.due_applied), 0),
                   func.coalesce(func.sum(Payment.applied_amount), 0)).where(
        Payment.account_number == loan.account_number, Payment.id != payment.id)
    if loan.last_synced_at is not None:  # the bank's figure includes what came before
        query = query.where(Payment.effects_at > loan.last_synced_at)
    others_taken, others_applied = session.execute(query).one()
    taken = Decimal(others_taken) + Decimal(payment.due_applied or 0)
    bank_due = Decimal(loan.due_amount or 0) + taken
    standing = Decimal(others_applied) + Decimal(payment.applied_amount or 0) + delta
    due = max(ZERO, bank_due - standing)
    payment.due_applied = Decimal(payment.due_applied or 0) + (bank_due - due) - taken
    loan.due_amount = due


# -- the case -----------------------------------------------------------------------------------


def update_case(session: Session, cif: str) -> Case | None:
    """Case totals of ``cif`` from its products; its follow-up closed when nothing is overdue
    any more; priority recomputed. No commit."""
    case = session.scalar(select(Case).where(Case.cif == cif).with_for_update())
    if case is None:
        return None
    session.flush()
    recompute_case_totals(session, [case.id])  # the one definition, for this case only
    session.refresh(case)
    if case.total_overdue == 0 and case.next_action_at is not None:
        case.next_action_at = None  # no longer overdue: the follow-up is closed
    session.flush()
    recompute_priorities(session, [case.id])
    return case


# -- subscribers --------------------------------------------------------------------------------


def _promise_agents(session: Session, payment_id: int) -> tuple[set[int], list[Promise]]:
    promises = list(session.scalars(
        select(Promise).join(PromiseAllocation, PromiseAllocation.promise_id == Promise.id)
        .where(PromiseAllocation.payment_id == payment_id)
    ))
    return {p.agent_id for p in promises if p.agent_id}, promises


def _record(session: Session, event, payment: Payment, result: str, body: Message,
            kind: str, title: Message, extra_agents: set[int] = frozenset()) -> None:
    """The system action on the timeline (its note in English, as written) and the agents'
    notifications (in each reader's language)."""
    now = clock.now()
    notes = body.english()
    session.add(Action(cif=payment.cif, account_number=payment.account_number, type="SYSTEM",
                       subtype="PAYMENT", result=result, at=now, notes=notes, source="system"))
    case = session.execute(select(Case.id, Case.assigned_agent_id)
                           .where(Case.cif == payment.cif)).first()
    if case is not None:
        session.execute(update(Case).where(Case.id == case.id).values(last_action_at=now))
    agents = set(extra_agents)
    if case is not None and case.assigned_agent_id:
        agents.add(case.assigned_agent_id)

    for agent_id in sorted(agents):
        notify(session, agent_id, kind, title, body, link=case_link(payment.cif),
               cif=payment.cif, event_id=str(event.id))


def _customer_name(session: Session, cif: str) -> str:
    return session.scalar(select(Customer.name).where(Customer.cif == cif)) or cif


def _held(event) -> bool:
    """True (and logged) while ops have paused payments: the event's effects wait."""

    if is_paused(INTEGRATION):
        log.info("payment effects held: payments are paused",
                 extra={"event_id": str(event.id), "event_type": event.type})
        return True
    return False


def release_held_payments(session: Session, limit: int = 10_000) -> int:
    """Apply the events of payments whose effects were held while payments were paused (their
    applied amount differs from what their state says), oldest first; returns how many events
    were applied. Idempotent: an applied payment has nothing left to apply. No commit."""

    applied = 0
    events = session.scalars(
        select(Event).where(Event.type.in_(("PAYMENT_RECEIVED", "PAYMENT_REVERSED")))
        .where(Event.aggregate_id.in_(
            select(Payment.reference_number).where(
                Payment.applied_amount != case(
                    ((Payment.status == "received") & Payment.original_reference.is_(None),
                     Payment.amount), else_=0))))
        .order_by(Event.occurred_at, Event.id).limit(limit)
    ).all()
    for event in events:
        payment = session.get(Payment, event.payload.get("payment_id") or 0)
        if payment is None or target_amount(payment) == Decimal(payment.applied_amount or 0):
            continue  # an earlier event of the same payment brought it in step
        HANDLERS[event.type](event, session, release=True)
        applied += 1
    return applied


@subscriber("PAYMENT_RECEIVED", name="payments.received")
def payment_received(event, session: Session, release: bool = False) -> None:
    """Apply a received payment: loan balance, promises, case; timeline and agents told."""
    if not release and _held(event):
        return
    payment = session.get(Payment, event.payload["payment_id"])
    if payment is None:
        return
    sync_payment(session, payment.id)
    agents, promises = _promise_agents(session, payment.id)
    amount = money(payment.amount, payment.currency)
    if payment.channel:
        notes = message(N_("Payment of %(amount)s received on loan %(loan)s via %(channel)s "
                           "(ref %(ref)s)."), amount=amount, loan=payment.account_number,
                        channel=code(payment.channel, "channel"), ref=payment.reference_number)
    else:
        notes = message(N_("Payment of %(amount)s received on loan %(loan)s (ref %(ref)s)."),
                        amount=amount, loan=payment.account_number,
                        ref=payment.reference_number)
    kept = [p for p in promises if p.status == "kept"]
    partial = [p for p in promises if p.status == "partially_kept"]
    if kept:
        notes = _then(notes, counted(N_("Promise kept."), N_("Promises kept."), len(kept)))
    elif partial:
        notes = _then(notes, message(N_("Promise partially kept.")))
    if payment.status == "reversed":
        notes = _then(notes, message(N_("It has since been reversed.")))
    _record(session, event, payment, "RECEIVED", notes, "payment_received",
            message(N_("Payment received: %(name)s · %(amount)s"),
                    name=_customer_name(session, payment.cif), amount=amount), agents)


@subscriber("PAYMENT_REVERSED", name="payments.reversed")
def payment_reversed(event, session: Session, release: bool = False) -> None:
    """Undo a reversed payment's effects (balance, promises reopened or broken)."""
    if not release and _held(event):
        return
    payment = session.get(Payment, event.payload["payment_id"])
    if payment is None:
        return
    agents, _ = _promise_agents(session, payment.id)
    sync_payment(session, payment.id)
    amount = money(payment.amount, payment.currency)
    reversal = event.payload.get("reversal_reference")
    reason = event.payload.get("reason")
    words = {"ref": payment.reference_number, "amount": amount, "loan": payment.account_number,
             "reversal": reversal, "reason": reason}
    if reversal and reason:
        notes = message(N_("Payment %(ref)s of %(amount)s on loan %(loan)s was reversed "
                           "(%(reversal)s): %(reason)s."), **words)
    elif reversal:
        notes = message(N_("Payment %(ref)s of %(amount)s on loan %(loan)s was reversed "
                           "(%(reversal)s)."), **words)
    elif reason:
        notes = message(N_("Payment %(ref)s of %(amount)s on loan %(loan)s was reversed: "
                           "%(reason)s."), **words)
    else:
        notes = message(N_("Payment %(ref)s of %(amount)s on loan %(loan)s was reversed."),
                        **words)
    _record(session, event, payment, "REVERSED", notes, "payment_reversed",
            message(N_("Payment reversed: %(name)s · %(amount)s"),
                    name=_customer_name(session, payment.cif), amount=amount), agents)


@subscriber("PAYMENT_FAILED", name="payments.failed")
def payment_failed(event, session: Session) -> None:
    """A failed payment attempt goes on the timeline (nothing else changes)."""
    payment = session.get(Payment, event.payload.get("payment_id") or 0)
    if payment is None:
        return
    amount = money(payment.amount, payment.currency)
    reason = payment.failure_reason or event.payload.get("reason")
    words = {"amount": amount, "loan": payment.account_number, "ref": payment.reference_number}
    if reason:
        notes = message(N_("Payment attempt of %(amount)s on loan %(loan)s failed: %(reason)s "
                           "(ref %(ref)s)."), reason=reason, **words)
    else:
        notes = message(N_("Payment attempt of %(amount)s on loan %(loan)s failed: no reason "
                           "given (ref %(ref)s)."), **words)
    _record(session, event, payment, "FAILED", notes, "info",
            message(N_("Payment failed: %(name)s · %(amount)s"),
                    name=_customer_name(session, payment.cif), amount=amount))


def _then(first: Message, more: Message) -> Message:
    """Two sentences, one after the other."""
    return message(N_("%(first)s %(more)s"), first=first, more=more)


HANDLERS = {"PAYMENT_RECEIVED": payment_received, "PAYMENT_REVERSED": payment_reversed}


def _release_on_resume(integration: str, user) -> None:
    """Resume hook: queue the job that applies what was held while paused."""

    enqueue("events", Jobs.RELEASE_HELD_PAYMENTS)


def register_resume_hook() -> None:
    """Apply what was held once ops resume payments (called by create_app)."""
    control.register_resume_hook(INTEGRATION, _release_on_resume)
