"""In a real browser, the supervisor sees an agent's ride, not the impossible positions his
phone also sent (California, Russia, New York, Jakarta): the route panel says how far he really
went and how many points were left out, the agent list counts them, and the review list says
why a check-in at an implausible position waits for a decision; at 1440 px and on a phone."""
# ruff: noqa: F811 - the field fixtures are imported from tests.field_support

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.factories import DEFAULT_PASSWORD, working_hour
from tests.field_support import (  # noqa: F401 - fixtures
    GPS_KEY,
    HCMC,
    field_team,
    gps_sandbox,
    iso,
    make_device_token,
    make_field_agent,
    make_field_customer,
    offset,
)

pytestmark = pytest.mark.e2e

IMPOSSIBLE = [(37.42, -122.08), (60.0, 30.0), (40.72, -74.0), (-6.11, 106.68)]


@pytest.fixture
def offline_map(app):
    saved = {k: app.config.get(k) for k in ("MAP_TILE_URL", "FIELD_MAP_REFRESH_SECONDS")}
    app.config.update(MAP_TILE_URL="http://127.0.0.1:9/tiles/{z}/{x}/{y}.png",
                      FIELD_MAP_REFRESH_SECONDS=1)
    yield
    app.config.update(saved)


def test_the_supervisor_sees_the_ride_and_the_count_of_impossible_positions(
        page, live_server, sign_in, screenshot, offline_map, db, client, frozen_now,
        field_team, make_user, make_field_agent, make_device_token, make_field_customer):
    from portal import clock
    from portal.field import visits

    now = frozen_now(working_hour())
    make_user(role="supervisor", username="sup_gps", team_id=field_team.id)
    agent = make_field_agent(full_name="Le Van Hung")
    token = {"Authorization": f"Bearer {make_device_token(agent)}"}
    start = now - timedelta(minutes=12)
    points = [{"lat": la, "lon": lo, "accuracy_m": 8,
               "recorded_at": iso(start + timedelta(seconds=30 * i))}
              for i, (la, lo) in enumerate(offset(*HCMC, north_m=100 * i) for i in range(20))]
    points += [{"lat": la, "lon": lo, "accuracy_m": 5,
                "recorded_at": iso(start + timedelta(seconds=150 * n + 95))}
               for n, (la, lo) in enumerate(IMPOSSIBLE)]
    assert client.post("/api/v1/field/locations", json={"points": points},
                       headers=token).get_json()["flagged"] == 4
    # a check-in 15 km from where the phone was a minute before
    other = make_field_agent(full_name="Pham Thi Mai")
    other_token = {"Authorization": f"Bearer {make_device_token(other)}"}
    visit = visits.plan_visit(db.session, cif=make_field_customer(other, *HCMC).cif,
                              agent_id=other.id, planned_for=clock.bank_today(),
                              planned_by=other)
    db.session.commit()
    la, lo = offset(*HCMC, north_m=15_000)
    client.post("/api/v1/field/locations", headers=other_token, json={
        "lat": la, "lon": lo, "accuracy_m": 8, "recorded_at": iso(now - timedelta(minutes=1))})
    client.post(f"/api/v1/field/visits/{visit.id}/checkin", headers=other_token,
                json={"lat": HCMC[0], "lon": HCMC[1], "accuracy_m": 8})

    sign_in(page, "sup_gps", DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/field/map")
    field_map = page.get_by_test_id("field-map")
    expect(field_map).to_have_attribute("data-ready", "1")
    row = page.get_by_test_id("agent-row").filter(has_text="Le Van Hung")
    expect(row.get_by_test_id("agent-implausible")).to_have_text(
        "4 implausible points today, left out")
    row.click()
    expect(field_map).to_have_attribute("data-route", str(agent.id))
    panel = page.get_by_test_id("route-panel")
    expect(panel).to_contain_text("1.90 km travelled · 20 points")
    expect(page.get_by_test_id("route-implausible")).to_have_text(
        "4 implausible points left out (outside the service area or too fast)")
    screenshot(page, "gps-implausible-map-1440")
    page.set_viewport_size({"width": 390, "height": 844})
    expect(panel).to_be_visible()
    screenshot(page, "gps-implausible-map-390")

    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}/field/reviews")
    expect(page.get_by_test_id("review-implausible")).to_have_text(
        "implausible position: moved too fast")
    screenshot(page, "gps-implausible-review-1440")
    page.set_viewport_size({"width": 390, "height": 844})
    expect(page.get_by_test_id("review-implausible")).to_be_visible()
    screenshot(page, "gps-implausible-review-390")


def test_ops_see_a_gps_run_whose_counts_add_up(
        page, live_server, sign_in, screenshot, db, client, frozen_now, gps_sandbox, make_user,
        make_field_agent, make_device_token):
    from integrations.gps import forward
    from integrations.gps.client import GpsClient

    now = frozen_now(working_hour())
    make_user(role="ops", username="ops_gps")
    token = {"Authorization": f"Bearer {make_device_token(make_field_agent())}"}
    start = now - timedelta(minutes=20)
    points = [{"lat": la, "lon": lo, "accuracy_m": 8,
               "recorded_at": iso(start + timedelta(seconds=30 * i))}
              for i, (la, lo) in enumerate(offset(*HCMC, north_m=60 * i) for i in range(17))]
    points += [{"lat": la, "lon": lo, "accuracy_m": 5,
                "recorded_at": iso(start + timedelta(seconds=100 * n + 7))}
               for n, (la, lo) in enumerate(IMPOSSIBLE[:3])]
    client.post("/api/v1/field/locations", json={"points": points}, headers=token)
    run_id = forward.forward_pending(db.session, client=GpsClient(gps_sandbox.url, GPS_KEY))[
        "run_id"]

    sign_in(page, "ops_gps", DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/ops/integrations/runs/{run_id}")
    counts = {name: page.get_by_test_id(f"run-count-{name}").locator(".stat-value")
              for name in ("extracted", "valid", "loaded", "unchanged", "quarantined",
                           "failed")}
    shown = {name: int(value.inner_text()) for name, value in counts.items()}
    assert shown == {"extracted": 20, "valid": 17, "loaded": 17, "unchanged": 0,
                     "quarantined": 3, "failed": 0}
    expect(page.get_by_test_id("quarantine-reason")).to_have_count(3)
    screenshot(page, "gps-run-1440")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "gps-run-390")
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}/ops/integrations")
    expect(page.get_by_test_id("backlog-GPS").filter(has_text="Implausible positions")
           ).to_contain_text("3")
    screenshot(page, "gps-ops-card-1440")
