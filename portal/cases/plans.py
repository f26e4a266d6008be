"""Payment plans (arrangements): an agent records N instalments, with dates and amounts, that
together cover what the customer owes; each instalment is tracked like a promise and paid by
the same FIFO allocation of payments. Nothing here commits: the caller commits.

What a plan covers: the customer's total overdue — ``promises.customer_total_due``, the same
figure as the case header (``queue.collectible_products``) — exactly: the instalments add up to
it, no less and no more. Limits: the admin's ``PlanRules`` (portal/cases/contact_rules.py):
number of instalments, the first one within so many days, the last within the plan length,
the smallest instalment. Dates are business dates of the bank (``BANK_TIMEZONE``), from today,
strictly in order.

Plans and promises (one allocation rule). A payment counts first towards the customer's open
promises (portal/cases/promises.py, its order), then what is left towards the instalments of
the customer's active plan, earliest instalment first (FIFO), whatever loan it was paid on: a
plan is made for the whole customer. In practice only one of the two is open at a time: a new
plan cancels the customer's open promises (pending or partially kept: status ``cancelled``,
audited, a line on the timeline; money already allocated to them stays theirs), and while a
plan is active a new promise is refused (cancel the plan first).

Instalment statuses: ``pending`` (nothing paid), ``part`` (partly paid, not yet due), ``kept``
(paid in full by a payment made on or before its date), ``missed`` (its date passed without
full payment: the judging job, or paid in full but late). Money keeps being allocated to a
missed instalment of an active plan (the customer catching up), earliest first.

Plan statuses: ``active``; ``completed`` when every instalment is paid in full (at the
allocation); ``broken`` when ``break_after_missed`` instalments are missed (the admin's setting
when the plan was made, default 1) — judged by the hourly job that breaks promises
(workers/jobs/promises.py), by the bank's business date; ``cancelled`` by an agent, with a
reason. Broken, completed and cancelled plans take no more money. A reversal takes the money
back from the instalments (reopened, or missed when their date has passed; a completed plan is
active again) and gives them what other payments of the customer have left over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from portal import audit, clock
from portal.cases.contact_rules import PlanRules, get_plan_rules
from portal.cases.promises import (
    OPEN_STATUSES,
    _requeue_case,
    allocated,
    customer_total_due,
    leftover_payments,
)
from portal.i18n import default_language, format_date
from portal.models import (
    Action,
    Case,
    Payment,
    PaymentPlan,
    PlanAllocation,
    PlanInstalment,
    Promise,
    User,
)
from portal.money import bank_currency, format_money, parse_money

MAX_AMOUNT = Decimal("9999999999999999.99")  # Numeric(18, 2)
REASON_MAX = 1000
ROWS_MAX = 60  # rows a form may submit at all (the admin's maximum is checked below)
OPEN_INSTALMENTS = ("pending", "part", "missed")


class PlanValidationError(ValueError):
    """``errors``: field → message. Fields: ``instalments`` (the plan as a whole),
    ``due_date-N`` / ``amount-N`` (instalment N, from 1), ``reason``."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class InstalmentInput:
    due_date: str | None
    amount: str | None


def _parse_date(raw: str | None) -> date | None:
    return date.fromisoformat(raw.strip()) if raw and raw.strip() else None


def active_plan(session: Session, cif: str, *, lock: bool = False) -> PaymentPlan | None:
    query = select(PaymentPlan).where(PaymentPlan.cif == cif, PaymentPlan.status == "active")
    return session.scalar(query.with_for_update() if lock else query)


def case_plans(session: Session, cif: str) -> list[PaymentPlan]:
    """The customer's plans, the active one first, then the latest."""
    return list(session.scalars(
        select(PaymentPlan).where(PaymentPlan.cif == cif)
        .options(selectinload(PaymentPlan.instalments), selectinload(PaymentPlan.agent))
        .order_by(PaymentPlan.status != "active", PaymentPlan.id.desc())))


