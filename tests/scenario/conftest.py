"""Fixtures of the day-in-the-life scenario and its fault tests: every external system's sandbox
on a free port, the portal configured for them (live server for what the systems post), the
day's clock frozen at 10:00 of today's bank date, short event retry intervals, and a subscriber
that fails on purpose for one poisoned payment (the one dead letter a day may have)."""

from __future__ import annotations

from datetime import time

import pytest
import requests

from integrations.sandbox._api import ServerThread
from tests.scenario.harness import (
    API_KEYS,
    POISON_SUBSCRIBER,
    SECRETS,
    Day,
    Systems,
    register_poison_subscriber,
)


@pytest.fixture
def systems(app, live_server, monkeypatch):
    """The sandboxes of W4, LOS, payments, call centre and GPS, each on a free port, and the
    portal's configuration pointing at them (restored after the test)."""
    from integrations.sandbox import (
        callcentre_server,
        gps_server,
        los_server,
        payments_server,
        w4_server,
    )
    from integrations.sandbox._api import Faults

    portfolio: dict[str, list[dict]] = {"cards": [], "applications": []}
    servers = {  # W4 and LOS serve the day's portfolio once the day sets it (and resets them)
        "W4": ServerThread(w4_server.create_app(lambda: portfolio["cards"],
                                                api_key=API_KEYS["W4"], faults=Faults())),
        "LOS": ServerThread(los_server.create_app(lambda: portfolio["applications"],
                                                  token=API_KEYS["LOS"], faults=Faults())),
        "PAYMENTS": ServerThread(payments_server.create_app(
            portal_url=live_server.url, secret=SECRETS["PAYMENTS"],
            api_key=API_KEYS["PAYMENTS"], knobs=payments_server.Knobs(), seed=11, senders=4)),
        "CTI": ServerThread(callcentre_server.create_app(
            agents=[], portal_url=live_server.url, secret=SECRETS["CTI"],
            api_key=API_KEYS["CTI"], faults=Faults(), traffic=False,
            timing={"ring": 0.1, "talk": 0.2, "wrap": 0.1})),
        "GPS": ServerThread(gps_server.create_app(api_key=API_KEYS["GPS"], faults=Faults())),
    }
    for server in servers.values():
        server.__enter__()
    config = {
        "W4_API_URL": servers["W4"].url, "W4_API_KEY": API_KEYS["W4"],
        "LOS_API_URL": servers["LOS"].url, "LOS_API_TOKEN": API_KEYS["LOS"],
        "PAYMENTS_API_URL": servers["PAYMENTS"].url, "PAYMENTS_API_KEY": API_KEYS["PAYMENTS"],
        "CALLCENTRE_URL": servers["CTI"].url, "CALLCENTRE_API_KEY": API_KEYS["CTI"],
        "CTI_WEBHOOK_SECRETS": SECRETS["CTI"],
        "GPS_API_URL": servers["GPS"].url, "GPS_API_KEY": API_KEYS["GPS"],
        "GPS_TIMEOUT_SECONDS": 2,
        "SYNC_PAGE_SIZE": 200, "SYNC_HTTP_RETRIES": 1, "SYNC_RETRIES": 1,
        "SYNC_RETRY_BACKOFF": 0.05, "EVENTS_RETRY_INTERVALS": [1, 1],
        "BREAKER_COOLDOWN_SECONDS": 1,
    }
    for key, value in config.items():
        monkeypatch.setitem(app.config, key, value)
    try:
        yield Systems(servers, live_server.url, portfolio)
    finally:
        servers["PAYMENTS"].app.extensions["payments_sandbox"].stop()
        for server in servers.values():
            server.__exit__(None, None, None)


@pytest.fixture
def poison(app):
    """The scenario's own subscriber: fails for the poisoned payment only (a dead letter)."""
    from portal.events.subscribers import unregister

    register_poison_subscriber()
    yield POISON_SUBSCRIBER
    unregister(POISON_SUBSCRIBER)


@pytest.fixture
def day_factory(app, db, redis_client, systems, poison, frozen_now, make_user, make_team,
                ws_action_codes, tmp_path, monkeypatch):
    """``day_factory(sizes)`` → a :class:`Day` ready to run, with the clock at 10:00 today
    (bank zone): inside every contact window whatever time the test runs."""
    from portal import clock

    today = clock.bank_today()
    morning = clock.bank_datetime(today, time(10, 0))
    frozen_now(morning)
    monkeypatch.setitem(app.config, "T24_INBOX_DIR", str(tmp_path / "t24"))

    def make(sizes) -> Day:
        return Day(app, db, systems, sizes, inbox=tmp_path / "t24", today=today,
                   morning=morning, make_user=make_user, make_team=make_team,
                   freeze=frozen_now)

    yield make
    # nothing of the day may be left queued for the next test's workers
    requests.post(systems.url("PAYMENTS") + "/_sandbox/reset", timeout=10)
