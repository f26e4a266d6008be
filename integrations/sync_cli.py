"""``flask sync t24|w4|los [--date YYYY-MM-DD] [--full] [--enqueue]``: run a bank sync now (in
this process, with its retries) or enqueue it for a worker; ``flask sync status`` shows the
newest run of each integration with its progress."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup

from integrations.sync import INTEGRATIONS, SyncError, progress, run_sync, trigger
from portal.extensions import db

sync = AppGroup("sync", help="Bank synchronisation: T24 files, W4 cards, LOS applications.")


def _make(name: str):
    @sync.command(name.lower(), help=f"Sync {name} now (or --enqueue it for a worker).")
    @click.option("--date", "business_date", type=click.DateTime(["%Y-%m-%d"]), default=None,
                  help="T24: only the file sets of this business date.")
    @click.option("--full", is_flag=True,
                  help="W4/LOS: everything from the start, not from the stored cursor; "
                       "T24: load the newest full set again.")
    @click.option("--enqueue", is_flag=True, help="Enqueue on the integrations queue instead.")
    @click.option("--retries", type=int, default=None, help="Whole-run retries (SYNC_RETRIES).")
    def command(business_date, full, enqueue, retries):
        day = business_date.date() if business_date else None
        if enqueue:
            click.echo(trigger(name, full=full, business_date=day))
            return
        try:
            outcome = run_sync(name, full=full, business_date=day, trigger="manual",
                               app=current_app._get_current_object(), retries=retries)
        except SyncError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(json.dumps(outcome.as_dict(), indent=2, default=str))

    return command


for _name in INTEGRATIONS:
    _make(_name)


@sync.command("status", help="The newest run of each integration and its progress.")
def status_command():
    for name in INTEGRATIONS:
        click.echo(f"{name}: {json.dumps(progress(db.session, name))}")


commands = [sync]
