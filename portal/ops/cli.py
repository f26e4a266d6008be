"""``flask check invariants``: the truths that tie the tables together (portal/ops/invariants.py),
checked over the whole database. Prints each violation with its ids; exits 1 when there is one
(2 when a check could not run).

``flask ops …``: the group of operations on the whole system; portal/cli.py adds the commands of
the areas that have them (portal/vault: backup, restore, verify-backup, mask-copy)."""

from __future__ import annotations

import json
import sys

import click
from flask.cli import AppGroup

from portal import clock
from portal.extensions import db
from portal.ops import invariants

check = AppGroup("check", help="Check the database: the truths that tie the tables together.")


@check.command("invariants")
@click.option("--only", "names", multiple=True,
              type=click.Choice([i.name for i in invariants.INVARIANTS]),
              help="check only this invariant (repeatable)")
@click.option("--record/--no-record", default=True, show_default=True,
              help="store the result for the ops page")
@click.option("--json", "as_json", is_flag=True, help="print the results as JSON")
def check_invariants(names: tuple[str, ...], record: bool, as_json: bool) -> None:
    """Check every invariant; print the violations with their ids."""
    started = clock.now()
    results = invariants.check_all(db.session, now=started, names=list(names) or None)
    if record:
        invariants.record_run(db.session, results, trigger="cli", started_at=started)
        db.session.commit()
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        for r in results:
            state = "ERROR" if r.error else ("ok" if not r.violations else "VIOLATED")
            click.echo(f"{state:9} {r.name}: {r.description} "
                       f"({r.violations} violation(s), {r.seconds:.2f} s)")
            if r.error:
                click.echo(f"          {r.error}")
            for row in r.sample:
                click.echo("          " + ", ".join(f"{k}={v}" for k, v in row.items()))
            if r.violations > len(r.sample):
                click.echo(f"          … and {r.violations - len(r.sample)} more")
        total = sum(r.violations for r in results)
        click.echo(f"{total} violation(s) in {len(results)} invariant(s)")
    if any(r.error for r in results):
        sys.exit(2)
    if any(r.violations for r in results):
        sys.exit(1)


ops = AppGroup("ops", help="Operations on the whole system: backups, restores, masked copies.")

commands: list = [check, ops]
