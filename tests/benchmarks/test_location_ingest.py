"""Field work at scale (issue 8):

1. GPS points per second through ``POST /api/v1/field/locations`` in batches of 500 (token
   auth, validation, one bulk INSERT … ON CONFLICT DO NOTHING, commit, forward request), beside
   a bare endpoint (a Flask route that only parses the same JSON body) and the bare service
   call, measured in the same run. Target: at least 20,000 points/s.
2. The supervisor map with 500 field agents and 10,000 customers: the page, folium's script and
   the customers clustered for the view (``/field/map/customers.json``) through the app, and in
   Chromium until every agent is on the map and every customer in view is drawn (in clusters).
   Target: under 1 s.

Sizes: BENCH_GPS_BATCHES batches of 500 points (40 reduced, 200 = 100,000 points with --full);
the map at the issue's size in both (BENCH_MAP_AGENTS 500, BENCH_MAP_CUSTOMERS 10,000), with 3
browser loads reduced, 5 with --full. Figures go to docs/performance.md.
"""

from __future__ import annotations

import os
import re
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask, jsonify, request
from sqlalchemy import text

from tests.benchmarks.sizing import bench_size
from tests.e2e.conftest import CHROMIUM_ARGS, chromium_path
from tests.factories import DEFAULT_PASSWORD

BATCHES = bench_size(40, 200, "BENCH_GPS_BATCHES")
BATCH = 500
AGENTS = int(os.environ.get("BENCH_MAP_AGENTS", "500"))
CUSTOMERS = int(os.environ.get("BENCH_MAP_CUSTOMERS", "10000"))
TARGET_POINTS_S = 20_000
TARGET_MAP_S = 1.0
BROWSER_LOADS = bench_size(3, 5, "BENCH_MAP_LOADS")
REPORT = Path(__file__).resolve().parents[2] / "docs" / "performance.md"
BEGIN, END = "<!-- field-benchmark:begin -->", "<!-- field-benchmark:end -->"
_results: dict[str, str] = {}


def _batches(agent_ids: list[int], start: datetime) -> list[tuple[int, dict]]:
    """BATCHES bodies of 500 points, spread over the agents, a second apart per agent."""
    out = []
    for n in range(BATCHES):
        agent = agent_ids[n % len(agent_ids)]
        base = start + timedelta(seconds=(n // len(agent_ids)) * BATCH)
        out.append((agent, {"points": [
            {"lat": 10.7769 + i * 1e-5, "lon": 106.7009 + (n % 50) * 1e-4, "accuracy_m": 8,
             "speed": 6.5, "heading": 90, "battery": 80,
             "recorded_at": (base + timedelta(seconds=i)).isoformat()}
            for i in range(BATCH)]}))
    return out


def _write_report() -> None:
    if os.environ.get("BENCH_NO_REPORT"):
        return
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = "\n".join([BEGIN, f"Last run: {stamp}, 2 CPUs shared, PostgreSQL and Redis on the "
                              "same host, one client thread (Flask test client, no network).",
                       "", *[_results[k] for k in sorted(_results)], END])
    report = REPORT.read_text() if REPORT.exists() else "# Performance\n"
    if BEGIN in report:
        report = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), block, report, flags=re.S)
    else:
        report += ("\n## Field work: GPS ingest and the supervisor map\n\n"
                   "`tests/benchmarks/test_location_ingest.py` (`make bench`).\n\n"
                   + block + "\n")
    REPORT.write_text(report)


