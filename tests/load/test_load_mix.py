"""The mixed load, reduced (part of `make test`): gunicorn with 2 workers on a migrated database
with a small demo seed, every request type at a stated rate for LOAD_TEST_SECONDS (15 s).
Proves: no request fails (error rate 0: every status and every accepted count as expected),
every request type was exercised, and the server kept up with each stated rate (achieved within
20%). The few-minute run with the figures is tests/benchmarks/test_load_mix.py (`make bench`)."""

from __future__ import annotations

import os

from sqlalchemy import text

from tests.load.mix import REQUEST_TYPES, MixedLoad
from tests.load.server import Gunicorn
from tests.load.world import build_world, seed, server_env

SECONDS = float(os.environ.get("LOAD_TEST_SECONDS", "15"))
RATES = {  # requests per second
    "login": 0.5, "work queue": 1.5, "case view": 2.0, "search": 1.0,
    "payment webhook": 4.0, "gps batch": 1.0, "gps osmand": 4.0, "health": 1.0,
}
POINTS = text("SELECT count(*) FROM agent_locations")


def test_mixed_load_has_no_errors_and_keeps_the_rate(app, db, tmp_path):
    seed(app, customers=300, products=450)
    world = build_world(db, agents=6, field_agents=3, gps_batch_points=20)
    points_before = db.session.scalar(POINTS)
    with Gunicorn(server_env(app), tmp_path / "gunicorn.log") as server:
        server.wait()
        load = MixedLoad(server.url, world, RATES, sessions=6)
        load.prepare()
        result = load.run(SECONDS)
        log = server.tail()
    summary = "\n".join(
        f"{r['type']}: {r['requests']} requests, {r['achieved']:.2f}/s of {r['rate']}/s, "
        f"{r['errors']} errors, p95 {r['p95_ms']:.0f} ms" for r in result.rows())
    print(f"\n{summary}")
    samples = {n: t.error_samples for n, t in result.types.items() if t.error_samples}
    assert set(result.types) == set(REQUEST_TYPES)
    assert result.errors == 0, f"{samples}\n{summary}\n{log}"
    for name, rate in RATES.items():
        assert result.types[name].count >= 1, f"{name} never ran\n{summary}"
        achieved = result.achieved_rate(name)
        assert abs(achieved - rate) <= 0.2 * rate, (
            f"{name}: {achieved:.2f}/s for a stated {rate}/s\n{summary}")
    # what the server stored is what was sent (nothing answered 2xx and lost)
    db.session.rollback()
    payments = db.session.scalar(text("SELECT count(*) FROM payments WHERE reference_number "
                                      "LIKE :p"), {"p": f"LOAD-{load.tag}-%"})
    assert payments == result.types["payment webhook"].count
    sent_points = (result.types["gps batch"].count * world.gps_batch_points
                   + result.types["gps osmand"].count)
    assert db.session.scalar(POINTS) - points_before == sent_points
