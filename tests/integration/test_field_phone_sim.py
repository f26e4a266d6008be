"""The phone simulator that ``make run`` starts: it gives every field agent a device token and
rides them between their customers' addresses, posting positions through the real HTTP API
(JSON batches, and the OsmAnd protocol for every third agent)."""
# ruff: noqa: F811 - the field fixtures are imported from tests.field_support

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from integrations.sandbox.phone_sim import PhoneSimulator, street_path, walkers_from_phones
from portal.field.sim_phones import issue_sim_phones
from tests.field_support import (  # noqa: F401 - fixtures
    HCMC,
    ago,
    field_team,
    make_field_agent,
    make_field_customer,
    offset,
)


def test_street_path_goes_along_lat_then_lon_and_closes():
    a, b, c = (10.0, 106.0), (10.01, 106.0), (10.01, 106.02)
    assert street_path([a, b, c]) == [a, (10.01, 106.0), b, (10.01, 106.0), c, (10.0, 106.02), a]


def test_simulated_phones_post_positions_through_the_api(app, db, live_server,
                                                         make_field_agent,
                                                         make_field_customer):
    agents = [make_field_agent() for _ in range(3)]
    for n, agent in enumerate(agents):
        for k in range(3):
            make_field_customer(agent, *offset(*HCMC, 800 * k, 500 * n))
    walkers = walkers_from_phones(issue_sim_phones(db.session))
    assert [w.username for w in walkers] == [a.username for a in agents]
    assert [w.protocol for w in walkers] == ["json", "json", "osmand"]
    # a restart revokes the previous phones' tokens
    again = walkers_from_phones(issue_sim_phones(db.session))
    revoked = db.session.scalar(text(
        "SELECT count(*) FROM api_tokens WHERE name LIKE 'phone-sim %' "
        "AND revoked_at IS NOT NULL"))
    assert revoked == 3 and again[0].token != walkers[0].token

    sim = PhoneSimulator(live_server.url, again)
    start = ago(120)
    for k in range(6):
        assert sim.step(20, at=start + timedelta(seconds=20 * k)) == [200, 200, 200]
    assert sim.errors == []
    rows = db.session.execute(text(
        "SELECT agent_id, source, count(*) AS n, min(lat) AS lo, max(lat) AS hi "
        "FROM agent_locations GROUP BY 1, 2 ORDER BY 1")).all()
    assert [(r.agent_id, r.source, r.n) for r in rows] == [
        (agents[0].id, "api", 6), (agents[1].id, "api", 6), (agents[2].id, "osmand", 6)]
    assert all(float(r.hi) - float(r.lo) > 0.003 for r in rows)  # they moved (> 300 m)