@pytest.mark.benchmark
def test_points_per_second_through_the_batch_endpoint(app, db, client, make_user, bench_report):
    from portal.field import locations
    from portal.permissions import tokens as api_tokens

    agents = [make_user(role="field_agent") for _ in range(4)]
    tokens = {}
    for agent in agents:
        _, raw = api_tokens.create_token(db.session, name=f"bench {agent.username}",
                                         scopes=["api.locations"], user=agent,
                                         created_by="bench")
        tokens[agent.id] = raw
    db.session.commit()
    start = datetime.now(UTC) - timedelta(days=1)
    bodies = _batches([a.id for a in agents], start)
    # the same bodies once more, shifted in time, for the bare service call
    service_bodies = _batches([a.id for a in agents], start + timedelta(hours=12))

    bare = Flask("bare")

    @bare.post("/bare")
    def bare_endpoint():
        body = request.get_json()
        return jsonify({"received": len(body["points"])})

    bare_client = bare.test_client()

    def timed(call, *args) -> float:
        t0 = time.perf_counter()
        call(*args)
        return time.perf_counter() - t0

    def post(agent_id, body):
        r = client.post("/api/v1/field/locations", json=body,
                        headers={"Authorization": f"Bearer {tokens[agent_id]}"})
        assert r.status_code == 200 and r.get_json()["accepted"] == BATCH, r.get_data()

    def post_bare(agent_id, body):
        assert bare_client.post("/bare", json=body).status_code == 200

    def service(agent_id, body):
        result = locations.ingest(db.session, agent_id, body["points"])
        db.session.commit()
        assert result.accepted == BATCH

    post(*bodies[0])  # warm up (connections, caches)
    # interleaved, batch by batch, so the three paths share the host's ups and downs
    samples: dict[str, list[float]] = {"endpoint": [], "bare": [], "service": []}
    for item, other in zip(bodies[1:], service_bodies[1:], strict=True):
        samples["endpoint"].append(timed(post, *item))
        samples["bare"].append(timed(post_bare, *item))
        samples["service"].append(timed(service, *other))
    points = (BATCHES - 1) * BATCH
    stored = db.session.scalar(text("SELECT count(*) FROM agent_locations"))
    assert stored == BATCHES * BATCH + points

    def figures(name: str) -> tuple[float, float, float]:
        """(points/s from the median batch, points/s over the whole run, median ms)"""
        median = statistics.median(samples[name])
        return BATCH / median, points / sum(samples[name]), median * 1000

    rate, rate_total, ms = figures("endpoint")
    bare_rate, bare_total, bare_ms = figures("bare")
    service_rate, service_total, service_ms = figures("service")
    ok = rate >= TARGET_POINTS_S
    _results["1 ingest"] = "\n".join([
        f"GPS ingest, {BATCHES - 1} batches of {BATCH} points ({points:,} points), the three "
        "paths interleaved batch by batch. points/s = 500 ÷ median batch time (whole-run "
        "average in brackets; the host is shared, so the average carries other sessions' load):",
        "",
        "| path | points/s | median ms per batch | target |",
        "|---|---:|---:|---|",
        f"| `POST /api/v1/field/locations` (token auth, checks, one bulk INSERT, commit, "
        f"forward request) | {rate:,.0f} ({rate_total:,.0f}) | {ms:.1f} | "
        f"{'met' if ok else 'MISSED'} (≥ {TARGET_POINTS_S:,}) |",
        f"| bare endpoint (Flask + the same JSON body parsed, nothing else) | "
        f"{bare_rate:,.0f} ({bare_total:,.0f}) | {bare_ms:.1f} | — |",
        f"| bare service call (`locations.ingest` + commit, no HTTP) | "
        f"{service_rate:,.0f} ({service_total:,.0f}) | {service_ms:.1f} | — |",
        "",
    ])
    print("\n" + _results["1 ingest"])
    _write_report()
    bench_report.record(f"GPS batch ingest ({points:,} points, batches of {BATCH})", rate,
                        "points/s", baseline=service_rate,
                        baseline_label="the service call alone, no HTTP",
                        target=f"≥ {TARGET_POINTS_S:,} points/s", met=ok,
                        notes=f"bare Flask endpoint (parse only) {bare_rate:,.0f} points/s")
    assert ok, f"{rate:,.0f} points/s < {TARGET_POINTS_S:,}"


