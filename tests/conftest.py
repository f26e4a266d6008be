"""Fixtures: one real PostgreSQL database migrated once per session (per xdist worker), emptied
after each test that touched it (only the tables that hold rows), a real Redis on a dedicated DB
number (flushed), the app, a client, role login helpers, factory fixtures and a live server for
Playwright. ``TEST_CLOCK`` sets the instant the clock starts at (tests/clock.py)."""

from __future__ import annotations

import re
import tempfile
import threading
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import text
from werkzeug.serving import make_server

from portal import create_app
from portal.config import TestConfig
from tests import clock as test_clock
from tests.database import SEED_SCHEMA, empty_tables, keep_seeded_rows
from tests.settings import service_urls, start_embedded_for_workers, stop_embedded, xdist_worker

CLOCK_HEADER = test_clock.apply()  # before any server or worker is started: they inherit it

pytest_plugins = ["tests.factories", "tests.fixtures_workspace", "tests.fixtures_workflow",
                  "tests.messages_support"]


TRANSLATIONS = Path(__file__).resolve().parents[1] / "portal" / "translations"


def pytest_report_header(config):
    return CLOCK_HEADER


def pytest_configure(config):
    # pages read the compiled catalogue: a stale one would fail tests far from the cause
    for catalogue in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"):
        compiled = catalogue.with_suffix(".mo")
        if not compiled.exists() or compiled.stat().st_mtime < catalogue.stat().st_mtime:
            pytest.exit(f"{compiled} is missing or older than its .po: run `make translations` "
                        "(make test does it)", returncode=4)
    # xdist's controlling process: start the embedded servers once, before the workers
    if not xdist_worker() and getattr(config.option, "numprocesses", None):
        start_embedded_for_workers()


def pytest_unconfigure(config):
    stop_embedded()


def _reset_schema(url: str) -> None:
    """Empty the test database completely, so the migrations start from nothing."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SEED_SCHEMA} CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def app():
    db_url, redis_url = service_urls()
    _reset_schema(db_url)
    app = create_app(
        TestConfig,
        {"SQLALCHEMY_DATABASE_URI": db_url, "REDIS_URL": redis_url,
         "RATELIMIT_STORAGE_URI": redis_url,
         # a test that has just committed looks for the relay job at once
         # (servers the tests start as processes keep the default: in the background)
         "EVENTS_RELAY_REQUEST_BACKGROUND": False,
         # the document store of the session: a directory of its own, not the instance's
         "DOCUMENT_STORAGE_DIR": tempfile.mkdtemp(prefix="crm-test-documents-")},
    )
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()
        from portal.extensions import db

        keep_seeded_rows(db.engine)
    yield app
    with app.app_context():
        from portal.extensions import db

        db.engine.dispose()


@pytest.fixture
def redis_client(app):
    client = Redis.from_url(app.config["REDIS_URL"])
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def db(app, redis_client):
    """The Flask-SQLAlchemy handle inside an app context; every table is emptied afterwards
    (tests.database: only the tables that hold rows)."""
    from portal.extensions import db as _db

    ctx = app.app_context()
    ctx.push()
    try:
        yield _db
    finally:
        _db.session.rollback()
        _db.session.remove()
        empty_tables(_db.engine, _db.metadata)
        # process-local caches of what was just truncated (ops pause flags, seconds-long)
        from integrations.control import clear_pause_cache

        clear_pause_cache()
        ctx.pop()


@pytest.fixture
def client(app, db):
    return app.test_client()


CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def csrf_token_from(html: str) -> str:
    match = CSRF_META.search(html)
    assert match, "page has no csrf-token meta tag"
    return match.group(1)


@pytest.fixture
def csrf_token(client):
    """A CSRF token valid for ``client``'s session (read from the login page's meta tag)."""

    def get(path: str = "/auth/login") -> str:
        return csrf_token_from(client.get(path).get_data(as_text=True))

    return get


@pytest.fixture
def login(client):
    """Log ``user`` in on ``client`` through the session (no form post, no rate limit)."""

    def do(user):
        with client.session_transaction() as session:
            session["_user_id"] = str(user.get_id())
            session["_fresh"] = True
        return user

    return do


@pytest.fixture
def login_as(login, make_user):
    """Create a user with ``role`` and log it in: ``login_as("supervisor")``."""

    def do(role: str, **kwargs):
        return login(make_user(role=role, **kwargs))

    return do


class LiveServer:
    def __init__(self, app):
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self):
        self._thread.start()

    def stop(self):
        self._server.shutdown()
        self._thread.join(timeout=5)


@pytest.fixture(scope="session")
def live_server(app):
    server = LiveServer(app)
    server.start()
    yield server
    server.stop()
