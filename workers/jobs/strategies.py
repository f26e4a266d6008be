"""The strategies' daily run (portal.strategies.run): scheduled after the night's syncs, also on
demand from the strategies page. Idempotent per business date."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from portal.extensions import db
from portal.strategies.run import run_and_record
from workers.context import job


@job
def run_strategies(business_date: str | None = None, trigger: str = "schedule",
                   user_id: int | None = None) -> dict:
    """Run the strategies for ``business_date`` (ISO; default the bank's today); the run and
    its progress are an ops run (STRATEGIES)."""
    day = date.fromisoformat(business_date) if business_date else None
    run = run_and_record(db.session, day, trigger=trigger, user_id=user_id,
                         progress_session_factory=lambda: Session(db.engine))
    return {"run_id": run.id, **(run.control_totals or {})}
