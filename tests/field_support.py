"""Fixtures and helpers of the field-work tests (imported by those test modules)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from integrations.sandbox._api import Faults, ServerThread
from portal import clock

_seq = itertools.count(1)
HCMC = (10.7769, 106.7009)
GPS_KEY = "test-gps-key"


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def ago(seconds: float = 0) -> datetime:
    return clock.now().replace(microsecond=0) - timedelta(seconds=seconds)


@pytest.fixture
def field_team(make_team, make_user):
    supervisor = make_user(role="supervisor")
    team = make_team(name=f"Field team {next(_seq)}", supervisor_id=supervisor.id)
    supervisor.team_id = team.id
    return team


@pytest.fixture
def make_field_agent(db, make_user, field_team):
    def make(**kwargs):
        kwargs.setdefault("team_id", field_team.id)
        return make_user(role="field_agent", **kwargs)

    return make


@pytest.fixture
def make_device_token(db):
    """``make_device_token(agent)`` → the raw Bearer token of a device token for ``agent``."""
    from portal.permissions import tokens as api_tokens

    def make(agent, scopes=("api.locations", "api.visits")):
        _, raw = api_tokens.create_token(db.session, name=f"phone {agent.username}",
                                         scopes=list(scopes), user=agent, created_by="test")
        db.session.commit()
        return raw

    return make


@pytest.fixture
def make_field_customer(db, make_customer, make_loan):
    """A customer with an address at (lat, lon), an overdue loan and a case held by
    ``agent`` as field agent."""
    from portal.models import Address, Case

    def make(agent, lat: float, lon: float, *, dpd: int = 45, priority: int = 50, **kwargs):
        customer = make_customer(**kwargs)
        make_loan(customer, dpd=dpd)
        db.session.add(Address(cif=customer.cif, type="HOME", line1=f"{next(_seq)} Le Loi",
                               district="District 1", city="Ho Chi Minh", lat=lat, lon=lon,
                               is_primary=True, source_system="T24"))
        db.session.add(Case(cif=customer.cif, assigned_field_agent_id=agent.id,
                            status="open", priority=priority, max_dpd=dpd,
                            total_overdue=Decimal("5000000")))
        db.session.commit()
        return customer

    return make


@pytest.fixture
def gps_sandbox(app):
    """The sandbox GPS system on a free port, configured as the portal's GPS system."""
    from integrations.sandbox import gps_server

    server = ServerThread(gps_server.create_app(api_key=GPS_KEY, faults=Faults()))
    saved = {k: app.config.get(k) for k in ("GPS_API_URL", "GPS_API_KEY",
                                             "GPS_TIMEOUT_SECONDS")}
    app.config.update(GPS_API_URL=server.url, GPS_API_KEY=GPS_KEY, GPS_TIMEOUT_SECONDS=2)
    with server:
        yield server
    app.config.update(saved)


def offset(lat: float, lon: float, north_m: float, east_m: float = 0.0) -> tuple[float, float]:
    from integrations.sandbox.phone_sim import _offset

    return _offset(lat, lon, north_m, east_m)
