"""Where the test suite finds PostgreSQL and Redis: TEST_DATABASE_URL / TEST_REDIS_URL when set
(CI points them at the machine's services), else the embedded servers under instance/test.

``make test`` runs the suite on several pytest-xdist workers. Each worker has a database of its
own (the named database with ``_gw0``, ``_gw1``… appended, created when missing) and a Redis
database number of its own (TEST_REDIS_DB, 15, counting down), so no test sees another's rows,
keys or queues. The embedded servers are started once, by the controlling process, before the
workers exist (start_embedded_for_workers); the workers inherit their URLs.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from portal.config import normalize_database_url

ROOT = Path(__file__).resolve().parent.parent
EMBEDDED_DIR = ROOT / "instance" / "test"
EMBEDDED_DBNAME = "collection_crm_test"


def xdist_worker() -> str:
    """"gw0", "gw1"… in a pytest-xdist worker, "" otherwise."""
    return os.environ.get("PYTEST_XDIST_WORKER", "")


def worker_index() -> int:
    worker = xdist_worker()
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0


TEST_REDIS_DB = int(os.environ.get("TEST_REDIS_DB", "15")) - worker_index()


_started: list = []


def stop_embedded() -> None:
    """Stop the embedded servers this process started (no-op with real services)."""
    from portal import embedded

    while _started:
        embedded.stop(_started.pop())


def start_embedded_for_workers() -> None:
    """In the controlling process of an xdist run: start the embedded servers the URLs do not
    name, and hand them to the workers through the environment."""
    if os.environ.get("TEST_DATABASE_URL") and os.environ.get("TEST_REDIS_URL"):
        return
    from portal import embedded

    services = embedded.start(EMBEDDED_DIR, dbname=EMBEDDED_DBNAME)
    _started.append(services)
    os.environ.setdefault("TEST_DATABASE_URL", services.database_url)
    os.environ.setdefault("TEST_REDIS_URL", services.redis_url)


def _worker_database(url: str, worker: str) -> str:
    """``url`` with the worker's own database, created when missing."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(url.replace("postgresql+psycopg://", "postgresql://"))
    name = f"{params.get('dbname') or 'postgres'}_{worker}"
    maintenance = make_conninfo(**{**params, "dbname": "postgres"})
    with psycopg.connect(maintenance, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    base, sep, query = url.partition("?")
    return base.rsplit("/", 1)[0] + f"/{name}" + (sep + query if sep else "")


@cache
def service_urls() -> tuple[str, str]:
    """(database URL with the psycopg driver, redis URL on this process's test DB number)."""
    db_url = os.environ.get("TEST_DATABASE_URL")
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not db_url or not redis_url:
        from portal import embedded

        services = embedded.start(EMBEDDED_DIR, dbname=EMBEDDED_DBNAME)
        _started.append(services)
        db_url = db_url or services.database_url
        redis_url = redis_url or services.redis_url
    if xdist_worker():
        db_url = _worker_database(db_url, xdist_worker())
    base, _, query = redis_url.partition("?")
    if base.count("/") >= 3:  # redis://host:port/N -> replace N
        base = base.rsplit("/", 1)[0]
    redis_url = f"{base}/{TEST_REDIS_DB}" + (f"?{query}" if query else "")
    return normalize_database_url(db_url), redis_url
