"""The work queue: THE priority of a case, the agent's queue with filters and counts, and
"Next case" (hand the agent the top case and lock it so no other agent gets it).

Priority — ``compute_priority`` is the one definition; ``recompute_priorities`` stores it in
``cases.priority`` (the queue orders by that column, so reading the queue stays one indexed
query). Points, higher first:

======================================  ============================================
DPD bucket (Case.max_dpd)               current 0 · 1-30 100 · 31-60 200 · 61-90 300 · 90+ 400
amount overdue (Case.total_overdue)     30 × log10(1 + overdue / 1,000,000), at most 90
                                        (1M ≈ 9 · 10M ≈ 31 · 100M ≈ 60 · 1B ≈ 90): it orders
                                        cases within a bucket, never lifts one over a bucket
broken promises, last 30 days           150 each, at most 300
a pending promise due today (or past)   250
follow-up reached (next_action_at ≤ now) 120
days since the last right-party contact 5 a day, at most 150; never contacted: 150
today's strategy call step              its priority weight (cases.strategy_weight, set by
                                        the strategies' daily run, portal.strategies.run)
======================================  ============================================

So a case with a promise due today or a fresh broken promise jumps a whole bucket, a follow-up
that is due beats a slightly larger amount, and a long-silent case slowly rises.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from flask import current_app, has_app_context
from redis.exceptions import RedisError
from sqlalchemy import (
    String,
    and_,
    bindparam,
    distinct,
    exists,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from portal import audit, clock
from portal.cases import search
from portal.extensions import get_redis
from portal.models import (
    Card,
    Case,
    CaseAssignment,
    Customer,
    Loan,
    PaymentPlan,
    Placement,
    Promise,
    User,
)
from portal.models.enums import BUCKETS, CASE_STATUSES, bucket_for_dpd
from portal.models.plans import PLAN_STATUSES

BUCKET_POINTS = {"current": 0, "1-30": 100, "31-60": 200, "61-90": 300, "90+": 400}
OVERDUE_POINTS_PER_DECADE = 30
OVERDUE_UNIT = Decimal(1_000_000)
OVERDUE_POINTS_MAX = 90
BROKEN_PROMISE_POINTS = 150
BROKEN_PROMISE_POINTS_MAX = 300
BROKEN_PROMISE_WINDOW_DAYS = 30
PROMISE_DUE_POINTS = 250
FOLLOW_UP_DUE_POINTS = 120
SILENCE_POINTS_PER_DAY = 5
SILENCE_POINTS_MAX = 150

CARD_PRODUCT = "CARD"
DEFAULT_LOCK_MINUTES = 10


@dataclass(frozen=True)
class PriorityInputs:
    max_dpd: int
    total_overdue: Decimal
    broken_promises_30d: int = 0
    promise_due: bool = False
    next_action_at: datetime | None = None
    last_contact_at: datetime | None = None
    strategy_weight: int = 0


def compute_priority(inputs: PriorityInputs, now: datetime) -> int:
    """The priority of a case (see the module docstring for the weights)."""
    points = BUCKET_POINTS[bucket_for_dpd(max(inputs.max_dpd or 0, 0))]
    overdue = max(Decimal(inputs.total_overdue or 0), Decimal(0))
    points += min(OVERDUE_POINTS_MAX,
                  int(OVERDUE_POINTS_PER_DECADE * math.log10(1 + float(overdue / OVERDUE_UNIT))))
    points += min(BROKEN_PROMISE_POINTS_MAX, BROKEN_PROMISE_POINTS * inputs.broken_promises_30d)
    if inputs.promise_due:
        points += PROMISE_DUE_POINTS
    if inputs.next_action_at is not None and inputs.next_action_at <= now:
        points += FOLLOW_UP_DUE_POINTS
    if inputs.last_contact_at is None:
        points += SILENCE_POINTS_MAX
    else:
        days = max(0, (now - inputs.last_contact_at).days)
        points += min(SILENCE_POINTS_MAX, SILENCE_POINTS_PER_DAY * days)
    return points + (inputs.strategy_weight or 0)


def collectible_products(cif: str | None = None, cifs=None):
    """The customer's products still in collection, one row per product: ``cif``, ``product``
    (the loan's product type, or ``CARD``), ``overdue``, ``dpd``, ``outstanding``. Every status
    but CLOSED counts (a written-off loan is still recovered); a loan's overdue is its
    ``due_amount``, a card's is its ``min_due`` once it has days overdue. The one definition
    behind a case's totals and the promise limit."""
    loans = (
        select(Loan.cif.label("cif"), Loan.product_type.label("product"),
               Loan.due_amount.label("overdue"), Loan.dpd.label("dpd"),
               Loan.outstanding.label("outstanding"))
        .where(Loan.status != "CLOSED")
    )
    cards = (
        select(Card.cif.label("cif"), literal(CARD_PRODUCT, String),
               func.coalesce(func.nullif(func.sign(Card.days_overdue), 0), 0) * Card.min_due,
               Card.days_overdue, Card.outstanding)
        .where(Card.status != "CLOSED")
    )
    if cif is not None:
        loans, cards = loans.where(Loan.cif == cif), cards.where(Card.cif == cif)
    if cifs is not None:  # a list or a SELECT of cifs
        loans, cards = loans.where(Loan.cif.in_(cifs)), cards.where(Card.cif.in_(cifs))
    return loans.union_all(cards)


def recompute_case_totals(session: Session, case_ids: Iterable[int] | None = None) -> int:
    """Store each case's ``total_overdue``, ``max_dpd``, ``total_outstanding`` and
    ``products`` from its customer's ``collectible_products``:

    - overdue: their overdue amounts summed;
    - max DPD: the largest ``dpd`` / ``days_overdue`` of those products;
    - outstanding: their ``outstanding`` summed;
    - products: their product types, sorted, each once.

    One UPDATE over aggregated products (default: every case; with ``case_ids``, only those
    customers' products are read). Returns how many cases changed. No commit."""
    ids = None if case_ids is None else list(case_ids)
    if ids is not None and not ids:
        return 0
    scope = None if ids is None else select(Case.cif).where(Case.id.in_(ids))
    products = collectible_products(cifs=scope).subquery()
    totals = (
        select(products.c.cif,
               func.sum(products.c.overdue).label("overdue"),
               func.max(products.c.dpd).label("dpd"),
               func.sum(products.c.outstanding).label("outstanding"),
               func.array_agg(aggregate_order_by(distinct(products.c.product),
                                                 products.c.product)).label("products"))
        .group_by(products.c.cif).subquery()
    )
    overdue = func.coalesce(totals.c.overdue, 0)
    dpd = func.coalesce(totals.c.dpd, 0)
    outstanding = func.coalesce(totals.c.outstanding, 0)
    stmt = (
        update(Case).values(total_overdue=overdue, max_dpd=dpd, total_outstanding=outstanding,
                            products=totals.c.products)
        .where(Case.cif == totals.c.cif)
        .where((Case.total_overdue != overdue) | (Case.max_dpd != dpd)
               | (Case.total_outstanding != outstanding)
               | (Case.products != totals.c.products))
        .execution_options(synchronize_session=False)
    )
    # a case whose products have all closed owes nothing
    cleared = (
        update(Case).values(total_overdue=0, max_dpd=0, total_outstanding=0, products=[])
        .where(~exists().where(products.c.cif == Case.cif))
        .where((Case.total_overdue != 0) | (Case.max_dpd != 0) | (Case.total_outstanding != 0)
               | (func.cardinality(Case.products) != 0))
        .execution_options(synchronize_session=False)
    )
    if ids is not None:
        stmt = stmt.where(Case.id.in_(ids))
        cleared = cleared.where(Case.id.in_(ids))
    return session.execute(stmt).rowcount + session.execute(cleared).rowcount


def priority_inputs(session: Session, now: datetime,
                    case_ids: Iterable[int] | None = None) -> list[tuple[int, int, PriorityInputs]]:
    """``(case id, stored priority, the formula's inputs at now)`` for ``case_ids`` (default:
    every open case): the one reading of what a priority depends on."""
    today = clock.bank_today(now)
    broken = (
        select(func.count(Promise.id))
        .where(Promise.cif == Case.cif, Promise.status == "broken",
               Promise.promised_date >= today - timedelta(days=BROKEN_PROMISE_WINDOW_DAYS))
        .correlate(Case).scalar_subquery()
    )
    due = exists().where(Promise.cif == Case.cif, Promise.status == "pending",
                         Promise.promised_date <= today)
    stmt = select(Case.id, Case.priority, Case.max_dpd, Case.total_overdue, broken, due,
                  Case.next_action_at, Case.last_contact_at, Case.strategy_weight)
    if case_ids is None:
        stmt = stmt.where(Case.status != "closed")
    else:
        stmt = stmt.where(Case.id.in_(list(case_ids)))
    return [(case_id, stored, PriorityInputs(dpd, overdue, n_broken, bool(is_due), next_at,
                                             contact_at, weight))
            for case_id, stored, dpd, overdue, n_broken, is_due, next_at, contact_at, weight
            in session.execute(stmt)]


def recompute_priorities(session: Session, case_ids: Iterable[int] | None = None,
                         now: datetime | None = None) -> int:
    """Recompute and store ``cases.priority`` for ``case_ids`` (default: every open case).
    Returns how many cases changed. No commit."""
    now = now or clock.now()
    ids = None if case_ids is None else list(case_ids)
    if ids is not None and not ids:
        return 0
    changes = []
    for case_id, old, inputs in priority_inputs(session, now, ids):
        new = compute_priority(inputs, now)
        if new != old:
            changes.append({"case_id": case_id, "priority": new})
    for start in range(0, len(changes), 5000):
        session.execute(
            update(Case.__table__).where(Case.__table__.c.id == bindparam("case_id"))
            .values(priority=bindparam("priority")),
            changes[start:start + 5000],
        )
    return len(changes)


# --- the queue -------------------------------------------------------------------------------

PAGE_SIZE = 25


@dataclass
class QueueFilters:
    bucket: str | None = None
    product: str | None = None
    status: str | None = None
    follow_up_due: bool = False
    promise_due: bool = False
    q: str | None = None
    # statuses people set (cases.statuses): a processing state's code, a customer status's id
    processing: str | None = None
    customer_status: int | None = None
    # the status of the customer's latest payment plan (cases.plans): active, broken, …
    plan: str | None = None
    page: int = 1

    @classmethod
    def from_args(cls, args) -> QueueFilters:
        bucket = args.get("bucket") or None
        status = args.get("status") or None
        processing = args.get("processing") or ""
        customer_status = args.get("customer_status") or ""
        try:
            page = max(1, int(args.get("page", 1)))
        except (TypeError, ValueError):
            page = 1
        return cls(
            bucket=bucket if bucket in BUCKET_POINTS else None,
            product=(args.get("product") or "").strip().upper() or None,
            status=status if status in CASE_STATUSES else None,
            follow_up_due=args.get("due") == "follow_up" or args.get("follow_up_due") == "1",
            promise_due=args.get("due") == "promise" or args.get("promise_due") == "1",
            q=(args.get("q") or "").strip() or None,
            processing=processing if PROCESSING_CODE.match(processing) else None,
            customer_status=int(customer_status) if customer_status.isdecimal()
            and len(customer_status) < 10 else None,
            plan=args.get("plan") if args.get("plan") in PLAN_STATUSES else None,
            page=page,
        )

    def args(self, **overrides) -> dict:
        """Query arguments of these filters (for links), with ``overrides``; None drops one."""
        values = {"bucket": self.bucket, "product": self.product, "status": self.status,
                  "due": "follow_up" if self.follow_up_due else "promise" if self.promise_due
                  else None, "q": self.q, "processing": self.processing,
                  "customer_status": self.customer_status, "plan": self.plan}
        values.update(overrides)
        return {k: v for k, v in values.items() if v not in (None, "", False)}

    @property
    def active(self) -> bool:
        return bool(self.args())


@dataclass
class QueueRow:
    case: Case
    name: str
    segment: str | None
    products: list[str] = field(default_factory=list)
    promise: Promise | None = None
    locked_by: str | None = None

    @property
    def bucket(self) -> str:
        return bucket_for_dpd(self.case.max_dpd or 0)


@dataclass
class QueueCounts:
    total: int = 0
    buckets: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    products: dict[str, int] = field(default_factory=dict)
    follow_up_due: int = 0
    promise_due: int = 0
    # {processing state code: cases}, {customer status id (as text): cases}
    processing_states: dict[str, int] = field(default_factory=dict)
    customer_statuses: dict[str, int] = field(default_factory=dict)


@dataclass
class QueuePage:
    rows: list[QueueRow]
    total: int
    page: int
    per_page: int
    counts: QueueCounts

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def first(self) -> int:
        return 0 if not self.total else (self.page - 1) * self.per_page + 1

    @property
    def last(self) -> int:
        return min(self.total, self.page * self.per_page)


def bucket_condition(bucket: str):
    """Cases whose max DPD falls in ``bucket`` (boundaries from enums.BUCKETS)."""
    for name, low, high in BUCKETS:
        if name == bucket:
            return Case.max_dpd >= low if high is None else Case.max_dpd.between(low, high)
    raise ValueError(f"unknown bucket {bucket!r}")


def _promise_due(today: date):
    return exists().where(Promise.cif == Case.cif, Promise.status == "pending",
                          Promise.promised_date <= today)


def plan_condition(status: str):
    """Cases whose customer's latest payment plan has ``status`` (a broken plan followed by a
    new active one counts as active)."""
    newer = PaymentPlan.__table__.alias("newer")
    latest = select(PaymentPlan.cif).where(
        PaymentPlan.status == status,
        ~select(newer.c.id).where(newer.c.cif == PaymentPlan.cif,
                                  newer.c.id > PaymentPlan.id).exists())
    return Case.cif.in_(latest)


def _product_condition(product: str):
    return Case.products.contains([product])


def search_condition(q: str):
    """Cases whose customer matches ``q`` (cif, name, phone, account or contract number)."""
    return Case.cif.in_(search.matching_cifs(q))


# --- who holds a case: THE definition of "an agent's open cases" -----------------------------
# A call agent holds the cases of ``assigned_agent_id``, a field agent those of
# ``assigned_field_agent_id``. Every count of held cases (the queue, the home pages, the
# assignment page's loads and filters) is made from these.

HOLDER_COLUMNS = {"agent": "assigned_agent_id", "field_agent": "assigned_field_agent_id"}
OPEN_CASE = Case.status != "closed"
# A case placed with the legal team or an external agency (portal/placements) is in no agent's
# queue and Next case never hands it out; recalled or returned, it is back. The case stays
# held by its agents (their loads on the assignment page still count it).
NOT_PLACED = ~exists().where(Placement.case_id == Case.id, Placement.status == "active")


def holder_column(role: str):
    """The case column naming the holder for ``role`` (a call agent's for any other role)."""
    return getattr(Case, HOLDER_COLUMNS.get(role, HOLDER_COLUMNS["agent"]))


def held_by(agent_ids: int | Iterable[int], role: str = "agent"):
    """Cases held by ``agent_ids`` (one id or several) in ``role``, open or not."""
    column = holder_column(role)
    if isinstance(agent_ids, int):
        return column == agent_ids
    return column.in_(list(agent_ids) or [-1])


def held_counts(session: Session, agent_ids: Iterable[int],
                role: str = "agent") -> dict[int, tuple[int, Decimal]]:
    """{agent id: (open cases held, their total overdue)} for ``role``, every id listed: the
    cases of their queues (a placed case is worked by its agency: in no queue, no workload)."""
    ids = list(agent_ids)
    column = holder_column(role)
    counts = {agent_id: (0, Decimal(0)) for agent_id in ids}
    if ids:
        for agent_id, n, overdue in session.execute(
            select(column, func.count(Case.id), func.coalesce(func.sum(Case.total_overdue), 0))
            .where(OPEN_CASE, held_by(ids, role), NOT_PLACED).group_by(column)
        ):
            counts[agent_id] = (n, overdue)
    return counts


def _scope(agent_id: int | None, role: str = "agent"):
    """Cases of an agent's queue (all cases when ``agent_id`` is None: supervisors' search):
    a field agent's queue is their field cases; a placed case is in no agent's queue."""
    return [held_by(agent_id, role), NOT_PLACED] if agent_id is not None else []


OPEN_CASE_STATUSES = tuple(s for s in CASE_STATUSES if s != "closed")
PROCESSING_CODE = re.compile(r"^[a-z0-9_]{1,40}$")


def queue_counts(session: Session, agent_id: int | None, now: datetime,
                 role: str = "agent") -> QueueCounts:
    """Counts per filter value over the agent's open cases, in three index reads: one pass for
    totals, follow-ups, buckets and statuses; one for product types (kept on the case); the due
    promises from their own index. The open-queue index covers every column read, so on a
    vacuumed table the passes do not touch the table itself."""
    today = clock.bank_today(now)
    base = [*_scope(agent_id, role), OPEN_CASE]
    columns = [func.count(Case.id).label("total"),
               func.count(Case.id).filter(Case.next_action_at <= now).label("follow_up")]
    names = [name for name, _, _ in BUCKETS]
    columns += [func.count(Case.id).filter(bucket_condition(name)) for name in names]
    columns += [func.count(Case.id).filter(Case.status == status)
                for status in OPEN_CASE_STATUSES]
    row = session.execute(select(*columns).where(*base)).one()
    counts = QueueCounts(total=row[0], follow_up_due=row[1],
                         buckets=dict(zip(names, row[2:2 + len(names)], strict=True)))
    counts.statuses = {status: n for status, n in zip(
        OPEN_CASE_STATUSES, row[2 + len(names):], strict=True) if n}
    counts.promise_due = session.scalar(
        select(func.count(distinct(Promise.cif)))
        .join(Case, Case.cif == Promise.cif)
        .where(Promise.status == "pending", Promise.promised_date <= today, *base))
    product = func.unnest(Case.products).label("product")
    per_product = select(product).where(*base).subquery()
    counts.products = dict(session.execute(
        select(per_product.c.product, func.count())
        .group_by(per_product.c.product).order_by(per_product.c.product)).all())
    if CARD_PRODUCT in counts.products:  # cards last, after the loan products
        counts.products[CARD_PRODUCT] = counts.products.pop(CARD_PRODUCT)
    counts.processing_states = dict(session.execute(
        select(Case.processing_state, func.count()).where(*base)
        .group_by(Case.processing_state)).all())
    counts.customer_statuses = {str(value_id): n for value_id, n in session.execute(
        select(Case.customer_status_id, func.count())
        .where(*base, Case.customer_status_id.is_not(None))
        .group_by(Case.customer_status_id)).all()}
    return counts


COUNTS_KEY = "crm:queue-counts:{agent_id}"


def cached_queue_counts(session: Session, agent_id: int | None, now: datetime,
                        role: str = "agent") -> QueueCounts:
    """``queue_counts`` kept in Redis for ``QUEUE_COUNTS_TTL`` seconds (default 30) per agent.

    The counts scan all of an agent's open cases (20,000 for a busy agent of a large bank); the
    page of rows does not. An agent's own work (``record_action``) forgets their counts at once;
    changes from elsewhere (payments, bank sync, the hourly jobs) show within the TTL. Redis
    unavailable → counted directly. TTL 0 turns the cache off."""
    ttl = int(current_app.config.get("QUEUE_COUNTS_TTL", 30)) if has_app_context() else 0
    if not ttl or agent_id is None:
        return queue_counts(session, agent_id, now, role)
    key, day = COUNTS_KEY.format(agent_id=agent_id), clock.bank_today(now).isoformat()
    try:
        raw = get_redis().get(key)
    except (RedisError, RuntimeError):
        return queue_counts(session, agent_id, now, role)
    if raw:
        data = json.loads(raw)
        if data.pop("day", None) == day and data.pop("role", role) == role:
            return QueueCounts(**data)
    counts = queue_counts(session, agent_id, now, role)
    with contextlib.suppress(RedisError, RuntimeError):
        get_redis().set(key, json.dumps({**asdict(counts), "day": day, "role": role}), ex=ttl)
    return counts


def forget_queue_counts(*agent_ids: int | None) -> None:
    """Drop the cached counts of these agents (after they changed their own cases)."""
    keys = [COUNTS_KEY.format(agent_id=a) for a in agent_ids if a is not None]
    if not keys or not has_app_context():
        return
    with contextlib.suppress(RedisError, RuntimeError):
        get_redis().delete(*keys)


def queue_page(session: Session, agent_id: int | None, filters: QueueFilters,
               now: datetime | None = None, per_page: int = PAGE_SIZE,
               with_counts: bool = True, case_scope=None, role: str = "agent") -> QueuePage:
    """One page of the agent's queue (priority first) with the counts of every filter;
    ``role``: the agent's (a field agent's queue is their field cases); ``case_scope``
    (``permissions.case_scope``) limits browsing to the cases a user may open."""
    now = now or clock.now()
    today = clock.bank_today(now)
    conditions = list(_scope(agent_id, role))
    if case_scope is not None:
        conditions.append(case_scope)
    conditions.append(Case.status == filters.status if filters.status
                      else Case.status != "closed")
    if filters.bucket:
        conditions.append(bucket_condition(filters.bucket))
    if filters.product:
        conditions.append(_product_condition(filters.product))
    if filters.follow_up_due:
        conditions.append(Case.next_action_at <= now)
    if filters.promise_due:
        conditions.append(_promise_due(today))
    if filters.q:
        conditions.append(search_condition(filters.q))
    if filters.processing:
        conditions.append(Case.processing_state == filters.processing)
    if filters.customer_status:
        conditions.append(Case.customer_status_id == filters.customer_status)
    if filters.plan:
        conditions.append(plan_condition(filters.plan))
    base = select(Case).join(Customer, Customer.cif == Case.cif).where(*conditions)
    counts = cached_queue_counts(session, agent_id, now, role) if with_counts else None
    if counts is not None and not filters.active:
        total = counts.total  # the whole open queue: counted with the other counts
    else:
        total = session.scalar(select(func.count(Case.id)).where(*conditions))
    page = min(filters.page, max(1, math.ceil(total / per_page)))
    found = session.execute(
        base.add_columns(Customer.name, Customer.segment)
        .order_by(Case.priority.desc(), Case.max_dpd.desc(), Case.total_overdue.desc(),
                  Case.id)
        .offset((page - 1) * per_page).limit(per_page)
    ).all()
    rows = [QueueRow(case, name, segment) for case, name, segment in found]
    _decorate(session, rows, now)
    return QueuePage(rows, total, page, per_page, counts or QueueCounts(total=total))


def _decorate(session: Session, rows: list[QueueRow], now: datetime) -> None:
    """Products, the next pending promise and who holds the lock, for one page of rows."""
    if not rows:
        return
    cifs = [r.case.cif for r in rows]
    promises: dict[str, Promise] = {}
    for promise in session.scalars(
        select(Promise).where(Promise.cif.in_(cifs), Promise.status == "pending")
        .order_by(Promise.promised_date.desc())
    ):
        promises[promise.cif] = promise  # the earliest wins (ordered latest first)
    lockers = {r.case.locked_by_id for r in rows
               if r.case.locked_by_id and r.case.locked_until and r.case.locked_until > now}
    names = dict(session.execute(select(User.id, User.full_name).where(User.id.in_(lockers))
                                 ).all()) if lockers else {}
    for row in rows:
        row.products = sorted(row.case.products or [], key=lambda p: (p == CARD_PRODUCT, p))
        row.promise = promises.get(row.case.cif)
        if row.case.locked_by_id in names and row.case.locked_until > now:
            row.locked_by = names[row.case.locked_by_id]


# --- next case -------------------------------------------------------------------------------


def next_case(session: Session, agent: User, now: datetime | None = None,
              lock_minutes: int = DEFAULT_LOCK_MINUTES) -> Case | None:
    """Hand ``agent`` the top case that needs work now and lock it for ``lock_minutes``.

    Candidates: the agent's open cases and unassigned open cases (the shared pool; taking one
    assigns it to the agent), not locked by another agent, with no follow-up scheduled in the
    future. A field agent's candidates are their field cases only (the pool is the call
    agents'). ``SELECT ... FOR UPDATE SKIP LOCKED`` makes two agents asking at the same moment
    get two different cases. The agent's earlier locks are released. Commits.
    """
    now = now or clock.now()
    session.execute(
        update(Case).where(Case.locked_by_id == agent.id)
        .values(locked_by_id=None, locked_until=None)
        .execution_options(synchronize_session=False)
    )
    mine = held_by(agent.id, agent.role)
    case = session.scalars(
        select(Case)
        .where(
            OPEN_CASE, NOT_PLACED,
            mine if agent.role == "field_agent"
            else or_(mine, and_(Case.assigned_agent_id.is_(None), or_(
                # a strategy's call step puts a case in one team's queue (the shared pool of
                # that team only)
                Case.strategy_team_id.is_(None), Case.strategy_team_id == agent.team_id))),
            or_(Case.locked_until.is_(None), Case.locked_until <= now,
                Case.locked_by_id == agent.id),
            or_(Case.next_action_at.is_(None), Case.next_action_at <= now),
        )
        .order_by(Case.priority.desc(), Case.max_dpd.desc(), Case.total_overdue.desc(),
                  Case.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)  # the row as locked, not a stale copy
    ).first()
    if case is None:
        session.commit()
        return None
    case.locked_by_id = agent.id
    case.locked_until = now + timedelta(minutes=lock_minutes)
    if case.assigned_agent_id is None and agent.role != "field_agent":
        case.assigned_agent_id = agent.id
        session.add(CaseAssignment(case_id=case.id, role="agent", agent_id=agent.id,
                                   assigned_by_id=agent.id, assigned_at=now,
                                   reason="Taken from the shared pool with Next case"))
        audit.record(session, agent, "case.assigned", "case", case.cif,
                     before={"assigned_agent_id": None},
                     after={"assigned_agent_id": agent.id, "via": "next_case"})
    session.commit()
    return case


def lock_holder(session: Session, case: Case, now: datetime | None = None) -> User | None:
    """The user holding a live lock on ``case`` (None when unlocked or expired)."""
    now = now or clock.now()
    if case.locked_by_id and case.locked_until and case.locked_until > now:
        return session.get(User, case.locked_by_id)
    return None
