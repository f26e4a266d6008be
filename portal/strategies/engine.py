"""THE assignment of accounts to strategy, segment, step and variant on a business date — one
SQL definition (``assignment_sql``) that the daily run inserts from (portal.strategies.run) and
the simulation counts from (``simulate``), so what a supervisor sees before activating is what
the run does.

Definitions (one each):

- **eligible account**: a loan or card not CLOSED whose customer has a case that is not closed
  (``FACTS_SQL``; the products of ``cases.queue.collectible_products``).
- **dpd**: the account's days past due; an account not yet past due has a negative dpd, minus
  the days left before its next due date (so a step "at DPD −3" is three days before).
- **segment**: the first segment of the account's strategy (by position) whose conditions all
  hold; when several active strategies take an account, the one of lowest rank (then id) wins.
- **days in segment**: days since ``segment_since``, the first day of the account's unbroken
  run of daily assignments to that segment (yesterday's assignment carries it on).
- **step**: of the segment's steps the variant does not skip, the one with the greatest
  ``at_value`` at or below the account's dpd (key ``dpd``) or days in segment
  (``days_in_segment``); none when an exit condition of the segment holds (``exited``).
- **entered_step**: the account was not in this step yesterday: the day its step's work
  (message, visit) is created.
- **variant draw**: ``md5(strategy id ':' account number)``'s first 32 bits modulo 100; the
  variant whose cumulative split range [lo, hi) holds the draw (``stable_draw`` is the same in
  Python).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from portal import clock
from portal.models.strategies import Strategy, StrategyVersion
from portal.strategies.conditions import compile_conditions

# One row per eligible account with every field the conditions may name (conditions.FIELDS).
FACTS_SQL = """
SELECT p.account_number, p.cif, c.id AS case_id, p.product, p.dpd, p.bucket,
       p.outstanding, p.overdue,
       cu.segment AS customer_segment, ad.province AS region,
       c.status AS case_status, c.processing_state, cs.code AS customer_status,
       COALESCE(pr.promise_pending, false) AS promise_pending,
       COALESCE(pr.broken_90d, 0) AS broken_promises_90d,
       COALESCE(pl.active, false) AS plan_active,
       COALESCE(pl.broken, 0) AS plans_broken,
       COALESCE(CAST(:day AS date)
                - CAST((c.last_contact_at AT TIME ZONE :zone) AS date), 9999)
           AS last_contact_days,
       (pc.case_id IS NOT NULL) AS placed
FROM (
    SELECT l.account_number, l.cif, l.product_type AS product,
           CASE WHEN l.dpd > 0 THEN l.dpd
                WHEN l.next_payment_date >= CAST(:day AS date)
                    THEN CAST(:day AS date) - l.next_payment_date
                ELSE 0 END AS dpd,
           l.bucket, l.outstanding, l.due_amount AS overdue
    FROM loans l WHERE l.status <> 'CLOSED'
    UNION ALL
    SELECT k.contract_number, k.cif, 'CARD',
           CASE WHEN k.days_overdue > 0 THEN k.days_overdue
                WHEN k.due_date >= CAST(:day AS date) THEN CAST(:day AS date) - k.due_date
                ELSE 0 END,
           k.bucket, k.outstanding, CASE WHEN k.days_overdue > 0 THEN k.min_due ELSE 0 END
    FROM cards k WHERE k.status <> 'CLOSED'
) p
JOIN cases c ON c.cif = p.cif AND c.status <> 'closed'
JOIN customers cu ON cu.cif = p.cif
LEFT JOIN status_values cs ON cs.id = c.customer_status_id
LEFT JOIN (SELECT DISTINCT ON (cif) cif, province FROM addresses WHERE cif IS NOT NULL
           ORDER BY cif, is_primary DESC, id) ad ON ad.cif = p.cif
LEFT JOIN (SELECT cif, bool_or(status = 'pending') AS promise_pending,
                  count(*) FILTER (WHERE status = 'broken'
                                   AND promised_date >= CAST(:day AS date) - 90) AS broken_90d
           FROM promises WHERE status IN ('pending', 'broken') GROUP BY cif) pr
       ON pr.cif = p.cif
