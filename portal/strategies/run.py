"""The daily run: assign every eligible account to its strategy, segment, step and variant for a
business date (``engine.assignment_sql``, inserted set-based — no Python loop over rows) and
create the steps' work:

- **messages** (sms / email / letter steps, on the day the account enters the step): a queued
  row in ``messages`` per account — template from the step's code, language ``vi``, source
  ``strategy``, body '' and no contact point (the messages dispatcher renders, applies the
  contact rules and sends), ``dedupe_key`` ``strategy:<date>:<account>:<step id>``;
- **call steps**: the case's ``strategy_weight`` (the step's priority weight, plus the
  variant's delta; the highest of the customer's accounts) is added to its priority and the case
  goes to the step's team (``cases.strategy_team_id``: Next case hands an unassigned such case
  only to that team); a case whose accounts have no call step today loses both;
- **visits** (visit steps, on entering): a planned visit today for the customer's field agent;
- **placement reviews**: the assignments whose step is ``placement_review`` (the strategies
  page lists them for supervisors).

Idempotent per business date: assignments are unique per (date, account) and inserted ``ON
CONFLICT DO NOTHING``, messages by their dedupe key, visits when none is planned that day, the
case weights set to what today's assignments say — a second run changes and sends nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from portal import clock
from portal.flags import operations as flags
from portal.logging import get_correlation_id
from portal.models import IntegrationRun
from portal.run_counts import RunCounts
from portal.strategies import engine

log = logging.getLogger(__name__)

PHASES = ("assign", "messages", "calls", "visits")
Progress = Callable[[int, int, str], None]

INSERT_COLUMNS = ("account_number", "cif", "case_id", "strategy_id", "version_id", "segment_id",
                  "step_id", "variant_id", "draw", "segment_since", "entered_step", "exited",
                  "dpd", "bucket", "overdue", "outstanding")

MESSAGES_SQL = """
INSERT INTO messages (cif, case_id, account_number, channel, template_id, language, body,
                      status, attempts, next_attempt_at, business_date, source, dedupe_key,
                      strategy_assignment_id, created_at, updated_at)
SELECT a.cif, a.case_id, a.account_number, s.action, t.id, 'vi', '', 'queued', 0, :now,
       a.business_date, 'strategy',
       'strategy:' || to_char(a.business_date, 'YYYY-MM-DD') || ':' || a.account_number
           || ':' || s.id, a.id, :now, :now
FROM strategy_assignments a
JOIN strategy_steps s ON s.id = a.step_id
JOIN message_templates t ON t.code = s.template_code AND t.channel = s.action AND t.active
WHERE a.business_date = :day AND a.entered_step AND s.action IN ('sms', 'email', 'letter')
ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
"""

# today's call step per case: the strongest weight among the customer's accounts, its team
CALLS_TODAY = """
SELECT DISTINCT ON (a.case_id) a.case_id,
       LEAST(GREATEST(s.priority_weight + COALESCE(v.weight_delta, 0), 0), 2000) AS weight,
       s.team_id
FROM strategy_assignments a
JOIN strategy_steps s ON s.id = a.step_id AND s.action = 'call'
LEFT JOIN strategy_variants v ON v.id = a.variant_id
WHERE a.business_date = :day AND a.case_id IS NOT NULL
ORDER BY a.case_id, s.priority_weight + COALESCE(v.weight_delta, 0) DESC, s.id
"""

CALLS_SET_SQL = f"""
UPDATE cases c SET priority = c.priority - c.strategy_weight + t.weight,
                   strategy_weight = t.weight, strategy_team_id = t.team_id, updated_at = :now
FROM ({CALLS_TODAY}) t
WHERE c.id = t.case_id
  AND (c.strategy_weight, c.strategy_team_id) IS DISTINCT FROM (t.weight, t.team_id)
"""

CALLS_CLEAR_SQL = f"""
WITH t AS MATERIALIZED ({CALLS_TODAY})
UPDATE cases c SET priority = c.priority - c.strategy_weight, strategy_weight = 0,
                   strategy_team_id = NULL, updated_at = :now
WHERE (c.strategy_weight <> 0 OR c.strategy_team_id IS NOT NULL)
  AND c.id NOT IN (SELECT t.case_id FROM t)
"""

VISITS_SQL = """
INSERT INTO visits (cif, agent_id, planned_for, status, notes, created_at, updated_at)
SELECT DISTINCT ON (a.cif) a.cif, c.assigned_field_agent_id, a.business_date, 'planned',
       'strategy step ' || s.id, :now, :now
FROM strategy_assignments a
JOIN strategy_steps s ON s.id = a.step_id AND s.action = 'visit'
JOIN cases c ON c.id = a.case_id
WHERE a.business_date = :day AND a.entered_step
  AND NOT EXISTS (SELECT 1 FROM visits v WHERE v.cif = a.cif AND v.planned_for = a.business_date
                  AND v.status = 'planned')
