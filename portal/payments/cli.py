"""``flask payments reconcile [--date YYYY-MM-DD]``: reconcile a business date now."""

from __future__ import annotations

import json

import click
from flask import current_app

from portal.extensions import db
from portal.payments.camt_import import import_camt054
from portal.payments.reconcile import reconcile_business_date
from portal.payments.views import bp


@bp.cli.command("reconcile")
@click.option("--date", "day", default=None, help="business date (default: yesterday, bank zone)")
def reconcile_command(day: str | None) -> None:
    """Reconcile one business date with the payment system's transactions report."""
    summary = reconcile_business_date(db.session, current_app.config, day, trigger="manual")
    click.echo(json.dumps(summary, indent=2))


@bp.cli.command("import-camt")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def import_camt_command(path: str) -> None:
    """Import an ISO 20022 camt.054 file of payment notifications (stored once each)."""
    with open(path, "rb") as fh:
        result = import_camt054(db.session, fh.read())
    click.echo(json.dumps(result.as_dict(), indent=2))
