"""Issue 19, finding 15: the push integrations (payment webhook, CTI webhook, phone positions)
show their live traffic on the ops cards: accepted and refused requests, last received,
latency. A refusal rate over the threshold degrades the card and raises an alert; silence in
the bank's working hours raises "no traffic"."""
# ruff: noqa: F811 - the field fixtures are imported from tests.field_support

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, time, timedelta
from decimal import Decimal

import pytest

from portal import clock
from portal.ops import alerts
from portal.signing import signed_headers
from tests.factories import working_hour
from tests.field_support import (  # noqa: F401 - fixtures
    HCMC,
    field_team,
    iso,
    make_device_token,
    make_field_agent,
)
from tests.integration.test_ops_alerts import HEALTHY_WORKERS
from tests.integration.test_payments_webhook import notification
from tests.integration.test_payments_webhook import post as post_payment

CTI_SECRET = "test-cti-secret"


@pytest.fixture
def cti_secret(app, monkeypatch):
    monkeypatch.setitem(app.config, "CTI_WEBHOOK_SECRETS", CTI_SECRET)


def post_cti(client, *, secret: str = CTI_SECRET):
    at = clock.now()
    body = json.dumps({"event_id": uuid.uuid4().hex, "type": "call.started",
                       "occurred_at": at.astimezone(UTC).isoformat(),
                       "data": {"call_id": uuid.uuid4().hex[:12], "phone": "0977000111",
                                "direction": "inbound",
                                "started_at": at.isoformat()}}).encode()
    return client.post("/api/v1/cti/events", data=body, headers=signed_headers(secret, body))


def figure(page: str, testid: str) -> str:
    match = re.search(rf'data-testid="{testid}"[^>]*>([^<]*)<', page)
    assert match, f"{testid} is not on the page"
    return match.group(1).strip()


def state(page: str, name: str) -> str:
    return re.search(rf'data-testid="card-{name}" data-state="(\w+)"', page).group(1)


def test_webhooks_and_positions_show_live_traffic_and_refusals_degrade_and_alert(
        app, db, client, login_as, cti_secret, make_customer, make_loan, make_field_agent,
        make_device_token):
    loan = make_loan(make_customer(), dpd=10, due_amount=Decimal("10000000"))
    for n in (1, 2):
        assert post_payment(client, notification(loan, n=n)).status_code == 201
    for n in range(6):  # signed with a secret the portal does not know
        assert post_payment(client, notification(loan, n=10 + n),
                            secret="wrong").status_code == 401
    for _ in range(3):
        assert post_cti(client).status_code == 200
    assert post_cti(client, secret="wrong").status_code == 401
    token = make_device_token(make_field_agent())
    point = {"lat": HCMC[0], "lon": HCMC[1], "accuracy_m": 8,
             "recorded_at": iso(clock.now() - timedelta(seconds=5))}
    assert client.post("/api/v1/field/locations", json=point,
                       headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.post("/api/v1/field/locations", json=point).status_code == 401

    login_as("ops")
    page = client.get("/ops/integrations").get_data(as_text=True)
    for name, accepted, refused in (("PAYMENTS", "2", "6"), ("CTI", "3", "1"),
                                    ("GPS", "1", "1")):
        assert f'data-testid="traffic-{name}"' in page, name
        assert (figure(page, f"accepted-{name}"), figure(page, f"refused-{name}")) == \
            (accepted, refused), name
        assert figure(page, f"last-received-{name}") == "just now", name
    # 6 of 8 refused: over the 10% threshold with at least 5 refused
    assert state(page, "PAYMENTS") == "degraded"
    assert "75% of requests refused" in figure(page, "reason-PAYMENTS")
    # 1 of 4 refused: over 10%, but a single refusal is no alarm
    assert state(page, "CTI") != "degraded"
    assert page.count("aria-label=\"Payments: requests per hour, last 24 hours\"") == 1

    outcome = alerts.evaluate(db.session, health=HEALTHY_WORKERS, send=False)
    keys = {a.key for a in outcome.raised}
    assert "push_refused:PAYMENTS" in keys
    assert not keys & {"push_refused:CTI", "push_refused:GPS"}


def test_silence_in_working_hours_raises_no_traffic(app, db, client, login_as, cti_secret,
                                                    frozen_now, monkeypatch):
    monkeypatch.setitem(app.config, "BANK_WORKING_DAYS", "Mon,Tue,Wed,Thu,Fri,Sat,Sun")
    monkeypatch.setitem(app.config, "BANK_WORKING_HOURS", "08:00-17:30")
    monkeypatch.setitem(app.config, "TRAFFIC_SILENCE_MINUTES", "PAYMENTS=60,CTI=30,GPS=30")
    working = working_hour()  # 10:30 bank time
    frozen_now(working - timedelta(minutes=50))
    assert post_cti(client).status_code == 200

    frozen_now(working)
    login_as("ops")
    page = client.get("/ops/integrations").get_data(as_text=True)
    assert state(page, "CTI") == "degraded"
    assert "no traffic for 50 min in working hours" in figure(page, "reason-CTI").lower()
    assert state(page, "PAYMENTS") != "degraded"  # never heard from: unknown, not silent
    outcome = alerts.evaluate(db.session, health=HEALTHY_WORKERS, send=False)
    assert "no_traffic:CTI" in {a.key for a in outcome.raised}
    assert "no_traffic:PAYMENTS" not in {a.key for a in outcome.raised}

    # after hours, silence is expected: the card recovers, the alert clears
    frozen_now(clock.bank_datetime(clock.bank_today(working), time(22, 0)))
    page = client.get("/ops/integrations").get_data(as_text=True)
    assert state(page, "CTI") != "degraded"
    cleared = alerts.evaluate(db.session, health=HEALTHY_WORKERS, send=False)
    assert "no_traffic:CTI" in {a.key for a in cleared.cleared}
