"""``flask events …``: replay, retry dead letters, tail the outbox, relay or sweep by hand."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta

import click
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal import clock
from portal.events.catalog import get_event_type
from portal.events.relay import relay_pending, replay, retry_dead, sweep_stale
from portal.extensions import db
from portal.models.events import Event

events = AppGroup("events", help="The event bus: outbox, deliveries, dead letters.")

_DURATION = re.compile(r"^(\d+)([smhd])$")


def parse_since(value: str) -> datetime:
    """``2026-01-31``, ``2026-01-31T08:00:00+07:00`` (UTC when no offset), or a duration
    back from now: ``30m``, ``6h``, ``2d``."""
    match = _DURATION.match(value.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit] * amount
        return clock.running_now() - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter("use an ISO date/time or a duration like 30m, 6h, 2d") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@events.command("replay")
@click.option("--since", required=True, help="ISO date/time or duration back (30m, 6h, 2d).")
@click.option("--type", "event_type", default=None, help="Only this event type.")
def replay_command(since, event_type):
    """Relay again the events since a time: new subscribers get them, pending/failed
    deliveries get a new job; delivered ones are never handled twice."""

    if event_type:
        get_event_type(event_type)
    result = replay(db.session, parse_since(since), event_type=event_type)
    click.echo(f"replayed {result['events']} events: {result['new_deliveries']} new deliveries, "
               f"{result['requeued']} pending deliveries re-enqueued")


@events.command("retry-dead")
@click.option("--subscriber", default=None, help="Only this subscriber.")
@click.option("--type", "event_type", default=None, help="Only this event type.")
@click.option("--id", "delivery_ids", type=int, multiple=True, help="Only these delivery ids.")
def retry_dead_command(subscriber, event_type, delivery_ids):
    """Give dead deliveries a new job (after fixing the cause)."""

    count = retry_dead(db.session, subscriber=subscriber, event_type=event_type,
                       delivery_ids=list(delivery_ids) or None)
    click.echo(f"re-enqueued {count} dead deliveries")


@events.command("relay")
def relay_command():
    """Relay pending events now (what the relay job does)."""

    n_events, n_jobs = relay_pending(db.session)
    click.echo(f"relayed {n_events} events, enqueued {n_jobs} deliveries")


@events.command("sweep")
@click.option("--older-than", type=float, default=None,
              help="Seconds (default EVENTS_STALE_AFTER).")
def sweep_command(older_than):
    """Re-enqueue deliveries whose job was lost."""

    click.echo(f"re-enqueued {sweep_stale(db.session, older_than=older_than)} deliveries")


def _line(event, deliveries) -> str:
    status = " ".join(f"{d.subscriber.rsplit('.', 1)[-1]}={d.status}"
                      + (f"({d.attempts})" if d.attempts > 1 else "") for d in deliveries)
    return (f"{event.seq:>8} {event.occurred_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} "
            f"{event.type:<22} {event.aggregate_type}:{event.aggregate_id} "
            f"cid={event.correlation_id or '-'} "
            f"{'relayed' if event.relayed_at else 'UNRELAYED'} {status}\n"
            f"         {json.dumps(event.payload, ensure_ascii=False)}")


@events.command("tail")
@click.option("-n", "--lines", default=20, show_default=True, help="Events to show first.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events.")
@click.option("--type", "event_type", default=None, help="Only this event type.")
@click.option("--interval", default=1.0, show_default=True, help="Polling interval (seconds).")
def tail_command(lines, follow, event_type, interval):
    """Print the latest events (and their deliveries); with -f, follow new ones."""

    def fetch(after_seq=None, newest=None):
        query = select(Event).options(selectinload(Event.deliveries))
        if event_type:
            query = query.where(Event.type == event_type)
        if after_seq is not None:
            query = query.where(Event.seq > after_seq).order_by(Event.seq).limit(1000)
            rows = db.session.execute(query).scalars().all()
        else:
            rows = db.session.execute(query.order_by(Event.seq.desc()).limit(newest)).scalars()
            rows = list(reversed(rows.all()))
        out = [(event.seq, _line(event, event.deliveries)) for event in rows]
        db.session.rollback()
        return out

    last = 0
    for seq, line in fetch(newest=lines):
        click.echo(line)
        last = seq
    while follow:
        time.sleep(interval)
        for seq, line in fetch(after_seq=last):
            click.echo(line)
            last = seq


commands: list = [events]
