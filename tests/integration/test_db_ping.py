"""The pool pings a connection only after it has rested (portal/db_ping.py): a busy server pays no
round trip per request, and connections that outlived a database restart are replaced."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text

from portal import db_ping


@pytest.fixture
def engine(app):
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"], pool_size=1, max_overflow=0)
    db_ping.install(engine, after_idle=0.3)
    pings = []
    real_ping = engine.dialect.do_ping

    def counting_ping(dbapi_connection):
        pings.append(time.monotonic())
        return real_ping(dbapi_connection)

    engine.dialect.do_ping = counting_ping  # this engine's own dialect object
    engine.pings = pings
    yield engine
    engine.dispose()


def backend_pid(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(text("SELECT pg_backend_pid()"))


def test_a_connection_back_at_once_is_not_pinged(engine):
    first = backend_pid(engine)
    for _ in range(5):
        assert backend_pid(engine) == first
    assert engine.pings == []


def test_a_rested_connection_is_pinged_once(engine):
    first = backend_pid(engine)
    time.sleep(0.4)
    assert backend_pid(engine) == first
    assert len(engine.pings) == 1
    assert backend_pid(engine) == first  # straight back: no second ping
    assert len(engine.pings) == 1


def test_a_connection_killed_while_resting_is_replaced_without_an_error(app, engine):
    first = backend_pid(engine)
    killer = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with killer.connect() as conn:
        assert conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    killer.dispose()
    time.sleep(0.4)
    second = backend_pid(engine)  # no OperationalError: the ping found it dead first
    assert second != first
    assert len(engine.pings) == 1
    assert backend_pid(engine) == second


def test_the_apps_engine_has_the_rested_ping(app):
    from portal.extensions import db

    with app.app_context():
        listeners = list(db.engine.pool.dispatch.checkout)
    assert any(fn.__module__ == db_ping.__name__ for fn in listeners)
    assert "pool_pre_ping" not in app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {})