LEFT JOIN (SELECT cif, bool_or(status = 'active') AS active,
                  count(*) FILTER (WHERE status = 'broken') AS broken
           FROM payment_plans WHERE status IN ('active', 'broken') GROUP BY cif) pl
       ON pl.cif = p.cif
LEFT JOIN (SELECT DISTINCT case_id FROM placements WHERE status = 'active') pc
       ON pc.case_id = c.id
"""

EXIT_SQL = {
    "cured": "f.dpd <= 0",
    "promise_pending": "f.promise_pending",
    "plan_active": "f.plan_active",
    "placed": "f.placed",
}


def stable_draw(strategy_id: int, account_number: str) -> int:
    """The account's variant bucket 0-99 for a strategy (the SQL's ``draw``, in Python)."""
    digest = hashlib.md5(f"{strategy_id}:{account_number}".encode()).hexdigest()
    return int(digest[:8], 16) % 100


DRAW_SQL = ("mod(CAST(CAST(('x' || substr(md5(CAST(s.strategy_id AS text) || ':' "
            "|| f.account_number), 1, 8)) AS bit(32)) AS bigint), 100)")


def active_versions(session: Session) -> list[StrategyVersion]:
    """The active versions, the winning strategy first (rank, then id)."""
    return list(session.scalars(
        select(StrategyVersion).join(Strategy)
        .where(StrategyVersion.status == "active")
        .order_by(Strategy.rank, Strategy.id)))


def assignment_sql(versions: list[StrategyVersion], day: date,
                   teams: frozenset[int] | None = None) -> tuple[str, dict]:
    """THE query: one row per account that a segment of ``versions`` (in order of precedence)
    takes on ``day``, with its strategy, version, segment, step, variant, draw, segment_since,
    entered_step, exited and facts. With ``teams`` (the feature flag on for chosen teams
    first), only the accounts of cases assigned to those teams' agents. Nothing is written."""
    params: dict = {"day": day, "yesterday": date.fromordinal(day.toordinal() - 1),
                    "zone": str(clock.bank_zone())}
    rollout = ""
    if teams is not None:
        params["rollout_teams"] = sorted(teams)
        rollout = ("WHERE f.case_id IN (SELECT c.id FROM cases c JOIN users u "
                   "ON u.id = c.assigned_agent_id WHERE u.team_id = ANY(:rollout_teams))")
    whens = []
    for version in versions:
        for segment in version.segments:
            condition = compile_conditions(segment.conditions or [], params, f"s{segment.id}")
            whens.append(f"WHEN {condition} THEN {int(segment.id)}")
    if not whens:  # no segment: a CASE that takes nobody
        whens.append("WHEN false THEN CAST(NULL AS int)")
    exits = " ".join(
        f"WHEN '{name}' = ANY(s.exit_conditions) AND {sql} THEN '{name}'"
        for name, sql in EXIT_SQL.items())
    sql = f"""
WITH f AS ({FACTS_SQL}),
picked AS (
    SELECT f.*, CASE {' '.join(whens)} END AS segment_id FROM f {rollout}
),
variants AS (
    SELECT v.id, v.version_id, v.skip_actions, v.weight_delta,
           sum(v.split_pct) OVER (PARTITION BY v.version_id ORDER BY v.position) - v.split_pct
               AS lo,
           sum(v.split_pct) OVER (PARTITION BY v.version_id ORDER BY v.position) AS hi
    FROM strategy_variants v
),
seg AS (
    SELECT f.*, s.version_id, sv.strategy_id, s.exit_conditions,
           {DRAW_SQL.replace('s.strategy_id', 'sv.strategy_id')} AS draw,
           COALESCE(y.segment_since, CAST(:day AS date)) AS segment_since,
           y.step_id AS yesterday_step_id,
           CASE {exits} END AS exited
    FROM picked f
    JOIN strategy_segments s ON s.id = f.segment_id
    JOIN strategy_versions sv ON sv.id = s.version_id
    LEFT JOIN strategy_assignments y
           ON y.business_date = CAST(:yesterday AS date) AND y.account_number = f.account_number
          AND y.segment_id = f.segment_id
)
SELECT seg.account_number, seg.cif, seg.case_id, seg.strategy_id, seg.version_id,
       seg.segment_id, st.id AS step_id, va.id AS variant_id, CAST(seg.draw AS smallint) AS draw,
       seg.segment_since,
       (st.id IS NOT NULL AND st.id IS DISTINCT FROM seg.yesterday_step_id) AS entered_step,
       seg.exited, seg.dpd, seg.bucket, seg.overdue, seg.outstanding,
       st.action, st.priority_weight + COALESCE(va.weight_delta, 0) AS call_weight, st.team_id
FROM seg
LEFT JOIN variants va ON va.version_id = seg.version_id AND seg.draw >= va.lo
                     AND seg.draw < va.hi
LEFT JOIN LATERAL (
    SELECT x.id, x.action, x.priority_weight, x.team_id FROM strategy_steps x
    WHERE x.segment_id = seg.segment_id AND seg.exited IS NULL
      AND x.at_value <= CASE x.key WHEN 'dpd' THEN seg.dpd
                                   ELSE CAST(:day AS date) - seg.segment_since END
      AND NOT (x.action = ANY(COALESCE(va.skip_actions, '{{}}')))
    ORDER BY x.at_value DESC, x.id DESC LIMIT 1
) st ON true
"""
    return sql, params


