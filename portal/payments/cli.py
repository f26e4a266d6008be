"""``flask payments reconcile [--date YYYY-MM-DD]``: reconcile a business date now."""

from __future__ import annotations

import json
from datetime import date

import click

from portal.payments.views import bp


@bp.cli.command("reconcile")
@click.option("--date", "day", default=None, help="business date (default: yesterday, bank zone)")
def reconcile_command(day: str | None) -> None:
    """Reconcile one business date with the payment system's transactions report."""
    from workers.jobs.payments import run_payments_reconciliation

    summary = run_payments_reconciliation(date.fromisoformat(day) if day else None, "manual")
    click.echo(json.dumps(summary, indent=2))


@bp.cli.command("import-camt")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def import_camt_command(path: str) -> None:
    """Import an ISO 20022 camt.054 file of payment notifications (stored once each)."""
    from integrations.payments.camt import import_camt054
    from portal.extensions import db

    with open(path, "rb") as fh:
        result = import_camt054(db.session, fh.read())
    click.echo(json.dumps(result.as_dict(), indent=2))