def _seed_map(db) -> tuple[int, int]:
    """AGENTS field agents in 10 teams with a position each, CUSTOMERS customers with a
    geocoded address and a case held by one of them, and 2 visits today per 10 agents."""
    db.session.execute(text("""
        INSERT INTO teams (name) SELECT 'Field team ' || g FROM generate_series(1, 10) g"""))
    db.session.execute(text("""
        INSERT INTO users (username, full_name, role, team_id, password_hash)
        SELECT 'fa' || g, 'Field Agent ' || g, 'field_agent',
               (SELECT min(id) FROM teams) + (g % 10), 'x'
        FROM generate_series(1, :n) g"""), {"n": AGENTS})
    db.session.execute(text("""
        INSERT INTO agent_locations (agent_id, lat, lon, accuracy_m, recorded_at, received_at)
        SELECT u.id, 10.70 + random() * 0.15, 106.60 + random() * 0.2, 8,
               now() - (random() * interval '40 minutes'), now()
        FROM users u, generate_series(1, 20) s WHERE u.role = 'field_agent'"""))
    db.session.execute(text("""
        INSERT INTO customers (cif, type, name)
        SELECT 'BM' || lpad(g::text, 8, '0'), 'INDIVIDUAL', 'Khach Hang ' || g
        FROM generate_series(1, :n) g"""), {"n": CUSTOMERS})
    db.session.execute(text("""
        INSERT INTO addresses (cif, type, line1, district, lat, lon, is_primary)
        SELECT cif, 'HOME', id || ' Nguyen Hue', 'District 1', 10.70 + random() * 0.15,
               106.60 + random() * 0.2, true FROM customers WHERE cif LIKE 'BM%'"""))
    db.session.execute(text("""
        WITH fa AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM users
                    WHERE role = 'field_agent')
        INSERT INTO cases (cif, assigned_field_agent_id, status, priority, max_dpd)
        SELECT c.cif, fa.id, 'open', (c.id * 7) % 100, (c.id * 13) % 150
        FROM customers c JOIN fa ON fa.k = c.id % :agents WHERE c.cif LIKE 'BM%'"""),
        {"agents": AGENTS})
    db.session.execute(text("""
        INSERT INTO visits (cif, agent_id, planned_for, status)
        SELECT cs.cif, cs.assigned_field_agent_id, :today, 'planned' FROM cases cs
        WHERE cs.id % 50 = 0"""), {"today": __import__("portal.clock",
                                                         fromlist=["x"]).bank_today()})
    db.session.execute(text("ANALYZE"))
    db.session.commit()
    return AGENTS, CUSTOMERS


