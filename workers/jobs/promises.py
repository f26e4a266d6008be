"""Job of the promise workflow: mark broken promises, and judge payment plans — instalments
missed, plans broken (portal/cases/plans.py) — (scheduled hourly, see workers/schedule.py).

Idempotent: running it twice, or late, marks each short promise once; a run at any time of the
day uses the bank's business date of that moment.
"""

from __future__ import annotations

import logging
from datetime import datetime

from portal import clock
from portal.cases.plans import judge_plans
from portal.cases.promises import mark_broken_promises
from portal.extensions import db
from workers.context import job

log = logging.getLogger(__name__)


@job
def run_broken_promises(now: str | datetime | None = None) -> dict:
    """Mark promises broken whose date is before today (bank zone), and plan instalments
    missed (plans broken after their allowed misses); commits. ``now`` (ISO 8601 or datetime)
    replays a given moment, e.g. a missed night."""
    if isinstance(now, str):
        now = datetime.fromisoformat(now)
    today = clock.bank_today(now)
    try:
        count = mark_broken_promises(db.session, today)
        plans = judge_plans(db.session, today)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    log.info("broken promises marked", extra={"business_date": today.isoformat(),
                                               "broken": count,
                                               "instalments_missed": plans["missed"],
                                               "plans_broken": plans["broken"]})
    return {"business_date": today.isoformat(), "broken": count,
            "instalments_missed": plans["missed"], "plans_broken": plans["broken"]}
