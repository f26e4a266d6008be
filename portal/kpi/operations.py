"""Team KPIs of the collection work: the ONE place where each figure is defined and computed.

Every KPI has a ``Definition`` (label and the text shown on the dashboard). Figures are per
agent and per team, for today, this week (Monday to today) or this month, in the bank's zone.

How the numbers stay fresh without loading the database:

- additive daily counts per agent (attempts, contacts, promises, amounts, cases worked, active
  and talk time) of *closed* days are read from ``kpi_agent_daily``, filled by the job
  ``workers.jobs.kpis.aggregate_kpis`` (``aggregate_days``); the aggregated-through date is kept
  in ``app_settings['kpi.aggregates']``. Days after it, today included, are computed live from
  the indexes on actions(agent_id, at), promises(agent_id), call_records(agent_id, started_at),
  cases(assigned_agent_id) and payments(cif, paid_at). The money collected (on the agent's
  cases, on their promises) is always read live over the whole period: a payment reversed, an
  allocation undone or a case reassigned after the day would leave a stored figure behind.
  A call's result recorded after its day was stored re-stores that day
  (``refresh_stored_day``): the attempt only counts once its result is recorded.
- promise kept rate is computed live from promises(agent_id) (statuses change after the day);
  so is the plan kept rate, from plan_instalments of the agent's payment_plans.
- window breaches are counted live from call_records over the partial index of flagged calls
  (``ix_call_records_window_breach``: only the breaches are read).
- the roll-rate matrix and cure rate come from ``kpi_portfolio_snapshots`` (bucket history only
  changes with the bank sync), refreshed by the same job, and computed on the spot when a
  snapshot for the period start is missing, or older than the newest case assignment or bucket
  stay (a reassignment moves loans between agents at once).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from portal import clock
from portal.models import AppSetting, KpiAgentDaily, KpiPortfolioSnapshot, Team, User
from portal.models.enums import BUCKET_NAMES
from portal.permissions import scopes

PERIODS = ("today", "week", "month")
PERIOD_LABELS = {"today": _l("Today"), "week": _l("This week"), "month": _l("This month")}
AGENT_ROLES = ("agent", "field_agent")
WATERMARK_KEY = "kpi.aggregates"
MIN_ACTIVE_SECONDS = 3600  # a day with any action counts at least one working hour
SNAPSHOT_MAX_AGE = timedelta(minutes=15)


@dataclass(frozen=True)
class Definition:
    key: str
    label: str
    text: str
    unit: str  # "percent", "money", "number", "duration", "rate"
    short: str = ""  # column heading

    @property
    def heading(self) -> str:
        return self.short or self.label


DEFINITIONS: tuple[Definition, ...] = (
    Definition("rpc_rate", _l("Right-party contact rate"),
               _l("Right-party contacts ÷ contact attempts. An attempt is a call or visit whose "
                  "result the agent recorded (a call still waiting for its result is not one "
                  "yet); a right-party contact is an attempt whose result is flagged "
                  "'right-party contact'."), "percent", _l("RPC rate")),
    Definition("promise_rate", _l("Promise rate"),
               _l("Promises to pay taken by the agent ÷ right-party contacts, in the period (a "
                  "promise later superseded by a newer one was taken all the same)."),
               "percent", _l("Promise rate")),
    Definition("kept_rate", _l("Promise kept rate"),
               _l("Promises kept in full ÷ promises due: promises of the agent whose promised date "
                  "falls in the period and that are resolved (kept, partially kept or broken). "
                  "Pending, cancelled and superseded (replaced by a newer promise) promises are "
                  "left out: neither kept nor broken."), "percent", _l("Kept rate")),
    Definition("promised_amount", _l("Amount promised"),
               _l("Sum of the promises to pay taken by the agent in the period."), "money",
               _l("Promised")),
    Definition("collected_on_promises", _l("Collected on promises"),
               _l("Payments received in the period that were allocated to the agent's promises "
                  "(reversed allocations excluded)."), "money", _l("On promises")),
    Definition("collected", _l("Collected"),
               _l("Payments received in the period (reversed payments excluded) from customers "
                  "whose case is assigned to the agent."), "money", _l("Collected")),
    Definition("cure_rate", _l("Cure rate"),
               _l("Loans back in the current bucket today ÷ loans delinquent (1+ DPD) on the first "
                  "day of the period, among the loans of the agent's cases (loan bucket "
                  "history; cards have no bucket history)."), "percent", _l("Cure rate")),
    Definition("cases_per_hour", _l("Cases worked per hour"),
               _l("Customers with at least one action by the agent that day, summed over days, ÷ "
                  "active hours (per day, first to last action, at least one hour)."), "rate",
               _l("Cases / h")),
    Definition("talk_time", _l("Talk time"),
               _l("Total duration of the agent's answered calls (call-centre records)."),
               "duration", _l("Talk time")),
    Definition("window_breaches", _l("Window breaches"),
               _l("Outbound calls of the agent that started outside the contact window, from any "
                  "source (click-to-call, the dialler, calls logged by hand)."), "number",
               _l("Breaches")),
    # last: a column added after the others, so the export's earlier columns stay where they were
    Definition("plan_kept_rate", _l("Plan kept rate"),
               _l("Plan instalments kept ÷ plan instalments due: instalments of the payment plans "
                  "the agent recorded whose date falls in the period and that are resolved — "
                  "kept (paid in full by their date) or missed. Instalments not yet due are left "
                  "out."), "percent", _l("Plan kept")),
)
DEFINITIONS_BY_KEY = {d.key: d for d in DEFINITIONS}
ROLL_DEFINITION = Definition(
    "roll_rate", _l("Roll rates"),
    _l("Share of the loans that were in a bucket on the first day of the period (row) and are in "
       "each bucket today (column); right of the diagonal rolled forward, left of it rolled back."),
    "percent")

COUNT_FIELDS = ("attempts", "contacts", "promises", "promised_amount", "collected",
                "collected_on_promises", "cases_worked", "active_seconds", "talk_seconds",
                "answered_calls")
MONEY_FIELDS = ("collected", "collected_on_promises")  # read live for every period


# --- periods ---------------------------------------------------------------------------------


def period_dates(period: str, today: date | None = None) -> tuple[date, date]:
    """First and last business date (inclusive) of ``period`` ending today."""
    today = today or clock.bank_today()
    if period == "today":
        return today, today
    if period == "week":
        return today - timedelta(days=today.weekday()), today
    if period == "month":
        return today.replace(day=1), today
    raise ValueError(f"unknown period {period!r}; use one of {', '.join(PERIODS)}")


def _utc_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    zone = clock.bank_zone()
    start = datetime.combine(first, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


# --- daily counts (shared by the live path and the aggregation job) ----------------------------


def _zero() -> dict:
    return {f: (Decimal(0) if f in ("promised_amount", "collected", "collected_on_promises")
                else 0) for f in COUNT_FIELDS}


def _params(agent_ids: list[int], first: date, last: date) -> dict:
    start, end = _utc_bounds(first, last)
    return {"agents": list(agent_ids), "start": start, "end": end,
            "tz": str(clock.bank_zone())}


def daily_counts(session: Session, agent_ids: list[int], first: date,
                 last: date, *, money: bool = True) -> dict[tuple[int, date], dict]:
    """Additive counts per (agent, business day) from the source tables, for days first..last
    (``money``: with the MONEY_FIELDS)."""
    result: dict[tuple[int, date], dict] = defaultdict(_zero)
    if not agent_ids:
        return result
    params = _params(agent_ids, first, last)
    # an attempt: a CALL or VISIT with its result recorded (a CTI call's action waits for it)
    rows = session.execute(text("""
        SELECT a.agent_id, (a.at AT TIME ZONE :tz)::date AS day,
               count(*) FILTER (WHERE a.type IN ('CALL', 'VISIT')
                                AND a.action_code_id IS NOT NULL) AS attempts,
               count(*) FILTER (WHERE a.type IN ('CALL', 'VISIT') AND c.is_contact) AS contacts,
               count(DISTINCT a.cif) AS cases_worked,
               extract(epoch FROM max(a.at) - min(a.at))::int AS span
        FROM actions a LEFT JOIN action_codes c ON c.id = a.action_code_id
        WHERE a.agent_id = ANY(:agents) AND a.at >= :start AND a.at < :end
              AND a.type <> 'SYSTEM'
        GROUP BY 1, 2"""), params)
    for agent_id, day, attempts, contacts, worked, span in rows:
        row = result[(agent_id, day)]
        row.update(attempts=attempts, contacts=contacts, cases_worked=worked,
                   active_seconds=max(span or 0, MIN_ACTIVE_SECONDS))
    for agent_id, day, count, amount in session.execute(text("""
        SELECT p.agent_id, (p.created_at AT TIME ZONE :tz)::date, count(*), sum(p.amount)
        FROM promises p
        WHERE p.agent_id = ANY(:agents) AND p.created_at >= :start AND p.created_at < :end
        GROUP BY 1, 2"""), params):
        result[(agent_id, day)].update(promises=count, promised_amount=amount or Decimal(0))
    if money:
        for agent_id, day, name, amount in _money_by_day(session, params):
            result[(agent_id, day)][name] = amount
    for agent_id, day, seconds, answered in session.execute(text("""
        SELECT r.agent_id, (r.started_at AT TIME ZONE :tz)::date,
               coalesce(sum(r.duration_s), 0), count(*)
        FROM call_records r
        WHERE r.agent_id = ANY(:agents) AND r.started_at >= :start AND r.started_at < :end
              AND r.answered_at IS NOT NULL
        GROUP BY 1, 2"""), params):
        result[(agent_id, day)].update(talk_seconds=int(seconds), answered_calls=answered)
    return result


def _money_by_day(session: Session, params: dict):
    """(agent, day, MONEY_FIELDS name, amount) over the period of ``params``."""
    for agent_id, day, amount in session.execute(text("""
        SELECT k.assigned_agent_id, (pay.paid_at AT TIME ZONE :tz)::date, sum(pay.amount)
        FROM cases k JOIN payments pay ON pay.cif = k.cif
        WHERE k.assigned_agent_id = ANY(:agents) AND pay.status = 'received'
              AND pay.paid_at >= :start AND pay.paid_at < :end
        GROUP BY 1, 2"""), params):
        yield agent_id, day, "collected", amount or Decimal(0)
    for agent_id, day, amount in session.execute(text("""
        SELECT p.agent_id, (pa.allocated_at AT TIME ZONE :tz)::date, sum(pa.amount)
        FROM promises p JOIN promise_allocations pa ON pa.promise_id = p.id
        WHERE p.agent_id = ANY(:agents) AND pa.reversed_at IS NULL
              AND pa.allocated_at >= :start AND pa.allocated_at < :end
        GROUP BY 1, 2"""), params):
        yield agent_id, day, "collected_on_promises", amount or Decimal(0)


def aggregated_range(session: Session) -> tuple[date | None, date | None]:
    """The closed days whose counts are stored in kpi_agent_daily (since, through)."""
    row = session.get(AppSetting, WATERMARK_KEY)
    if row is None or not row.value.get("through"):
        return None, None
    return date.fromisoformat(row.value["since"]), date.fromisoformat(row.value["through"])


def aggregate_days(session: Session, first: date, last: date,
                   agent_ids: list[int] | None = None) -> int:
    """(Re)compute ``kpi_agent_daily`` for closed days first..last (never today) and move the
    aggregated-through mark. Returns the number of rows written. The caller commits."""
    last = min(last, clock.bank_today() - timedelta(days=1))
    if last < first:
        return 0
    if agent_ids is None:
        agent_ids = list(session.scalars(select(User.id).where(User.role.in_(AGENT_ROLES))))
    counts = daily_counts(session, agent_ids, first, last)
    session.execute(delete(KpiAgentDaily).where(KpiAgentDaily.agent_id.in_(agent_ids),
                                                KpiAgentDaily.day.between(first, last)))
    now = clock.now()
    rows = [{"agent_id": a, "day": d, "computed_at": now, **values}
            for (a, d), values in counts.items()]
    for i in range(0, len(rows), 1000):
        session.execute(insert(KpiAgentDaily), rows[i:i + 1000])
    since, through = aggregated_range(session)
    if through is None or last < since - timedelta(days=1) or first > through + timedelta(days=1):
        since, through = first, last  # no stored range yet, or not adjacent: start afresh
    else:
        since, through = min(since, first), max(through, last)
    value = {"since": since.isoformat(), "through": through.isoformat(),
             "computed_at": clock.now().isoformat()}
    session.execute(insert(AppSetting).values(key=WATERMARK_KEY, value=value)
                    .on_conflict_do_update(index_elements=["key"], set_={"value": value}))
    return len(rows)


def _period_counts(session: Session, agent_ids: list[int], first: date,
                   last: date) -> dict[int, dict]:
    """Counts per agent over first..last: stored days up to the watermark, the rest live."""
    totals: dict[int, dict] = {a: _zero() for a in agent_ids}
    if not agent_ids:
        return totals
    since, through = aggregated_range(session)
    if through is not None:  # never a stored today (a mark left by a clock set ahead)
        through = min(through, clock.bank_today() - timedelta(days=1))
    live: list[tuple[date, date]] = [(first, last)]
    if through is not None and since <= through and since <= last and through >= first:
        stored_first, stored_last = max(first, since), min(last, through)
        columns = [func.sum(getattr(KpiAgentDaily, f)) for f in COUNT_FIELDS]
        for row in session.execute(
            select(KpiAgentDaily.agent_id, *columns)
            .where(KpiAgentDaily.agent_id.in_(agent_ids),
                   KpiAgentDaily.day.between(stored_first, stored_last))
            .group_by(KpiAgentDaily.agent_id)
        ):
            for name, value in zip(COUNT_FIELDS, row[1:], strict=True):
                if name not in MONEY_FIELDS:
                    totals[row[0]][name] += value or 0
        live = [(first, stored_first - timedelta(days=1)),
                (stored_last + timedelta(days=1), last)]
    for live_first, live_last in live:
        if live_first > live_last:
            continue
        for (agent_id, _day), values in daily_counts(session, agent_ids, live_first,
                                                     live_last, money=False).items():
            for name in COUNT_FIELDS:
                totals[agent_id][name] += values[name]
    for agent_id, _day, name, amount in _money_by_day(session, _params(agent_ids, first, last)):
        totals[agent_id][name] += amount
    return totals


def refresh_stored_day(session: Session, agent_id: int | None, at: datetime) -> None:
    """Something the agent did at ``at`` changed after its day was stored (a call's result
    recorded late): store that day of the agent's again. Nothing when the day is not stored
    (today, or outside the aggregated range). No commit."""
    if agent_id is None:
        return
    day = clock.bank_today(at)
    since, through = aggregated_range(session)
    if through is None or not since <= day <= through:
        return
    aggregate_days(session, day, day, [agent_id])


def _breach_counts(session: Session, agent_ids: list[int], first: date,
                   last: date) -> dict[int, int]:
    """Outbound calls outside the contact window per agent (call_records.window_breach)."""
    if not agent_ids:
        return {}
    start, end = _utc_bounds(first, last)
    return dict(session.execute(text("""
        SELECT agent_id, count(*) FROM call_records
        WHERE agent_id = ANY(:agents) AND started_at >= :start AND started_at < :end
              AND window_breach IS NOT NULL
        GROUP BY 1"""), {"agents": list(agent_ids), "start": start, "end": end}).all())


def _kept_counts(session: Session, agent_ids: list[int], first: date,
                 last: date) -> dict[int, tuple[int, int]]:
    """(promises due and resolved, kept in full) per agent."""
    if not agent_ids:
        return {}
    return {agent_id: (due, kept) for agent_id, due, kept in session.execute(text("""
        SELECT agent_id, count(*), count(*) FILTER (WHERE status = 'kept')
        FROM promises
        WHERE agent_id = ANY(:agents) AND promised_date BETWEEN :first AND :last
              AND status IN ('kept', 'partially_kept', 'broken')  -- not superseded/cancelled
        GROUP BY 1"""), {"agents": list(agent_ids), "first": first, "last": last})}


def _plan_kept_counts(session: Session, agent_ids: list[int], first: date,
                      last: date) -> dict[int, tuple[int, int]]:
    """(plan instalments due and resolved, kept) per agent who recorded the plan."""
    if not agent_ids:
        return {}
    return {agent_id: (due, kept) for agent_id, due, kept in session.execute(text("""
        SELECT p.agent_id, count(*), count(*) FILTER (WHERE i.status = 'kept')
        FROM plan_instalments i JOIN payment_plans p ON p.id = i.plan_id
        WHERE p.agent_id = ANY(:agents) AND i.due_date BETWEEN :first AND :last
              AND i.status IN ('kept', 'missed')
        GROUP BY 1"""), {"agents": list(agent_ids), "first": first, "last": last})}


# --- portfolio: roll rates and cure ---------------------------------------------------------


def bucket_flows(session: Session, agent_ids: list[int], start: date,
                 end: date) -> list[tuple[int, str, str, int]]:
    """(agent, bucket on ``start``, bucket on ``end``, loans) for the loans of the agents'
    cases, from the loan bucket history (a stay covers from_date..to_date inclusive)."""
    if not agent_ids:
        return []
    return [tuple(r) for r in session.execute(text("""
        SELECT k.assigned_agent_id, s.bucket, e.bucket, count(*)
        FROM cases k
        JOIN loans l ON l.cif = k.cif
        JOIN loan_bucket_history s ON s.account_number = l.account_number
             AND s.from_date <= :start AND (s.to_date IS NULL OR s.to_date >= :start)
        JOIN loan_bucket_history e ON e.account_number = l.account_number
             AND e.from_date <= :end AND (e.to_date IS NULL OR e.to_date >= :end)
        WHERE k.assigned_agent_id = ANY(:agents)
        GROUP BY 1, 2, 3"""), {"agents": list(agent_ids), "start": start, "end": end})]


def refresh_snapshot(session: Session, team_id: int, start: date,
                     end: date | None = None) -> KpiPortfolioSnapshot:
    """Compute and store the team's bucket flows since ``start`` (no commit)."""
    end = end or clock.bank_today()
    agent_ids = _team_agent_ids(session, [team_id])
    versions = _flow_versions(session)  # read first: a change made meanwhile shows next time
    flows = bucket_flows(session, agent_ids, start, end)
    data = {"flows": [[a, s, e, n] for a, s, e, n in flows], "versions": versions}
    values = {"team_id": team_id, "start_date": start, "end_date": end,
              "computed_at": clock.now(), "data": data}
    session.execute(insert(KpiPortfolioSnapshot).values(**values).on_conflict_do_update(
        index_elements=["team_id", "start_date"],
        set_={k: values[k] for k in ("end_date", "computed_at", "data")}))
    return session.scalars(select(KpiPortfolioSnapshot).where(
        KpiPortfolioSnapshot.team_id == team_id, KpiPortfolioSnapshot.start_date == start)
        .execution_options(populate_existing=True)  # the row just written, not a stale copy
    ).one()


