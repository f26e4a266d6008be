"""Fault hooks for the scenario day (tests/scenario/harness.py ``Day.run(hooks)``) and the ops
actions that recover from them, called the way the ops page and the runbook
(docs/operations.md, "Recovering from faults") call them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import psycopg
from redis import Redis

from tests.integration.test_events_support import wait_for
from tests.scenario.harness import Day


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.05, what: str = "it"):
    """``wait_for`` with the scenario's patience (a fault day is slower than a unit test)."""
    return wait_for(predicate, timeout=timeout, interval=interval, what=what)


# -- ops actions ----------------------------------------------------------------------------------

def ops_action(day: Day, integration: str, action: str, run_id: int | None = None) -> str:
    """What the ops page's action button does (audited), as the day's ops user."""
    from portal.models import IntegrationRun, User
    from portal.ops import actions as ops_actions

    session = day.db.session
    user = session.query(User).filter_by(role="ops").first() or day.make_user(role="ops")
    run = session.get(IntegrationRun, run_id) if run_id is not None else None
    return ops_actions.trigger(session, integration, action, user, run=run)


def force_closed(day: Day, system: str) -> None:
    """Ops force the system's breaker closed (failures forgotten), audited."""
    from integrations.control import force
    from portal.models import User

    session = day.db.session
    user = session.query(User).filter_by(role="ops").first() or day.make_user(role="ops")
    force(system, "closed", user, session=session, reason="system back (scenario)")
    session.commit()


def last_run(day: Day, integration: str, kind: str | None = None):
    query = "SELECT id, status, errors FROM integration_runs WHERE integration = :i"
    if kind:
        query += " AND kind = :k"
    row = day.sql(query + " ORDER BY id DESC LIMIT 1", i=integration, k=kind).first()
    day.db.session.rollback()
    return row


def events_cli(day: Day, *args: str) -> str:
    """``flask events …`` as ops type it."""
    from click.testing import CliRunner
    from flask.cli import ScriptInfo

    from portal.events.cli import events

    result = CliRunner().invoke(events, list(args), obj=ScriptInfo(create_app=lambda: day.app))
    assert result.exit_code == 0, result.output
    return result.output


def sweep_until_done(day: Day) -> None:
    """``flask events sweep --older-than 0`` until it finds nothing (500 per call)."""
    while not events_cli(day, "sweep", "--older-than", "0").startswith("re-enqueued 0 "):
        pass


# -- an own Redis server (never the machine's) ----------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnRedis:
    """A redis-server of the test's own on a free port, without persistence: a restart loses
    every queued job, as a crashed Redis without AOF would."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = Redis.from_url(self.url)
        wait_until(lambda: _pings(client), timeout=20, what="redis-server to answer")
        client.close()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self, down_for: float = 0.5) -> None:
        self.kill()
        time.sleep(down_for)
        self.start()

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def _pings(client: Redis) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


def _redis_server() -> str:
    from portal.embedded import redis_server_binary

    return redis_server_binary()


# -- PostgreSQL: end the loader's backend ---------------------------------------------------------

# the loader's backend inside the load's transaction: copying into, or merging from, its
# staging tables (stg_<entity>)
LOADER_QUERY = ("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL "
                "AND (query ILIKE 'COPY %' OR query ILIKE '%stg\\_%')")


def terminate_loader_when_copying(dsn: str, timeout: float = 120) -> threading.Thread:
    """A thread that waits for the T24 loader's backend to be in the load's one transaction
    (copying a batch or merging it) and ends it with pg_terminate_backend, as a restart or a network
    cut would. ``thread.killed`` is the pid it terminated."""

    def watch() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                row = conn.execute(LOADER_QUERY).fetchone()
                if row:
                    conn.execute("SELECT pg_terminate_backend(%s)", (row[0],))
                    thread.killed = row[0]
                    return
                time.sleep(0.002)

    thread = threading.Thread(target=watch, daemon=True, name="pg-terminator")
    thread.killed = None
    thread.start()
    return thread


# -- worker processes -----------------------------------------------------------------------------

def start_worker(day: Day, *args: str) -> subprocess.Popen:
    """``flask workers run`` in its own process group, with the scenario's subscribers."""
    from tests.integration.test_events_support import start_worker as start
    from tests.scenario.harness import SUPPORT

    return start(day.app, *args, EVENT_SUBSCRIBER_MODULES=SUPPORT, EVENTS_STALE_AFTER="1")


def busy_worker(day: Day, timeout: float = 10.0) -> str:
    """Wait until a worker is in the middle of a job; returns that job's id."""
    from rq import Worker

    connection = Redis.from_url(day.app.config["REDIS_URL"])
    try:
        return wait_until(lambda: next((w.get_current_job_id() for w in
                                        Worker.all(connection=connection)
                                        if w.get_current_job_id()), None),
                          timeout=timeout, interval=0.001, what="a worker busy with a job")
    finally:
        connection.close()


def sigkill(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    if proc.stdout:
        proc.stdout.close()
