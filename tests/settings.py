"""Where the test suite finds PostgreSQL and Redis: TEST_DATABASE_URL / TEST_REDIS_URL when set
(CI points them at the machine's services), else the embedded servers under instance/test."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from portal.config import normalize_database_url

ROOT = Path(__file__).resolve().parent.parent
TEST_REDIS_DB = int(os.environ.get("TEST_REDIS_DB", "15"))


_started: list = []


def stop_embedded() -> None:
    """Stop the embedded servers this test session started (no-op with real services)."""
    from portal import embedded

    while _started:
        embedded.stop(_started.pop())


@cache
def service_urls() -> tuple[str, str]:
    """(database URL with the psycopg driver, redis URL on the dedicated test DB number)."""
    db_url = os.environ.get("TEST_DATABASE_URL")
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not db_url or not redis_url:
        from portal import embedded

        services = embedded.start(ROOT / "instance" / "test", dbname="collection_crm_test")
        _started.append(services)
        db_url = db_url or services.database_url
        redis_url = redis_url or services.redis_url
    base, _, query = redis_url.partition("?")
    if base.count("/") >= 3:  # redis://host:port/N -> replace N
        base = base.rsplit("/", 1)[0]
    redis_url = f"{base}/{TEST_REDIS_DB}" + (f"?{query}" if query else "")
    return normalize_database_url(db_url), redis_url