def _flow_versions(session: Session) -> list[int]:
    """What the flows are made of, as of now: the newest case assignment and bucket stay (a
    reassignment or a bank sync adds rows); two primary-key reads."""
    return list(session.execute(text(
        "SELECT coalesce((SELECT max(id) FROM case_assignments), 0), "
        "coalesce((SELECT max(id) FROM loan_bucket_history), 0)")).one())


def _flows(session: Session, team_ids: list[int], start: date,
           end: date) -> list[tuple[int, str, str, int]]:
    snapshots = {s.team_id: s for s in session.scalars(select(KpiPortfolioSnapshot).where(
        KpiPortfolioSnapshot.team_id.in_(team_ids), KpiPortfolioSnapshot.start_date == start))}
    flows: list[tuple[int, str, str, int]] = []
    now = clock.now()
    versions = _flow_versions(session) if snapshots else None
    for team_id in team_ids:
        snap = snapshots.get(team_id)
        if snap is None or snap.end_date != end or now - snap.computed_at > SNAPSHOT_MAX_AGE \
                or snap.data.get("versions") != versions:  # reassigned, or synced, since
            snap = refresh_snapshot(session, team_id, start, end)
        flows.extend(tuple(f) for f in snap.data["flows"])
    return flows


# --- the dashboard ------------------------------------------------------------------------------


