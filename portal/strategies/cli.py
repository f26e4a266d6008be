"""``flask strategies run [--date YYYY-MM-DD]``: the strategies' daily run now, recorded as an
ops run like the scheduled one (after a missed night, or from cron while no worker runs it)."""

from __future__ import annotations

from datetime import date

import click
from sqlalchemy.orm import Session

from portal.extensions import db
from portal.strategies.run import run_and_record
from portal.strategies.views import bp


@bp.cli.command("run")
@click.option("--date", "business_date", default=None,
              help="the business date (YYYY-MM-DD); default the bank's today")
def run_command(business_date: str | None) -> None:
    """Assign every eligible account and create the steps' work (idempotent per date)."""
    day = date.fromisoformat(business_date) if business_date else None
    run = run_and_record(db.session, day, trigger="manual",
                         progress_session_factory=lambda: Session(db.engine))
    click.echo(run.note)
