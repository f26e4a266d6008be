"""``flask cases refresh-customer <cif>``: the case view's refresh from the command line."""

from __future__ import annotations

import json

import click
from flask import current_app

from integrations.refresh import refresh_customer
from portal import audit
from portal.cases.views import bp
from portal.extensions import db
from portal.logging import get_correlation_id


@bp.cli.command("refresh-customer")
@click.argument("cif")
def refresh_customer_command(cif: str) -> None:
    """Fetch one customer's latest data from T24, W4 and LOS now and apply it (as the case
    view's button does, without the rate limits; audited as "cli"). Prints the outcome as JSON;
    exits 1 when no source could be applied."""
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