def suggest(overdue: Decimal, count: int, today: date, rules: PlanRules) -> list[InstalmentInput]:
    """A first draft for the form: ``count`` instalments, the first a week from today (or
    sooner, within the limit), then evenly spaced (at most a month apart) within the plan
    length; equal whole amounts, the remainder on the last."""
    count = max(1, count)
    first = min(7, rules.first_within_days)
    step = 30 if count == 1 else min(30, max(1, (rules.max_days - first) // (count - 1)))
    share = (overdue / count).quantize(Decimal(1), rounding=ROUND_DOWN) if overdue > 0 \
        else Decimal(0)
    rows = []
    for i in range(count):
        amount = share if i < count - 1 else overdue - share * (count - 1)
        rows.append(InstalmentInput((today + timedelta(days=first + i * step)).isoformat(),
                                    str(int(amount)) if amount == amount.to_integral_value()
                                    else str(amount)))
    return rows


def validate_plan(session: Session, *, cif: str, rows: list[InstalmentInput],
                  today: date) -> tuple[dict[str, str], list[tuple[date, Decimal]], Decimal]:
    """Field errors of a plan (empty when valid), its instalments and the overdue it covers."""
    rules = get_plan_rules(session)
    currency = bank_currency()
    overdue = customer_total_due(session, cif)
    errors: dict[str, str] = {}
    parsed: list[tuple[date | None, Decimal | None]] = []
    count = len(rows)
    if count > ROWS_MAX or not rules.min_instalments <= count <= rules.max_instalments:
        errors["instalments"] = _(
            "A plan has from %(min)d to %(max)d instalments (this one has %(num)d).",
            min=rules.min_instalments, max=rules.max_instalments, num=count)
        return errors, [], overdue
    first_latest = today + timedelta(days=rules.first_within_days)
    last_latest = today + timedelta(days=rules.max_days)
    previous: date | None = None
    for n, row in enumerate(rows, start=1):
        key = f"due_date-{n}"
        try:
            due = _parse_date(row.due_date)
        except ValueError:
            due = None
            errors[key] = _("Enter a date as YYYY-MM-DD.")
        if key in errors:
            pass
        elif due is None:
            errors[key] = _("Enter the date of this instalment.")
        elif due < today:
            errors[key] = _("The date is in the past: it must be %(date)s or later.",
                            date=format_date(today))
        elif previous is not None and due <= previous:
            errors[key] = _("Each instalment must fall after the one before (%(date)s).",
                            date=format_date(previous))
        elif n == 1 and due > first_latest:
            errors[key] = ngettext(
                "The first instalment must be within %(num)d day (by %(date)s).",
                "The first instalment must be within %(num)d days (by %(date)s).",
                rules.first_within_days, date=format_date(first_latest))
        elif due > last_latest:
            errors[key] = ngettext(
                "A plan can last at most %(num)d day (until %(date)s).",
                "A plan can last at most %(num)d days (until %(date)s).",
                rules.max_days, date=format_date(last_latest))
        if due is not None and key not in errors:
            previous = due

        key = f"amount-{n}"
        value = None
        try:
            value = parse_money(row.amount, currency)
        except ValueError as exc:
            errors[key] = str(exc)
        if key in errors:
            pass
        elif value is None:
            errors[key] = _("Enter the amount of this instalment.")
        elif value <= 0:
            errors[key] = _("The amount must be greater than zero.")
        elif value > MAX_AMOUNT:
            errors[key] = _("The amount is too large.")
        elif value < rules.min_amount:
            errors[key] = _("An instalment is at least %(amount)s.",
                            amount=format_money(rules.min_amount, currency))
        parsed.append((due, value if key not in errors else None))
    amounts = [a for _d, a in parsed]
    if overdue <= 0:
        errors["instalments"] = _("The customer owes nothing overdue: there is nothing to plan.")
    elif all(a is not None for a in amounts):
        total = sum(amounts, Decimal(0))
        if total < overdue:
            errors["instalments"] = _(
                "The instalments add up to %(total)s: %(missing)s short of the overdue amount "
                "(%(overdue)s).", total=format_money(total, currency),
                missing=format_money(overdue - total, currency),
                overdue=format_money(overdue, currency))
        elif total > overdue:
            errors["instalments"] = _(
                "The instalments add up to %(total)s: %(extra)s more than the overdue amount "
                "(%(overdue)s).", total=format_money(total, currency),
                extra=format_money(total - overdue, currency),
                overdue=format_money(overdue, currency))
    return errors, [(d, a) for d, a in parsed], overdue  # type: ignore[misc]


def _timeline(session: Session, cif: str, actor: User | None, result: str, notes: str,
              now: datetime) -> None:
    session.add(Action(cif=cif, agent_id=actor.id if actor else None, type="SYSTEM",
                       subtype="PLAN", result=result, at=now, source="system", notes=notes))


def _plan_words(plan: PaymentPlan) -> dict:
    return {"num": len(plan.instalments), "total": format_money(plan.total, plan.currency)}


def snapshot(plan: PaymentPlan) -> dict:
    return {"cif": plan.cif, "status": plan.status, "total": format(plan.total, "f"),
            "currency": plan.currency, "break_after_missed": plan.break_after_missed,
            "instalments": [{"seq": i.seq, "due_date": i.due_date.isoformat(),
                             "amount": format(i.amount, "f"), "status": i.status,
                             "paid_amount": format(i.paid_amount, "f")}
                            for i in plan.instalments]}


def create_plan(session: Session, actor: User, *, cif: str, rows: list[InstalmentInput],
                reason: str | None, today: date | None = None) -> PaymentPlan:
    """Validate and add an active plan; the customer's open promises are cancelled (see the
    module doc); audited, on the timeline. Raises ``PlanValidationError``. No commit."""
    today = today or clock.bank_today()
    reason = (reason or "").strip() or None
    errors, parsed, overdue = validate_plan(session, cif=cif, rows=rows, today=today)
    if reason is not None and len(reason) > REASON_MAX:
        errors["reason"] = _("At most %(max)d characters (this has %(num)d).", max=REASON_MAX,
                             num=len(reason))
    case = session.scalar(select(Case).where(Case.cif == cif).with_for_update())
    if case is None:
        errors["instalments"] = _("This customer has no collection case.")
    elif active_plan(session, cif, lock=True) is not None:
        errors["instalments"] = _("This customer already has an active plan: cancel it before "
                                  "recording a new one.")
    if errors:
        raise PlanValidationError(errors)
    now = clock.now()
    rules = get_plan_rules(session)
    plan = PaymentPlan(cif=cif, agent_id=actor.id, status="active", total=overdue,
                       currency=bank_currency(), overdue_at_start=overdue,
                       break_after_missed=rules.break_after_missed, reason=reason)
    plan.instalments = [PlanInstalment(seq=n, due_date=d, amount=a, paid_amount=Decimal(0),
                                       status="pending")
                        for n, (d, a) in enumerate(parsed, start=1)]
    try:
        with session.begin_nested():  # another agent's plan may have just been saved
            session.add(plan)
            session.flush()
    except IntegrityError as exc:
        raise PlanValidationError({"instalments": _(
            "Another plan was just saved for this customer: reload the case.")}) from exc
    audit.record(session, actor, "plan.create", "payment_plan", plan.id, after=snapshot(plan))
    cancelled = _cancel_open_promises(session, actor, cif, plan, now)
    with force_locale(default_language()):  # the timeline: the bank's language
        notes = ngettext("Payment plan of %(num)d instalment, %(total)s.",
                         "Payment plan of %(num)d instalments, %(total)s.",
                         len(plan.instalments), total=_plan_words(plan)["total"])
        if cancelled:
            notes += " " + ngettext("%(num)d open promise cancelled: the plan replaces it.",
                                    "%(num)d open promises cancelled: the plan replaces them.",
                                    cancelled)
    _timeline(session, cif, actor, "CREATED", notes, now)
    session.flush()
    return plan


def _cancel_open_promises(session: Session, actor: User, cif: str, plan: PaymentPlan,
                          now: datetime) -> int:
    promises = session.scalars(select(Promise).where(
        Promise.cif == cif, Promise.status.in_(OPEN_STATUSES)).with_for_update()).all()
    for promise in promises:
        before = promise.status
        promise.status, promise.resolved_at = "cancelled", now
        audit.record(session, actor, "promise.cancel", "promise", promise.id,
                     before={"status": before},
                     after={"status": "cancelled", "payment_plan_id": plan.id})
    return len(promises)


def cancel_plan(session: Session, actor: User, plan: PaymentPlan, reason: str | None) -> None:
    """An agent cancels an active plan, with a reason; audited. No commit."""
    reason = (reason or "").strip()
    if plan.status != "active":
        raise PlanValidationError({"cancel_reason": _("Only an active plan can be cancelled.")})
    if not reason:
        raise PlanValidationError({"cancel_reason": _("Say why the plan is cancelled.")})
    if len(reason) > REASON_MAX:
        raise PlanValidationError({"cancel_reason": _(
            "At most %(max)d characters (this has %(num)d).", max=REASON_MAX, num=len(reason))})
    now = clock.now()
    plan.status, plan.resolved_at = "cancelled", now
    plan.cancelled_by_id, plan.cancel_reason = actor.id, reason
    audit.record(session, actor, "plan.cancel", "payment_plan", plan.id,
                 before={"status": "active"}, after={"status": "cancelled", "reason": reason})
    with force_locale(default_language()):
        notes = _("Payment plan cancelled: %(reason)s", reason=reason)
    _timeline(session, plan.cif, actor, "CANCELLED", notes, now)
    session.flush()


# -- allocation ----------------------------------------------------------------------------------


def allocate_to_plan(session: Session, payment: Payment, *,
                     top_up: bool = False) -> list[PlanAllocation]:
    """Allocate what ``payment`` has left after the promises to the customer's active plan,
    earliest instalment first. A payment is allocated once (``top_up``: what it still has,
    after a reversal reopened instalments). No commit."""
    existing = list(session.scalars(select(PlanAllocation)
                                    .where(PlanAllocation.payment_id == payment.id)))
    if (existing and not top_up) or payment.status != "received" \
            or payment.original_reference is not None:
        return []
    plan = active_plan(session, payment.cif, lock=True)
    if plan is None or plan.currency != payment.currency:
        return []
    remaining = Decimal(payment.amount) - allocated(session, payment.id)
    if remaining <= 0:
        return []
    active = {a.instalment_id: a for a in existing if a.reversed_at is None}
    undone = {a.instalment_id for a in existing if a.reversed_at is not None}
    now = clock.now()
    paid_on = clock.bank_today(payment.paid_at)
    made: list[PlanAllocation] = []
    instalments = session.scalars(
        select(PlanInstalment).where(PlanInstalment.plan_id == plan.id,
                                     PlanInstalment.paid_amount < PlanInstalment.amount)
        .order_by(PlanInstalment.due_date, PlanInstalment.seq).with_for_update()).all()
    for instalment in instalments:
        if remaining <= 0:
            break
        if instalment.id in undone:
            continue
        take = min(instalment.amount - instalment.paid_amount, remaining)
        remaining -= take
        allocation = active.get(instalment.id)
        if allocation is not None:
            allocation.amount += take
        else:
            allocation = PlanAllocation(instalment_id=instalment.id, payment_id=payment.id,
                                        amount=take, allocated_at=now)
            session.add(allocation)
        made.append(allocation)
        instalment.paid_amount += take
        if instalment.status == "missed":
            if instalment.paid_amount >= instalment.amount:
                instalment.resolved_at = now  # paid, late: it stays missed
        elif instalment.paid_amount >= instalment.amount:
            instalment.resolved_at = now
            instalment.status = "kept" if paid_on <= instalment.due_date else "missed"
        else:
            instalment.status = "part" if paid_on <= instalment.due_date else "missed"
            if instalment.status == "missed":
                instalment.resolved_at = now
    session.flush()
    if made:
        _settle(session, plan, now)
    return made


def _settle(session: Session, plan: PaymentPlan, now: datetime) -> None:
    """A plan whose instalments are all paid in full is completed (and a completed one that a
    reversal left short is active again)."""
    session.refresh(plan, attribute_names=["instalments"])
    paid = all(i.paid_amount >= i.amount for i in plan.instalments)
    if plan.status == "active" and paid:
        plan.status, plan.resolved_at = "completed", now
        audit.record(session, "system", "plan.complete", "payment_plan", plan.id,
                     before={"status": "active"}, after={"status": "completed"})
        with force_locale(default_language()):
            notes = _("Payment plan completed: every instalment paid.")
        _timeline(session, plan.cif, None, "COMPLETED", notes, now)
    elif plan.status == "completed" and not paid:
        if active_plan(session, plan.cif) is not None:
            return  # a newer plan is active: this one stays as it was
        plan.status, plan.resolved_at = "active", None
        audit.record(session, "system", "plan.reopen", "payment_plan", plan.id,
                     before={"status": "completed"}, after={"status": "active"})
    session.flush()


def undo_plan_allocations(session: Session, payment: Payment, today: date | None = None, *,
                          reallocate: bool = False) -> list[PlanAllocation]:
    """Take back a reversed payment's allocations: each instalment loses the amount and is
    pending or part again, or missed when its date has passed; a completed plan is active
    again. ``reallocate``: then top up from the customer's other payments' leftovers. No
    commit."""
    today = today or clock.bank_today()
    now = clock.now()
    allocations = list(session.scalars(
        select(PlanAllocation).where(PlanAllocation.payment_id == payment.id,
                                     PlanAllocation.reversed_at.is_(None))
        .order_by(PlanAllocation.id).with_for_update()))
    plans: dict[int, PaymentPlan] = {}
    for allocation in allocations:
        instalment = session.get(PlanInstalment, allocation.instalment_id, with_for_update=True)
        allocation.reversed_at = now
        instalment.paid_amount = max(Decimal(0), instalment.paid_amount - allocation.amount)
        if instalment.paid_amount < instalment.amount and instalment.status != "missed":
            if instalment.due_date < today:
                instalment.status, instalment.resolved_at = "missed", now
            else:
                instalment.status = "part" if instalment.paid_amount > 0 else "pending"
                instalment.resolved_at = None
        elif instalment.status == "missed" and instalment.paid_amount < instalment.amount:
            instalment.resolved_at = None
        plans[instalment.plan_id] = instalment.plan
    session.flush()
    for plan in plans.values():
        _settle(session, plan, now)
    if reallocate and allocations:
        for other in leftover_payments(session, payment.cif, payment.id):
            allocate_to_plan(session, other, top_up=True)
    return allocations


# -- the judging job -----------------------------------------------------------------------------


def judge_plans(session: Session, today: date) -> dict[str, int]:
    """Instalments of active plans whose date is before ``today`` (bank zone) and that are not
    paid in full are missed; a plan with ``break_after_missed`` missed instalments is broken
    (audited, on the timeline, the case back at the top of its agent's queue). Returns the
    counts. Idempotent. No commit."""
    now = clock.now()
    late = session.scalars(
        select(PlanInstalment).join(PaymentPlan, PaymentPlan.id == PlanInstalment.plan_id)
        .where(PaymentPlan.status == "active", PlanInstalment.status.in_(("pending", "part")),
               PlanInstalment.due_date < today,
               PlanInstalment.paid_amount < PlanInstalment.amount)
        .order_by(PlanInstalment.plan_id, PlanInstalment.seq)
        .with_for_update(of=PlanInstalment, skip_locked=True)).all()
    for instalment in late:
        before = instalment.status
        instalment.status, instalment.resolved_at = "missed", now
        audit.record(session, "system", "plan.instalment_missed", "payment_plan",
                     instalment.plan_id, before={"seq": instalment.seq, "status": before},
                     after={"seq": instalment.seq, "status": "missed"})
    session.flush()
    missed = (select(func.count(PlanInstalment.id))
              .where(PlanInstalment.plan_id == PaymentPlan.id,
                     PlanInstalment.status == "missed").correlate(PaymentPlan).scalar_subquery())
    breaking = session.scalars(
        select(PaymentPlan).where(PaymentPlan.status == "active",
                                  missed >= PaymentPlan.break_after_missed)
        .order_by(PaymentPlan.id).with_for_update(skip_locked=True)).all()
    for plan in breaking:
        plan.status, plan.resolved_at = "broken", now
        audit.record(session, "system", "plan.broken", "payment_plan", plan.id,
                     before={"status": "active"}, after={"status": "broken"})
        count = sum(1 for i in plan.instalments if i.status == "missed")
        with force_locale(default_language()):
            notes = ngettext("Payment plan broken: %(num)d instalment missed.",
                             "Payment plan broken: %(num)d instalments missed.", count)
        _timeline(session, plan.cif, None, "BROKEN", notes, now)
        _requeue_case(session, plan.cif, now)
    session.flush()
    return {"missed": len(late), "broken": len(breaking)}


# -- the truths (flask check invariants) ---------------------------------------------------------


def violations(session: Session, now: datetime) -> list[dict]:
    """Instalments add up to the plan's total; each instalment's paid amount is what its
    standing allocations give it; statuses follow the money and the dates; one active plan per
    customer; no payment gives promises and instalments together more than it is."""
    from sqlalchemy import text

    today = clock.bank_today(now)
    rows = session.execute(text("""
        WITH inst AS (
            SELECT i.*, coalesce(a.given, 0) AS given
            FROM plan_instalments i
            LEFT JOIN (SELECT instalment_id, sum(amount) AS given FROM plan_allocations
                       WHERE reversed_at IS NULL GROUP BY instalment_id) a
                   ON a.instalment_id = i.id)
        SELECT 'instalments do not add up to the total' AS problem, p.id AS plan_id, p.cif,
               NULL::int AS seq
        FROM payment_plans p LEFT JOIN inst ON inst.plan_id = p.id
        GROUP BY p.id HAVING coalesce(sum(inst.amount), 0) <> p.total
        UNION ALL
        SELECT 'paid amount is not the allocations', i.plan_id, p.cif, i.seq
        FROM inst i JOIN payment_plans p ON p.id = i.plan_id WHERE i.paid_amount <> i.given
        UNION ALL
        SELECT 'instalment status does not follow its payments', i.plan_id, p.cif, i.seq
        FROM inst i JOIN payment_plans p ON p.id = i.plan_id
        WHERE (i.status = 'kept' AND i.paid_amount < i.amount)
           OR (i.status = 'pending' AND i.paid_amount > 0)
           OR (i.status IN ('pending', 'part') AND i.paid_amount >= i.amount)
           OR (p.status = 'active' AND i.status IN ('pending', 'part')
               AND i.due_date < :overdue)
        UNION ALL
        SELECT 'plan status does not follow its instalments', p.id, p.cif, NULL
        FROM payment_plans p JOIN inst i ON i.plan_id = p.id
        GROUP BY p.id
        HAVING (p.status = 'completed' AND bool_or(i.paid_amount < i.amount))
            OR (p.status = 'active' AND bool_and(i.paid_amount >= i.amount))
            OR (p.status = 'broken'
                AND count(*) FILTER (WHERE i.status = 'missed') < p.break_after_missed)
        UNION ALL
        SELECT 'two active plans', min(id), cif, NULL FROM payment_plans
        WHERE status = 'active' GROUP BY cif HAVING count(*) > 1
        UNION ALL
        SELECT 'payment allocated beyond its amount', NULL, pay.cif, NULL
        FROM payments pay
        JOIN (SELECT payment_id, sum(amount) AS given FROM (
                SELECT payment_id, amount FROM plan_allocations WHERE reversed_at IS NULL
                UNION ALL
                SELECT payment_id, amount FROM promise_allocations WHERE reversed_at IS NULL
              ) g GROUP BY payment_id) t ON t.payment_id = pay.id
        WHERE pay.id IN (SELECT payment_id FROM plan_allocations WHERE reversed_at IS NULL)
          AND (t.given > pay.amount OR pay.status <> 'received')
        ORDER BY 2, 4"""), {"overdue": today - timedelta(days=1)})
    return [dict(row._mapping) for row in rows]
