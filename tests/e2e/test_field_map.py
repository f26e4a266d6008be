"""The supervisor's field map in a real browser, with no tile server reachable: agent markers
(stale ones greyed), clustered customers, today's visits; a marker moves when the phone
simulator posts a new point; clicking an agent draws their route."""
# ruff: noqa: F811 - the field fixtures are imported from tests.field_support

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from integrations.sandbox.phone_sim import PhoneSimulator, Walker, street_path
from tests.factories import DEFAULT_PASSWORD
from tests.field_support import (  # noqa: F401 - fixtures
    HCMC,
    ago,
    field_team,
    iso,
    make_device_token,
    make_field_agent,
    make_field_customer,
    offset,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def offline_map(app):
    """No tile server: a URL nothing listens on. Poll every second."""
    saved = {k: app.config.get(k) for k in ("MAP_TILE_URL", "FIELD_MAP_REFRESH_SECONDS")}
    app.config.update(MAP_TILE_URL="http://127.0.0.1:9/tiles/{z}/{x}/{y}.png",
                      FIELD_MAP_REFRESH_SECONDS=1)
    yield
    app.config.update(saved)


@pytest.fixture
def field_day(db, client, field_team, make_user, make_field_agent, make_device_token,
              make_field_customer):
    from portal import clock
    from portal.field import visits

    supervisor = make_user(role="supervisor", username="sup_map", team_id=field_team.id)
    names = ["Le Van Hung", "Pham Thi Mai", "Do Quoc Bao"]
    agents = [make_field_agent(full_name=n) for n in names]
    tokens = [make_device_token(a) for a in agents]
    # 90 customers around three districts, across the buckets
    customers = []
    for i in range(90):
        agent = agents[i % 3]
        centre = offset(*HCMC, north_m=(i % 3 - 1) * 2500, east_m=((i % 3) - 1) * 1800)
        lat, lon = offset(*centre, north_m=(i * 337 % 2400) - 1200, east_m=(i * 523 % 2400) - 1200)
        customers.append(make_field_customer(agent, lat, lon, dpd=[0, 15, 45, 75, 120][i % 5],
                                             priority=i % 100, name=f"Khach Hang {i:02d}"))
    # positions: agent 0 rode 3 km this morning (route), agent 1 is live, agent 2 is stale
    start = ago(2 * 3600)
    path = [offset(*HCMC, north_m=120 * k, east_m=60 * (k % 5)) for k in range(25)]
    points = [{"lat": la, "lon": lo, "accuracy_m": 6,
               "recorded_at": iso(start + timedelta(minutes=4 * k))}
              for k, (la, lo) in enumerate(path)]
    points.append({"lat": path[-1][0], "lon": path[-1][1], "accuracy_m": 5,
                   "recorded_at": iso(ago(60))})
    auth = [{"Authorization": f"Bearer {t}"} for t in tokens]
    assert client.post("/api/v1/field/locations", json={"points": points},
                       headers=auth[0]).status_code == 200
    # (10 minutes ago: it rides to its first customer meanwhile; a phone is never at two
    # places kilometres apart within seconds — such a position is implausible)
    la, lo = offset(*HCMC, north_m=-2500, east_m=-1800)
    client.post("/api/v1/field/locations", json={"lat": la, "lon": lo, "accuracy_m": 8,
                                                 "recorded_at": iso(ago(600))}, headers=auth[1])
    la, lo = offset(*HCMC, north_m=2500, east_m=1800)
    client.post("/api/v1/field/locations", json={"lat": la, "lon": lo, "accuracy_m": 8,
                                                 "recorded_at": iso(ago(3 * 3600))},
                headers=auth[2])
    # today's visits: planned (agents 0 and 2), verified and waiting for review (agent 1)
    today = clock.bank_today()
    plan = [(agents[0], customers[0], None), (agents[2], customers[2], None),
            (agents[1], customers[1], 40), (agents[1], customers[4], 900)]
    for agent, customer, north in plan:
        v = visits.plan_visit(db.session, cif=customer.cif, agent_id=agent.id,
                              planned_for=today, planned_by=supervisor)
        db.session.commit()
        if north is not None:
            address = visits.visit_address(db.session, customer.cif)
            la, lo = offset(float(address.lat), float(address.lon), north_m=north)
            client.post(f"/api/v1/field/visits/{v.id}/checkin",
                        json={"lat": la, "lon": lo, "accuracy_m": 10}, headers=auth[1])
    return {"supervisor": supervisor, "agents": agents, "tokens": tokens}


def marker_position(page, agent_id: int):
    return page.evaluate(
        "id => document.getElementById('field-map')._fieldMap.agentLatLng(id)", agent_id)


def test_supervisor_map_offline_moves_markers_and_draws_routes(
        page, live_server, sign_in, screenshot, offline_map, field_day):
    agents = field_day["agents"]
    failed_tiles = []
    page.on("requestfailed", lambda r: failed_tiles.append(r.url) if "/tiles/" in r.url
            else None)
    external = []
    page.on("request", lambda r: external.append(r.url)
            if not r.url.startswith((live_server.url, "data:", "http://127.0.0.1:9/")) else None)
    sign_in(page, "sup_map", DEFAULT_PASSWORD)
    # through the sidebar: a boosted navigation (htmx swaps the page in and runs its script)
    page.get_by_role("link", name="Field map").click()
    expect(page).to_have_url(f"{live_server.url}/field/map")
    field_map = page.get_by_test_id("field-map")
    expect(field_map).to_have_attribute("data-ready", "1")
    expect(field_map).to_have_attribute("data-customers", "90")

    # agents: three markers, the stale one greyed, last-seen in the side list
    expect(page.locator(".agent-marker")).to_have_count(3)
    expect(page.locator(".agent-marker.stale")).to_have_count(1)
    expect(page.get_by_test_id("agent-row")).to_have_count(3)
    expect(page.get_by_test_id("agent-list")).to_contain_text("last seen")
    # customers clustered by the server for the first view, which came beside folium's script
    # (one request: the browser settled on the view the server fitted for its size)
    assert page.locator(".marker-cluster").count() >= 1
    asked = page.evaluate("() => performance.getEntriesByType('resource')"
                          ".map(e => e.name).filter(n => n.includes('/field/map/customers.json'))")
    assert len(asked) == 1 and "size=" in asked[0], asked
    drawn = int(field_map.get_attribute("data-customers-drawn"))
    assert 0 < drawn <= 90
    # a cluster opens from the keyboard: the map zooms into it and asks for that view
    zoom = page.evaluate("() => document.getElementById('field-map')._fieldMap.map.getZoom()")
    with page.expect_response(lambda r: "/field/map/customers.json" in r.url
                              and "zoom=" in r.url) as answer:
        page.locator(".marker-cluster").first.focus()
        page.keyboard.press("Enter")
    assert answer.value.ok
    assert page.evaluate(
        "() => document.getElementById('field-map')._fieldMap.map.getZoom()") > zoom
    body = answer.value.json()
    shown = sum(c[2] for c in body["clusters"]) + len(body["customers"])
    assert shown == body["in_view"] and body["total"] == 90
    expect(field_map).to_have_attribute("data-customers-drawn", str(body["in_view"]))
    page.evaluate("z => document.getElementById('field-map')._fieldMap.map.setZoom(z)", zoom)
    expect(page.locator(".visit-pin")).to_have_count(4)
    expect(page.locator(".visit-pin.verified")).to_have_count(1)
    expect(page.locator(".visit-pin.manual_pending")).to_have_count(1)
    expect(page.get_by_test_id("visit-counts")).to_contain_text("Today's visits: 4")
    assert failed_tiles, "the tile server should be unreachable in this test"
    assert external == [], f"no request may leave the portal (CDN): {external}"
    screenshot(page, "field-map-offline")

    # the phone simulator posts a new point for agent 1: the marker moves without a reload
    page.evaluate("window.__sameDocument = true")
    before = marker_position(page, agents[1].id)
    target = offset(before[0], before[1], north_m=60, east_m=40)  # a few seconds' walk
    walker = Walker(agents[1].username, field_day["tokens"][1],
                    street_path([tuple(before), target]))
    walker.advance(10_000)  # well along the way
    sim = PhoneSimulator(live_server.url, [walker])
    assert sim.step(60) == [200]
    moved = walker.last
    page.wait_for_function(
        "([id, lat]) => { const p = document.getElementById('field-map')._fieldMap"
        ".agentLatLng(id); return p && Math.abs(p[0] - lat) < 1e-5; }",
        arg=[agents[1].id, moved[0]], timeout=10_000)
    after = marker_position(page, agents[1].id)
    assert after != before
    assert page.evaluate("window.__sameDocument === true")  # moved without a reload

    # the route of agent 0 on demand
    page.get_by_test_id("agent-row").filter(has_text="Le Van Hung").click()
    expect(field_map).to_have_attribute("data-route", str(agents[0].id))
    expect(page.locator("path.route-line")).to_have_count(1)
    expect(page.get_by_test_id("route-panel")).to_contain_text("km travelled")
    screenshot(page, "field-map-route")

    # filter to one agent: only their marker stays, no reload
    page.get_by_test_id("filter-agent").select_option(str(agents[1].id))
    expect(page.locator(".agent-marker")).to_have_count(1)
    expect(field_map).to_have_attribute("data-customers", "30")


def test_field_agent_day_checks_in_with_the_browser_position(
        page, live_server, sign_in, screenshot, offline_map, db, bank_hours, client, field_team,
        make_field_agent, make_device_token, make_field_customer, ws_action_codes):
    from portal import clock
    from portal.field import visits

    agent = make_field_agent(username="field_day", full_name="Nguyen Van Tuan")
    token = make_device_token(agent)
    home = make_field_customer(agent, *HCMC, name="Tran Van Binh", dpd=62, priority=70)
    other = make_field_customer(agent, *offset(*HCMC, 1500, 900), name="Le Thi Hoa", dpd=95)
    for i in range(5):
        make_field_customer(agent, *offset(*HCMC, 400 * i - 800, 700 - 300 * i),
                            name=f"Khach Hang Gan {i}", dpd=[10, 40, 70, 100, 0][i],
                            priority=60 - i * 10)
    for customer in (home, other):
        visits.plan_visit(db.session, cif=customer.cif, agent_id=agent.id,
                          planned_for=clock.bank_today(), planned_by=agent)
    db.session.commit()
    la, lo = offset(*HCMC, -600, -300)
    client.post("/api/v1/field/locations", json={"lat": la, "lon": lo, "accuracy_m": 7,
                                                 "recorded_at": iso(ago(20))},
                headers={"Authorization": f"Bearer {token}"})

    # the phone's browser stands 60 m from the first customer's door
    context = page.context
    context.grant_permissions(["geolocation"], origin=live_server.url)
    la, lo = offset(*HCMC, 60)
    context.set_geolocation({"latitude": la, "longitude": lo, "accuracy": 12})
    sign_in(page, "field_day", DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/field/visits")
    expect(page.get_by_test_id("agent-map")).to_have_attribute("data-ready", "1")
    expect(page.get_by_test_id("visit-item")).to_have_count(2)
    expect(page.get_by_test_id("suggestion")).to_have_count(7)
    item = page.get_by_test_id("visit-item").filter(has_text="Tran Van Binh")
    with page.expect_navigation():
        item.get_by_role("button", name="Check in here").click()
    item = page.get_by_test_id("visit-item").filter(has_text="Tran Van Binh")
    expect(item).to_contain_text("Checked in")
    expect(item).to_contain_text("Verified")
    expect(item.get_by_test_id("outcome-form")).to_be_visible()
    item.get_by_label("Outcome").select_option(label="Visit at home, promise to pay")
    item.get_by_label("Promised amount (VND)").fill("2500000")
    item.get_by_label("Pay by").fill((clock.bank_today() + timedelta(days=3)).isoformat())
    item.get_by_label("Notes").fill("Met Mr Binh at home; pays on Friday.")
    screenshot(page, "field-agent-day")
    with page.expect_navigation():
        item.get_by_role("button", name="Save outcome").click()
    expect(page.get_by_test_id("visit-item").filter(has_text="Tran Van Binh")).to_contain_text(
        "Completed")


def test_supervisor_reviews_a_visit_that_could_not_be_verified(
        page, live_server, sign_in, screenshot, offline_map, field_day, db):
    from portal.models import AuditLog, Visit

    sign_in(page, "sup_map", DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/field/map")
    page.get_by_test_id("reviews-link").click()
    expect(page.get_by_test_id("review-row")).to_have_count(1)
    row = page.get_by_test_id("review-row")
    expect(row).to_contain_text("m")  # the distance
    screenshot(page, "field-reviews")
    row.get_by_test_id("reject").click()  # without a note: refused next to the field
    expect(page.get_by_test_id("review-row")).to_contain_text("Say why the visit is rejected.")
    page.get_by_test_id("review-note").fill("Seen at a café 900 m away")
    page.get_by_test_id("reject").click()
    expect(page.get_by_test_id("review-done")).to_contain_text("rejected")
    db.session.expire_all()
    assert db.session.query(Visit).filter_by(verification="rejected").count() == 1
    assert db.session.query(AuditLog).filter_by(action="visit.reject").count() == 1


def test_case_view_shows_where_a_visit_goes_on_a_folium_map(
        page, live_server, sign_in, screenshot, offline_map, field_team, make_field_agent,
        make_field_customer):
    agent = make_field_agent(username="field_loc", full_name="Vo Minh Duc")
    home = offset(*HCMC, 250, -120)
    customer = make_field_customer(agent, *home, name="Pham Thi Lan", dpd=75)
    problems = []
    page.on("console", lambda m: problems.append(m.text)
            if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    sign_in(page, "field_loc", DEFAULT_PASSWORD)
    for width, height in ((1440, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{live_server.url}/cases/{customer.cif}")
        card = page.get_by_test_id("panel-location")
        expect(card).to_contain_text("Le Loi")
        location = page.get_by_test_id("location-map")
        expect(location).to_have_attribute("data-ready", "1")
        # folium drew it on the visit address, the customer's circle in their bucket's colour
        center = page.evaluate(
            "() => { const c = document.querySelector('[data-testid=location-map]')"
            "._fieldMap.map.getCenter(); return [c.lat, c.lng]; }")
        assert center == pytest.approx(list(home), abs=1e-6)
        colours = page.evaluate(
            "() => { const out = []; document.querySelector('[data-testid=location-map]')"
            "._fieldMap.map.eachLayer(l => { if (l.options && l.options.fillColor) "
            "out.push(l.options.fillColor); }); return out; }")
        assert "#e07020" in colours  # 61-90 DPD
        box = location.bounding_box()
        assert box["width"] <= width and page.evaluate(
            "() => document.documentElement.scrollWidth") <= width
        card.scroll_into_view_if_needed()
        screenshot(page, f"case-location-{width}")
    assert problems == []


def test_no_located_address_no_map_card(page, live_server, sign_in, field_team,
                                        make_field_agent, make_customer, make_loan, db):
    from decimal import Decimal

    from portal.models import Case

    agent = make_field_agent(username="field_noloc")
    customer = make_customer(name="Khach Chua Dinh Vi")
    make_loan(customer, dpd=20)
    db.session.add(Case(cif=customer.cif, assigned_field_agent_id=agent.id, status="open",
                        priority=10, max_dpd=20, total_overdue=Decimal("1000000")))
    db.session.commit()
    sign_in(page, "field_noloc", DEFAULT_PASSWORD)
    with page.expect_response(lambda r: r.url.endswith(f"/field/customers/{customer.cif}"
                                                       "/location")) as answer:
        page.goto(f"{live_server.url}/cases/{customer.cif}")
    assert answer.value.ok and answer.value.text() == ""
    page.wait_for_load_state("networkidle")
    expect(page.get_by_test_id("panel-location")).to_have_count(0)
