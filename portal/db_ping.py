"""Pessimistic disconnect handling for the connection pool, without a round trip per request.

SQLAlchemy's ``pool_pre_ping`` sends a ping every time a connection leaves the pool: a quarter of
the database round trips of a payment webhook. Here a connection is pinged only when it has rested
in the pool longer than ``DB_PING_AFTER_IDLE_SECONDS`` (default 1 s; 0 pings every checkout, as
``pool_pre_ping``). A PostgreSQL restart or failover takes longer than that, so every connection
that outlived one has rested long enough to be pinged; the first dead one found invalidates the
whole pool (as ``pool_pre_ping`` does) and the checkout gets a new connection. A connection
killed on its own while busy (``pg_terminate_backend``) fails its next statement, and SQLAlchemy
invalidates the pool then.
"""

from __future__ import annotations

import time

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine

RESTED_SINCE = "portal_rested_since"
DEFAULT_AFTER_IDLE = 1.0


def install(engine: Engine, after_idle: float = DEFAULT_AFTER_IDLE) -> None:
    """Ping ``engine``'s connections on checkout once they have rested ``after_idle`` seconds."""

    @event.listens_for(engine, "connect")
    def _fresh(dbapi_connection, record) -> None:
        record.info.pop(RESTED_SINCE, None)  # a new connection needs no ping

    @event.listens_for(engine, "checkin")
    def _rest(dbapi_connection, record) -> None:
        record.info[RESTED_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_rested(dbapi_connection, record, proxy) -> None:
        rested_since = record.info.get(RESTED_SINCE)
        if rested_since is None or time.monotonic() - rested_since < after_idle:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:  # whatever the cause, it is unusable
            raise exc.InvalidatePoolError(
                f"connection found dead after resting in the pool: {error}") from error
