"""Mixed load on the production server setup (issue 11): gunicorn with 2 workers (8 threads
each) on a migrated database with the demo seed (2,000 customers / 3,000 loans and cards), while
collection agents browse (login, work queue, case view, customer search), the payment system
posts signed webhooks and field agents post GPS points (batches of 50, and OsmAnd single points),
each at a stated rate (RATES, requests/s; doubled with --full), open loop, for BENCH_LOAD_SECONDS
(120 s reduced, 300 s with --full). The load generator runs on the same 2 cores.

Baseline in the same run: ``GET /health`` (routing, one PostgreSQL and one Redis round trip)
sent at its own rate inside the same mix, so its p95 carries the same moments of load. Reported
per request type: requests, achieved rate, errors, p50 / p95 / p99 (from the scheduled send
time). Targets: no error; every rate achieved within 20%; the agents' pages p95 < 300 ms (the
workspace target of issue 4). The first two are asserted; the p95s are reported (met or not).
The reduced 15-second version runs in `make test`: tests/load/test_load_mix.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.benchmarks.sizing import bench_full, bench_size
from tests.benchmarks.summary import write_detail
from tests.load.mix import MixedLoad
from tests.load.server import Gunicorn
from tests.load.world import build_world, seed, server_env

pytestmark = pytest.mark.benchmark

SECONDS = bench_size(120, 300, "BENCH_LOAD_SECONDS")
SCALE = 2 if bench_full() else 1
RATES = {name: rate * SCALE for name, rate in {  # requests per second
    "login": 0.5, "work queue": 3.0, "case view": 4.0, "search": 2.0,
    "payment webhook": 10.0, "gps batch": 2.0, "gps osmand": 10.0, "health": 2.0,
}.items()}
PAGES = ("work queue", "case view", "search")
PAGE_P95_MS = 300
GPS_BATCH_POINTS = 50
CUSTOMERS, PRODUCTS = 2000, 3000


def test_mixed_load_p95_and_error_rate(app, db, tmp_path, bench_report):
    seed(app, CUSTOMERS, PRODUCTS)
    world = build_world(db, agents=12, field_agents=5, gps_batch_points=GPS_BATCH_POINTS)
    with Gunicorn(server_env(app), tmp_path / "gunicorn.log") as server:
        server.wait()
        load = MixedLoad(server.url, world, RATES, sessions=12)
        load.prepare()
        result = load.run(SECONDS)
        log = server.tail()
    rows = result.rows()
    health = result.types["health"].p95_ms
    worst = min(r["achieved"] / r["rate"] for r in rows)
    table = [
        "| request | stated /s | achieved /s | requests | errors | p50 (ms) | p95 (ms) "
        "| p99 (ms) | p95 ÷ health p95 | target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        target = "—"
        if r["type"] in PAGES:
            target = f"p95 < {PAGE_P95_MS} ms: {'met' if r['p95_ms'] < PAGE_P95_MS else 'MISSED'}"
        table.append(
            f"| {r['type']} | {r['rate']:g} | {r['achieved']:.2f} | {r['requests']:,} "
            f"| {r['errors']} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['p99_ms']:.0f} "
            f"| {r['p95_ms'] / health:.1f} | {target} |")
    total_rate = sum(RATES.values())
    write_detail("load-benchmark", "Mixed load (agents, payment webhooks, GPS)", [
        f"Last run: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}, {SECONDS} s at {total_rate:g} "
        f"requests/s in all ({result.requests:,} requests, error rate "
        f"**{result.error_rate:.2%}**, worst achieved rate {worst:.0%} of the stated one); "
        f"gunicorn `-w 2 --threads 8`; demo seed {CUSTOMERS:,} customers / {PRODUCTS:,} "
        f"products; {len(world.agents)} agents' sessions (a login replaces one), GPS batches "
        f"of {GPS_BATCH_POINTS} points from {len(world.field_tokens)} field agents. Latency "
        "from each request's scheduled time (open loop). The machine is shared with other "
        "sessions: read the p95s against the /health p95 of the same run.",
        "",
        *table,
    ])
    for r in rows:
        if r["type"] == "health":
            continue
        met = (r["p95_ms"] < PAGE_P95_MS) if r["type"] in PAGES else None
        bench_report.record(
            f"load mix: {r['type']} p95", r["p95_ms"], "ms", baseline=health,
            baseline_label="GET /health p95, same load",
            target=f"p95 < {PAGE_P95_MS} ms" if r["type"] in PAGES else None, met=met,
            notes=f"{r['achieved']:.2f}/s of {r['rate']:g}/s, {r['requests']:,} requests")
    bench_report.record("load mix: error rate", result.error_rate * 100, "%",
                        target="0 %", met=result.errors == 0,
                        notes=f"{result.errors} of {result.requests:,} requests")
    bench_report.record("load mix: worst achieved rate", worst * 100, "% of stated",
                        target="≥ 80 % of every stated rate", met=worst >= 0.8)
    samples = {n: t.error_samples for n, t in result.types.items() if t.error_samples}
    print("\n" + "\n".join(table))
    assert result.errors == 0, f"{samples}\n{log}"
    assert worst >= 0.8, "a request type fell behind its stated rate"
