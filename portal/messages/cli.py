"""``flask messages dispatch``: send the messages that are due now, by hand (what the
``messages.dispatch`` schedule does every minute), and ``flask messages retry-failed`` to put
every failed message back in the queue (audited, as the ops page's button)."""

from __future__ import annotations

import json

import click
from sqlalchemy import select

from portal import clock
from portal.extensions import db
from portal.messages import dispatch, operations
from portal.messages.views import bp
from portal.models import Message


@bp.cli.command("dispatch")
@click.option("--limit", default=200, show_default=True, help="messages per batch")
def dispatch_command(limit: int) -> None:
    """Send the queued messages that are due (SMS, e-mail; letters left for the print batch)."""
    counts = dispatch.dispatch_due(db.session, clock.now(), limit)
    click.echo(json.dumps(counts, sort_keys=True))


@bp.cli.command("retry-failed")
@click.option("--channel", type=click.Choice(["sms", "email", "letter"]))
def retry_failed_command(channel: str | None) -> None:
    """Queue every failed message again (attempts reset; audited)."""
    query = select(Message.id).where(Message.status == "failed")
    if channel:
        query = query.where(Message.channel == channel)
    ids = list(db.session.scalars(query))
    for message_id in ids:
        operations.retry_failed(db.session, message_id, "cli")
    db.session.commit()
    click.echo(f"{len(ids)} message(s) queued again")
