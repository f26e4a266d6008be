"""KPI pre-aggregation (scheduled every 10 minutes, see workers/schedule.py).

Idempotent: recomputes the closed days of the last week and of the current and previous month
that are not yet stored, plus the last two closed days (late payments, late CTI records), and
refreshes every team's roll-rate/cure snapshots for today's periods.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from portal import clock
from portal.extensions import db
from portal.kpi import operations as kpis
from portal.models import Team
from workers.context import job

log = logging.getLogger(__name__)
RECHECK_DAYS = 2


@job
def aggregate_kpis() -> dict:
    """Fill kpi_agent_daily up to yesterday (bank zone) and refresh portfolio snapshots;
    commits."""
    today = clock.bank_today()
    yesterday = today - timedelta(days=1)
    month_start = kpis.period_dates("month", today)[0]
    week_start = kpis.period_dates("week", today)[0]
    first_needed = min(month_start, week_start)
    since, through = kpis.aggregated_range(db.session)
    if through is None or since > first_needed:
        first = first_needed
    else:
        first = min(through + timedelta(days=1), yesterday - timedelta(days=RECHECK_DAYS - 1))
    rows = kpis.aggregate_days(db.session, first, yesterday) if first <= yesterday else 0
    starts = {kpis.period_dates(p, today)[0] for p in kpis.PERIODS}
    team_ids = list(db.session.scalars(select(Team.id)))
    for team_id in team_ids:
        for start in starts:
            kpis.refresh_snapshot(db.session, team_id, start, today)
    db.session.commit()
    result = {"days_from": first.isoformat(), "days_to": yesterday.isoformat(), "rows": rows,
              "snapshots": len(team_ids) * len(starts)}
    log.info("KPI aggregates refreshed", extra=result)
    return result