@pytest.mark.benchmark
def test_map_with_500_agents_and_10000_customers(app, db, client, make_user, live_server,
                                                 bench_report):
    from playwright.sync_api import sync_playwright

    agents, customers = _seed_map(db)
    supervisor = make_user(role="supervisor", username="bench_sup")
    # the supervisor of every field team ("all teams" is all of theirs)
    db.session.execute(text("UPDATE teams SET supervisor_id = :s WHERE name LIKE 'Field team %'"),
                       {"s": supervisor.id})
    db.session.commit()
    with client.session_transaction() as s:
        s["_user_id"] = str(supervisor.id)
        s["_fresh"] = True

    def timed(path: str) -> tuple[float, int]:
        t0 = time.perf_counter()
        r = client.get(path)
        elapsed = time.perf_counter() - t0
        assert r.status_code == 200, path
        return elapsed, len(r.get_data())

    # the baseline of the same run: the same page over a team with nobody in it (an empty map)
    empty_team = db.session.execute(text(
        "INSERT INTO teams (name, supervisor_id) VALUES ('Bench empty team', :s) RETURNING id"),
        {"s": supervisor.id}).scalar()
    db.session.commit()
    timed("/field/map?team=all")
    samples_page = [timed("/field/map?team=all") for _ in range(10)]
    samples_data = [timed("/field/map/view.js?team=all") for _ in range(10)]
    # the customers as the browser asks for them first: the view the server fits on the map's
    # size (the agents and visits), beside folium's script
    view = "/field/map/customers.json?team=all&size=834x680"
    samples_customers = [timed(view) for _ in range(10)]
    in_view = client.get(view).get_json()
    assert in_view["total"] == customers and in_view["in_view"] == customers
    samples_poll = [timed("/field/map/data?team=all") for _ in range(10)]
    body = client.get("/field/map/data?team=all&customers=1").get_json()
    assert len(body["agents"]) == agents and len(body["customers"]) == customers
    page_s = statistics.median(s for s, _ in samples_page)
    data_s = statistics.median(s for s, _ in samples_data)
    customers_s = statistics.median(s for s, _ in samples_customers)
    poll_s = statistics.median(s for s, _ in samples_poll)
    data_kb = samples_data[0][1] / 1024

    # in Chromium: from navigation to every agent and customer marker on the map, folium's
    # script run; the baseline (an empty map) loaded the same way, in turns
    browser, baseline = [], []
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS,
                                      headless=True)
        page = chromium.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{live_server.url}/auth/login")
        page.get_by_label("Username").fill("bench_sup")
        page.get_by_label("Password").fill(DEFAULT_PASSWORD)
        with page.expect_navigation():
            page.get_by_role("button", name="Sign in").click()
        marks = []
        for _ in range(BROWSER_LOADS):
            t0 = time.perf_counter()
            page.goto(f"{live_server.url}/field/map?team={empty_team}")
            page.wait_for_function(
                "() => { const m = document.getElementById('field-map'); "
                "return m && m.dataset.ready === '1'; }", timeout=30_000)
            baseline.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            page.goto(f"{live_server.url}/field/map?team=all")
            page.wait_for_function(
                f"() => {{ const m = document.getElementById('field-map'); return m && "
                f"m.dataset.customersDrawn === '{customers}' && "
                f"document.querySelectorAll('.agent-marker').length === {agents}; }}",
                timeout=30_000)
            browser.append(time.perf_counter() - t0)
            marks.append(page.evaluate(
                "() => { const m = document.getElementById('field-map'); return ["
                "performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd, "
                "+m.dataset.tScripts, +m.dataset.tDrawn, +m.dataset.tCustomers]; }"))
        page.screenshot(path=str(Path(__file__).resolve().parents[2] / "test-results" /
                                 "screenshots" / "field-map-500-agents.png"))
        chromium.close()
    browser_s = statistics.median(browser)
    baseline_s = statistics.median(baseline)
    ratio = browser_s / baseline_s
    dom, scripts, drawn, clustered = (statistics.median(m[i] for m in marks) for i in range(4))
    # the first view's customers are asked for beside folium's script: the slower one counts
    server_s = page_s + max(data_s, customers_s)
    # the target: everything drawn (agents, today's visits, every customer clustered) within
    # 1 s of navigation; the ratio to the empty map says what the 10,500 markers cost
    ok = server_s < TARGET_MAP_S and browser_s < TARGET_MAP_S
    _results["2 map"] = "\n".join([
        f"Supervisor map drawn by folium, {agents} field agents (20 positions each) and "
        f"{customers:,} customers, all teams (medians):",
        "",
        "| step | time (ms) | size | target |",
        "|---|---:|---:|---|",
        f"| page `GET /field/map` | {1000 * page_s:.0f} | {samples_page[0][1] / 1024:.0f} KB "
        "| — |",
        f"| folium's script `GET /field/map/view.js` (map, agents, visits) | "
        f"{1000 * data_s:.0f} | {data_kb:.0f} KB | — |",
        f"| customers in view, clustered by PostgreSQL `GET /field/map/customers.json` "
        f"(first view, zoom {in_view['view']['zoom']}: {len(in_view['clusters'])} clusters + "
        f"{len(in_view['customers'])} single customers), beside the script | "
        f"{1000 * customers_s:.0f} | {samples_customers[0][1] / 1024:.0f} KB | — |",
        f"| poll `GET /field/map/data` (agents + visits, every 10 s) | {1000 * poll_s:.0f} | "
        f"{samples_poll[0][1] / 1024:.0f} KB | — |",
        f"| page + script + customers, server side | {1000 * server_s:.0f} | — | "
        f"{'met' if server_s < TARGET_MAP_S else 'MISSED'} (< 1 s) |",
        f"| Chromium: navigation → empty map ready (baseline, same run) | "
        f"{1000 * baseline_s:.0f} | — | — |",
        f"| Chromium: navigation → {agents} agents, visits and all {customers:,} customers "
        f"clustered | {1000 * browser_s:.0f} (×{ratio:.1f} the baseline) | — | "
        f"{'met' if browser_s < TARGET_MAP_S else 'MISSED'} (< 1 s) |",
        "",
        f"In the browser (ms from navigation start, medians of {BROWSER_LOADS} loads): page "
        f"parsed {dom:.0f}, Leaflet and folium's script run {scripts:.0f}, "
        f"map attached (agents and visits drawn) {drawn:.0f}, every customer in view drawn "
        f"in clusters {clustered:.0f}. folium's script is served (the CSP allows no inline "
        "script) and loads beside Leaflet and the customers of the first view (which the "
        "server fits on the map's size as Leaflet does), clustered by PostgreSQL on a grid of "
        "60-pixel screen cells for the zoom: the browser draws the clusters as markers and "
        "single customers as circles on a canvas (and asks again whenever the map moves).",
        "",
    ])
    print("\n" + _results["2 map"])
    _write_report()
    size = f"{agents} agents, {customers:,} customers"
    bench_report.record(f"field map, server side page + folium script + customers ({size})",
                        1000 * server_s, "ms", target="< 1,000 ms", met=server_s < TARGET_MAP_S)
    bench_report.record(f"field map in Chromium, everything drawn ({size})", 1000 * browser_s,
                        "ms", target="< 1,000 ms", met=browser_s < TARGET_MAP_S,
                        notes=f"×{ratio:.1f} an empty map's load in the same run "
                              f"({1000 * baseline_s:,.0f} ms)")
    assert ok