def _rate(numerator, denominator) -> float | None:
    if not denominator:
        return None
    return float(numerator) / float(denominator)


@dataclass
class Figures:
    """One row of the dashboard (an agent, or a team total)."""

    key: int | str
    name: str
    role: str = ""
    team: str = ""
    counts: dict = field(default_factory=_zero)
    promises_due: int = 0
    promises_kept: int = 0
    plan_instalments_due: int = 0
    plan_instalments_kept: int = 0
    delinquent_at_start: int = 0
    cured: int = 0
    window_breaches: int = 0

    def add(self, other: Figures) -> None:
        for name in COUNT_FIELDS:
            self.counts[name] += other.counts[name]
        self.window_breaches += other.window_breaches
        self.promises_due += other.promises_due
        self.promises_kept += other.promises_kept
        self.plan_instalments_due += other.plan_instalments_due
        self.plan_instalments_kept += other.plan_instalments_kept
        self.delinquent_at_start += other.delinquent_at_start
        self.cured += other.cured

    @property
    def values(self) -> dict:
        c = self.counts
        return {
            "rpc_rate": _rate(c["contacts"], c["attempts"]),
            "promise_rate": _rate(c["promises"], c["contacts"]),
            "kept_rate": _rate(self.promises_kept, self.promises_due),
            "plan_kept_rate": _rate(self.plan_instalments_kept, self.plan_instalments_due),
            "promised_amount": c["promised_amount"],
            "collected_on_promises": c["collected_on_promises"],
            "collected": c["collected"],
            "cure_rate": _rate(self.cured, self.delinquent_at_start),
            "cases_per_hour": _rate(c["cases_worked"] * 3600, c["active_seconds"]),
            "talk_time": c["talk_seconds"],
            "window_breaches": self.window_breaches,
        }


