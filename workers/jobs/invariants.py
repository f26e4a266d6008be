"""The nightly truth check (portal/schedules.py ``ops.invariants``), and the ops page's
"Check now"."""

from __future__ import annotations

import logging

from portal.extensions import db
from portal.ops import invariants
from workers.context import job

log = logging.getLogger(__name__)


@job
def check_invariants(trigger: str = "schedule", user_id: int | None = None) -> dict:
    run = invariants.run_and_record(db.session, trigger=trigger, triggered_by_id=user_id)
    result = {"run_id": run.id, "violations": run.violations, "errors": run.errors}
    if run.violations or run.errors:
        log.warning("invariants violated", extra=result)
    return result
