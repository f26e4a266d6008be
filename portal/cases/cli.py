"""``flask cases recompute-priorities``: store the queue priority of every open case (after a
bulk load, a change of weights, or from cron while no worker job does it).
(``flask cases refresh-customer`` is portal/refresh/cli.py's.)"""

from __future__ import annotations

import click

from portal.cases import queue
from portal.cases.views import bp
from portal.extensions import db


@bp.cli.command("recompute-priorities")
def recompute_priorities_command() -> None:
    """Recompute cases.priority for every open case (portal.cases.queue)."""

    changed = queue.recompute_priorities(db.session)
    db.session.commit()
    click.echo(f"{changed} case priorities changed")
