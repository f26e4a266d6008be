"""``flask payments reconcile [--date YYYY-MM-DD]``: reconcile a business date now.
``flask payments import-camt FILE``: import a camt.053/054 file (portal.payments.camt_import)."""

from __future__ import annotations

import json
import sys

import click
from flask import current_app

from integrations.payments.camt import CamtError
from portal.extensions import db
from portal.payments.camt_import import import_camt, outcome_totals, reason_text
from portal.payments.reconcile import reconcile_business_date
from portal.payments.views import bp


@bp.cli.command("reconcile")
@click.option("--date", "day", default=None, help="business date (default: yesterday, bank zone)")
def reconcile_command(day: str | None) -> None:
    """Reconcile one business date with the payment system's transactions report."""
    summary = reconcile_business_date(db.session, current_app.config, day, trigger="manual")
    click.echo(json.dumps(summary, indent=2))


@bp.cli.command("import-camt")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def import_camt_command(path: str, as_json: bool) -> None:
    """Import an ISO 20022 camt.053 or camt.054 file: prints the count per outcome, the
    control-sum checks and every transaction not accepted. Exits 1 only for a file that
    cannot be read."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        result = import_camt(db.session, data, filename=path.rsplit("/", 1)[-1], source="cli")
    except (OSError, CamtError) as exc:
        db.session.rollback()
        click.echo(f"Cannot import {path}: {exc}", err=True)
        sys.exit(1)
    db.session.commit()
    if as_json:
        click.echo(json.dumps(_as_json(result), indent=2, default=str))
        return
    click.echo(f"{result.kind} {result.version or ''} message {result.message_id or '-'}: "
               f"{result.transactions} transactions"
               + (f" (file already imported as #{result.repeat_of_id})"
                  if result.repeat_of_id else ""))
    for total in outcome_totals(result):
        click.echo(f"  {total['outcome']:<10} {total['count']:>6}  {total['amounts']}")
    failed = [c for c in result.checks if not c["ok"]]
    click.echo(f"control sums: {len(result.checks) - len(failed)} of {len(result.checks)} agree"
               + ("" if result.controls_ok else " - the file's totals do not match its "
                  "entries: nothing was applied"))
    for check in failed:
        click.echo(f"  MISMATCH {check['scope']}: {check['name']}: the file states "
                   f"{check['expected']}, its entries give {check['actual']}")
    for row in result.rows:
        if row.outcome in ("refused", "skipped"):
            click.echo(f"  {row.outcome:<8} {row.location:<8} {row.reference or '-'} "
                       f"{row.amount if row.amount is not None else '-'} "
                       f"{row.currency or ''}: {reason_text(row.reason)}"
                       + (f" ({row.message})" if row.message else ""))


def _as_json(result) -> dict:
    return {
        "import_id": result.id, "kind": result.kind, "version": result.version,
        "message_id": result.message_id, "repeat_of": result.repeat_of_id,
        "transactions": result.transactions, "accepted": result.accepted,
        "duplicates": result.duplicates, "refused": result.refused, "skipped": result.skipped,
        "controls_ok": result.controls_ok, "checks": result.checks,
        "rows": [{"location": r.location, "reference": r.reference, "amount": r.amount,
                  "currency": r.currency, "loan": r.account_number, "outcome": r.outcome,
                  "reason": r.reason, "message": r.message} for r in result.rows],
    }