@dataclass
class Simulation:
    business_date: date
    total: int = 0  # accounts taken by the version
    segments: list[dict] = field(default_factory=list)  # {id, name, accounts, exited, steps}
    variants: list[dict] = field(default_factory=list)  # {id, name, accounts}
    sample: list[dict] = field(default_factory=list)  # account rows (case links)


def simulate(session: Session, version: StrategyVersion, day: date | None = None,
             sample: int = 20) -> Simulation:
    """What the daily run would do with ``version`` alone against today's portfolio: counts
    per segment and step (and variant), and a sample of accounts. Reads only (its one pass
    goes to a temporary table of the session, dropped before it returns)."""
    day = day or clock.bank_today()
    sql, params = assignment_sql([version], day)
    result = Simulation(day)
    session.execute(text("SET LOCAL jit = off"))  # as the run does
    # one pass of THE query into a table of this transaction only (dropped with it): the counts
    # and the sample read it, nothing is written for anyone else
    session.execute(text("DROP TABLE IF EXISTS pg_temp.strategy_simulation"))
    session.execute(text(f"CREATE TEMP TABLE strategy_simulation ON COMMIT DROP AS {sql}"),
                    params)
    counts = session.execute(text(
        "SELECT segment_id, step_id, variant_id, exited IS NOT NULL AS exited, count(*) "
        "FROM pg_temp.strategy_simulation GROUP BY 1, 2, 3, 4")).all()
    by_segment: dict[int, dict] = {
        s.id: {"id": s.id, "name": s.name, "accounts": 0, "exited": 0, "no_step": 0,
               "steps": {st.id: {"step": st, "accounts": 0} for st in s.steps}}
        for s in version.segments}
    by_variant = {v.id: {"id": v.id, "name": v.name, "accounts": 0, "variant": v}
                  for v in version.variants}
    for segment_id, step_id, variant_id, exited, n in counts:
        seg = by_segment[segment_id]
        seg["accounts"] += n
        result.total += n
        if exited:
            seg["exited"] += n
        elif step_id is None:
            seg["no_step"] += n
        else:
            seg["steps"][step_id]["accounts"] += n
        if variant_id in by_variant:
            by_variant[variant_id]["accounts"] += n
    result.segments = [{**s, "steps": list(s["steps"].values())} for s in by_segment.values()]
    result.variants = list(by_variant.values())
    result.sample = [dict(r._mapping) for r in session.execute(text(
        "SELECT a.account_number, a.cif, a.segment_id, a.step_id, a.dpd, a.overdue, "
        "a.exited, cu.name FROM pg_temp.strategy_simulation a "
        "JOIN customers cu ON cu.cif = a.cif "
        "ORDER BY a.segment_id, a.dpd DESC, a.account_number LIMIT :limit"), {"limit": sample})]
    session.execute(text("DROP TABLE pg_temp.strategy_simulation"))
    return result
