"""``flask cases recompute-priorities``: store the queue priority of every open case (after a
bulk load, a change of weights, or from cron while no worker job does it).
``flask cases refresh-customer <cif>``: fetch one customer from W4 and LOS now."""

from __future__ import annotations

import json

import click
from flask import current_app

from portal.cases import queue
from portal.cases.views import bp
from portal.extensions import db


@bp.cli.command("recompute-priorities")
def recompute_priorities_command() -> None:
    """Recompute cases.priority for every open case (portal.cases.queue)."""

    changed = queue.recompute_priorities(db.session)
    db.session.commit()
    click.echo(f"{changed} case priorities changed")


@bp.cli.command("refresh-customer")
@click.argument("cif")
def refresh_customer_command(cif: str) -> None:
    """Fetch one customer's latest data from W4 and LOS now and apply it (as the case view's
    button does, without the rate limits; audited as "cli"). Prints the outcome as JSON; exits
    1 when no source could be applied."""
    from integrations.refresh import refresh_customer
    from portal import audit
    from portal.logging import get_correlation_id

    outcome = refresh_customer(current_app._get_current_object(), cif,
                               correlation_id=get_correlation_id())
    audit.record(db.session, "cli", "customer.refresh", "customer", cif, after={
        "outcome": outcome.status,
        "sources": [{"integration": s.integration, "status": s.status, "run_id": s.run_id,
                     "changes": len(s.changes)} for s in outcome.sources]})
    db.session.commit()
    click.echo(json.dumps(outcome.as_dict(), indent=2, ensure_ascii=False, default=str))
    if not outcome.applied:
        raise SystemExit(1)