@dataclass
class RollMatrix:
    counts: dict[str, dict[str, int]]

    @property
    def buckets(self) -> tuple[str, ...]:
        return BUCKET_NAMES

    def row_total(self, start: str) -> int:
        return sum(self.counts[start].values())

    def share(self, start: str, end: str) -> float | None:
        return _rate(self.counts[start][end], self.row_total(start))

    def roll_forward(self, start: str) -> float | None:
        """Share of the row that moved to a worse bucket."""
        index = BUCKET_NAMES.index(start)
        worse = sum(self.counts[start][b] for b in BUCKET_NAMES[index + 1:])
        return _rate(worse, self.row_total(start))


@dataclass
class Dashboard:
    period: str
    first: date
    last: date
    teams: list[Team]
    team_rows: list[Figures]
    agent_rows: list[Figures]
    total: Figures
    roll: RollMatrix
    computed_at: datetime
    definitions: tuple[Definition, ...] = DEFINITIONS
    roll_definition: Definition = ROLL_DEFINITION

    @property
    def period_label(self) -> str:
        return PERIOD_LABELS[self.period]


def visible_team_ids(session: Session, user: User) -> list[int]:
    """Teams whose KPIs ``user`` may see: all for an admin, else the teams they supervise
    (and their own team)."""
    teams = scopes.supervised_team_ids(session, user)
    if teams is None:
        return list(session.scalars(select(Team.id).order_by(Team.name)))
    return teams


