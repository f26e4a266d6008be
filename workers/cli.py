"""``flask workers …``: run a worker (with the cron scheduler), list schedules, show health."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os

import click
from flask import current_app
from flask.cli import AppGroup
from redis import Redis

from portal.ops.worker_health import collect_health
from portal.queues import QUEUE_NAMES, enqueue, get_queue
from portal.schedules import SCHEDULES
from workers.context import set_app
from workers.jobs import events as events_jobs
from workers.schedule import run_cron_scheduler
from workers.worker import WORKER_CLASSES

workers = AppGroup("workers", help="RQ workers, schedules and their health.")


def _worker_connection() -> Redis:
    # a connection of its own: RQ raises the socket timeout for its blocking dequeue
    return Redis.from_url(current_app.config["REDIS_URL"])


def _cron_process(redis_url: str, parent_pid: int) -> None:
    run_cron_scheduler(Redis.from_url(redis_url), parent_pid=parent_pid)


@workers.command("run")
@click.option("--queues", "-q", "queue_opts", multiple=True,
              help="Queues to listen to, in priority order (repeat or comma-separate). "
                   "Default: all.")
@click.option("--with-scheduler", is_flag=True,
              help="Also run the cron scheduler (periodic jobs) and RQ's scheduler (retries).")
@click.option("--burst", is_flag=True, help="Quit when the queues are empty.")
@click.option("--worker-class", type=click.Choice(["default", "fork", "simple"]),
              default="default", show_default=True,
              help="default: events jobs in process, other queues in a forked work horse; "
                   "fork: a work horse per job; simple: every job in process.")
@click.option("--name", default=None, help="Worker name (default: random).")
@click.option("--max-jobs", type=int, default=None, help="Quit after this many jobs.")
@click.option("--no-recover", is_flag=True,
              help="Do not enqueue the start-up relay and stale-delivery sweep.")
def run_command(queue_opts, with_scheduler, burst, worker_class, name, max_jobs, no_recover):
    """Run an RQ worker in the foreground (``make run`` uses --with-scheduler)."""

    app = current_app._get_current_object()
    set_app(app)
    names = [n.strip() for opt in queue_opts for n in opt.split(",") if n.strip()]
    names = names or list(QUEUE_NAMES)
    unknown = [n for n in names if n not in QUEUE_NAMES]
    if unknown:
        raise click.BadParameter(f"unknown queue(s) {', '.join(unknown)}; known: "
                                 f"{', '.join(QUEUE_NAMES)}", param_hint="--queues")
    connection = _worker_connection()
    queues = [get_queue(n, connection) for n in names]

    if not no_recover and "events" in names:
        # pick up what a previous (killed) worker or a Redis outage left behind
        try:
            enqueue("events", events_jobs.recover, connection=connection)
        except Exception:  # Redis not up yet: the worker waits for it; the schedule recovers
            logging.getLogger(__name__).warning("could not enqueue the start-up recovery",
                                                exc_info=True)

    cron = None
    if with_scheduler and not burst:
        ctx = multiprocessing.get_context("fork")
        cron = ctx.Process(target=_cron_process, name="cron-scheduler",
                           args=(app.config["REDIS_URL"], os.getpid()), daemon=True)
        cron.start()

    worker = WORKER_CLASSES[worker_class](queues, connection=connection, name=name)
    try:
        worker.work(burst=burst, with_scheduler=with_scheduler, max_jobs=max_jobs,
                    logging_level=str(app.config.get("LOG_LEVEL", "INFO")).upper())
    finally:
        if cron is not None and cron.is_alive():
            cron.terminate()
            cron.join(10)


@workers.command("schedules")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def schedules_command(as_json):
    """List the periodic jobs (name, cron or interval, queue, timeout, next run)."""

    rows = []
    for s in SCHEDULES:
        row = s.as_dict()
        nxt = s.next_run()
        row["next_run"] = nxt.isoformat() if nxt else None
        rows.append(row)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'NAME':<22} {'WHEN':<16} {'QUEUE':<13} {'TIMEOUT':>7}  NEXT RUN (UTC)  FUNCTION")
    for r in rows:
        when = r["cron"] or f"every {r['interval']}s"
        click.echo(f"{r['name']:<22} {when:<16} {r['queue']:<13} {r['timeout']:>7}  "
                   f"{(r['next_run'] or '-')[:19]:<15} {r['func']}")


@workers.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status_command(as_json):
    """Workers, schedulers, queue depths and registries, outbox backlog."""

    health = collect_health()
    if as_json:
        click.echo(json.dumps(health, indent=2, default=str))
        return
    click.echo(f"status: {'OK' if health['ok'] else 'PROBLEMS'}  ({health['checked_at']})")
    for problem in health["problems"]:
        click.echo(f"  ! {problem}")
    click.echo("\nqueues:")
    click.echo(f"  {'NAME':<13} {'DEPTH':>6} {'STARTED':>8} {'FAILED':>7} {'SCHED':>6} "
               f"{'WORKERS':>8}")
    for q in health["queues"]:
        click.echo(f"  {q['name']:<13} {q['depth']:>6} {q['started']:>8} {q['failed']:>7} "
                   f"{q['scheduled']:>6} {q['workers']:>8}")
    click.echo("\nworkers:")
    if not health["workers"]:
        click.echo("  (none)")
    for w in health["workers"]:
        click.echo(f"  {w['name']} {w['hostname']}:{w['pid']} {w['state']} "
                   f"queues={','.join(w['queues'])} heartbeat {w['heartbeat_age_s']}s ago "
                   f"{'alive' if w['alive'] else 'DEAD'} ok={w['successful_jobs']} "
                   f"failed={w['failed_jobs']}")
    click.echo("\ncron schedulers:")
    if not health["cron_schedulers"]:
        click.echo("  (none)")
    for c in health["cron_schedulers"]:
        click.echo(f"  {c['name']} heartbeat {c['heartbeat_age_s']}s ago "
                   f"{'alive' if c['alive'] else 'DEAD'}{' (active)' if c['holds_lock'] else ''}")
    events = health["events"]
    if events:
        d = events["deliveries"]
        click.echo(f"\nevents: {events['unrelayed']} unrelayed; deliveries pending={d['pending']}"
                   f" failed={d['failed']} dead={d['dead']} delivered={d['delivered']}")


commands: list = [workers]