ORDER BY a.cif, s.id
"""

RUN_LOCK = 0x5354524154  # pg_advisory_xact_lock key: one run at a time


def run_business_date(session: Session, business_date: date, *,
                      progress: Progress | None = None, now: datetime | None = None) -> dict:
    """Assign and create the work for ``business_date`` (see the module docstring). Returns
    the counts: ``assigned`` (rows inserted now), ``accounts`` (assignments of the date),
    ``exited``, ``per_action`` {action: accounts}, ``messages``, ``cases_weighted``,
    ``cases_cleared``, ``visits``, ``placement_reviews``. No commit."""
    now = now or clock.now()
    report = progress or (lambda done, total, phase: None)
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": RUN_LOCK})
    # a fixed second of JIT compilation per statement buys nothing on these plans
    session.execute(text("SET LOCAL jit = off"))
    versions = engine.active_versions(session)
    sql, params = engine.assignment_sql(versions, business_date)
    counts: dict = {"business_date": business_date.isoformat(),
                    "versions": [v.id for v in versions]}
    seconds: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal mark
        seconds[phase] = round(time.perf_counter() - mark, 3)
        mark = time.perf_counter()

    report(0, len(PHASES), "assign")
    columns = ", ".join(INSERT_COLUMNS)
    counts["assigned"] = session.execute(text(
        f"INSERT INTO strategy_assignments (business_date, {columns}) "
        f"SELECT CAST(:day AS date), {columns} FROM ({sql}) a "
        f"ON CONFLICT (business_date, account_number) DO NOTHING"), params
    ).rowcount if versions else 0  # none active: nothing assigned, yesterday's calls cleared
    lap("assign")
    report(1, len(PHASES), "messages")
    counts["messages"] = session.execute(text(MESSAGES_SQL),
                                         {"day": business_date, "now": now}).rowcount
    lap("messages")
    report(2, len(PHASES), "calls")
    counts["cases_weighted"] = session.execute(text(CALLS_SET_SQL),
                                               {"day": business_date, "now": now}).rowcount
    counts["cases_cleared"] = session.execute(text(CALLS_CLEAR_SQL),
                                              {"day": business_date, "now": now}).rowcount
    lap("calls")
    report(3, len(PHASES), "visits")
    counts["visits"] = session.execute(text(VISITS_SQL),
                                       {"day": business_date, "now": now}).rowcount
    lap("visits")
    row = session.execute(text(
        "SELECT count(*), count(*) FILTER (WHERE a.exited IS NOT NULL) "
        "FROM strategy_assignments a WHERE a.business_date = :day"),
        {"day": business_date}).one()
    counts["accounts"], counts["exited"] = row
    counts["per_action"] = dict(session.execute(text(
        "SELECT s.action, count(*) FROM strategy_assignments a "
        "JOIN strategy_steps s ON s.id = a.step_id WHERE a.business_date = :day "
        "GROUP BY s.action ORDER BY s.action"), {"day": business_date}).all())
    counts["placement_reviews"] = counts["per_action"].get("placement_review", 0)
    lap("counts")
    counts["seconds"] = seconds
    report(len(PHASES), len(PHASES), "done")
    session.expire_all()  # cases changed under the ORM
    return counts


def run_and_record(session: Session, business_date: date | None = None, *,
                   trigger: str = "schedule", user_id: int | None = None,
                   progress_session_factory=None) -> IntegrationRun:
    """The daily run as an ops run (integration STRATEGIES, kind assign): the run row is
    committed first (``running``), its progress written as phases finish (through its own
    session when ``progress_session_factory`` is given: visible while the run's transaction is
    open), then the counts. Commits. A failure marks the run failed and re-raises."""
    business_date = business_date or clock.bank_today()
    started = clock.now()
    t0 = time.monotonic()
    if not flags.job_enabled("strategies", session):
        # the feature flag is off for everyone: nothing is assigned, the run says why (on for
        # chosen teams, the run is the bank's as always: the flag gates the teams' pages)
        run = IntegrationRun(integration="STRATEGIES", kind="assign", trigger=trigger,
                             status="skipped", business_date=business_date,
                             started_at=started, finished_at=started, triggered_by_id=user_id,
                             correlation_id=get_correlation_id(), duration_ms=0,
                             note="feature flag strategies is off for everyone: nothing "
                                  "assigned (flask flags set strategies --all)")
        session.add(run)
        session.commit()
        log.info("strategies run skipped: feature flag off")
        return run
    run = IntegrationRun(integration="STRATEGIES", kind="assign", trigger=trigger,
                         status="running", business_date=business_date, started_at=started,
                         triggered_by_id=user_id, correlation_id=get_correlation_id(),
                         progress_done=0, progress_total=len(PHASES))
    session.add(run)
    session.commit()
    run_id = run.id

    def progress(done: int, total: int, phase: str) -> None:
        if progress_session_factory is None:
            return
        with progress_session_factory() as side:
            side.execute(text("UPDATE integration_runs SET progress_done = :d, "
                              "progress_total = :t, note = :n WHERE id = :id"),
                         {"d": done, "t": total, "n": f"phase: {phase}", "id": run_id})
            side.commit()

    try:
        counts = run_business_date(session, business_date, progress=progress)
    except Exception as exc:
        session.rollback()
        run = session.get(IntegrationRun, run_id)
        run.status, run.finished_at = "failed", clock.now()
        run.errors = [str(exc)[:500]]
        run.duration_ms = int((time.monotonic() - t0) * 1000)
        session.commit()
        raise
    run = session.get(IntegrationRun, run_id)
    run.status = "succeeded"
    run.finished_at = clock.now()
    # one record per eligible account (portal/run_counts.py): written = assigned today, already
    # so = assigned by an earlier run of the date; the work it made is in the control totals
    for name, value in RunCounts(extracted=counts["accounts"], loaded=counts["assigned"],
                                 unchanged=counts["accounts"] - counts["assigned"]
                                 ).columns().items():
        setattr(run, name, value)
    run.progress_done = run.progress_total = len(PHASES)
    run.control_totals = counts
    run.note = (f"{counts['assigned']} assigned, {counts['messages']} messages queued, "
                f"{counts['cases_weighted']} cases to call queues, {counts['visits']} visits, "
                f"{counts['placement_reviews']} placements to review")
    run.duration_ms = int((time.monotonic() - t0) * 1000)
    session.commit()
    log.info("strategies run", extra={k: v for k, v in counts.items() if k != "versions"})
    return run