def _team_agents(session: Session, team_ids: list[int]) -> list[User]:
    if not team_ids:
        return []
    return list(session.scalars(
        select(User).where(User.team_id.in_(team_ids), User.role.in_(AGENT_ROLES),
                           User.active.is_(True)).order_by(User.full_name)))


def _team_agent_ids(session: Session, team_ids: list[int]) -> list[int]:
    return [u.id for u in _team_agents(session, team_ids)]


def dashboard(session: Session, team_ids: list[int], period: str = "today",
              today: date | None = None) -> Dashboard:
    """Every KPI for the agents of ``team_ids`` (active agents and field agents), per agent,
    per team and in total, for ``period``."""
    first, last = period_dates(period, today)
    teams = list(session.scalars(select(Team).where(Team.id.in_(team_ids or [-1]))
                                 .order_by(Team.name)))
    agents = _team_agents(session, [t.id for t in teams])
    agent_ids = [a.id for a in agents]
    counts = _period_counts(session, agent_ids, first, last)
    kept = _kept_counts(session, agent_ids, first, last)
    plan_kept = _plan_kept_counts(session, agent_ids, first, last)
    breaches = _breach_counts(session, agent_ids, first, last)
    flows = _flows(session, [t.id for t in teams], first, last)
    team_names = {t.id: t.name for t in teams}
    by_agent: dict[int, Figures] = {}
    for agent in agents:
        due, kept_n = kept.get(agent.id, (0, 0))
        plan_due, plan_kept_n = plan_kept.get(agent.id, (0, 0))
        by_agent[agent.id] = Figures(agent.id, agent.full_name, agent.role,
                                     team_names.get(agent.team_id, ""), counts[agent.id],
                                     promises_due=due, promises_kept=kept_n,
                                     plan_instalments_due=plan_due,
                                     plan_instalments_kept=plan_kept_n,
                                     window_breaches=breaches.get(agent.id, 0))
    matrix = {s: {e: 0 for e in BUCKET_NAMES} for s in BUCKET_NAMES}
    for agent_id, start_bucket, end_bucket, n in flows:
        matrix[start_bucket][end_bucket] += n
        figures = by_agent.get(agent_id)
        if figures is not None and start_bucket != "current":
            figures.delinquent_at_start += n
            if end_bucket == "current":
                figures.cured += n
    team_rows = []
    for team in teams:
        row = Figures(team.id, team.name, team=team.name)
        for agent in agents:
            if agent.team_id == team.id:
                row.add(by_agent[agent.id])
        team_rows.append(row)
    total = Figures("total", _l("All shown teams"))
    for row in team_rows:
        total.add(row)
    return Dashboard(period, first, last, teams, team_rows, list(by_agent.values()), total,
                     RollMatrix(matrix), clock.now())


# --- export -------------------------------------------------------------------------------------


def to_csv(board: Dashboard) -> str:
    """The dashboard as CSV: one line per team and agent, one column per KPI (raw values:
    rates as fractions, money in the currency's units, talk time in seconds)."""
    out = io.StringIO()
    writer = csv.writer(out)
    keys = [d.key for d in DEFINITIONS]
    writer.writerow(["period", "from", "to", "level", "team", "agent", *keys,
                     "attempts", "contacts", "promises", "promises_due", "promises_kept",
                     "delinquent_at_start", "cured"])

    def line(level, team, agent, row: Figures):
        values = row.values
        writer.writerow([board.period, board.first.isoformat(), board.last.isoformat(), level,
                         team, agent,
                         *["" if values[k] is None else
                           (f"{values[k]:.4f}" if isinstance(values[k], float) else values[k])
                           for k in keys],
                         row.counts["attempts"], row.counts["contacts"], row.counts["promises"],
                         row.promises_due, row.promises_kept, row.delinquent_at_start,
                         row.cured])

    for row in board.team_rows:
        line("team", row.name, "", row)
    for row in board.agent_rows:
        line("agent", row.team, row.name, row)
    line("total", "", "", board.total)
    return out.getvalue()
