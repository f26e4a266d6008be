"""A day in the life of the portal (tests/scenario/harness.py), then the invariants
(tests/scenario/invariants.py, computed from the sources), and the product's own truth check
(``flask check invariants``) reports 0 violations. CI runs the reduced sizes of
tests/scenario/sizes.py; SCENARIO_SCALE=10 runs a larger day."""

from __future__ import annotations

from portal.ops import invariants as check_invariants
from tests.scenario import invariants
from tests.scenario.sizes import DAY


def test_a_business_day_keeps_every_invariant(day_factory):
    day = day_factory(DAY).run()
    record = day.record
    assert record.actions >= DAY.agents * DAY.cases_per_agent * 0.8, record.refused
    assert record.promises >= record.actions // 3, "the agents took too few promises"
    assert len(record.calls) > DAY.agents
    assert len(record.checkins) == DAY.field_agents * DAY.visits_per_field_agent
    assert {c["verification_source"] for c in record.checkins} == {"gps"}
    invariants.all_hold(day)
    check = day.app.test_cli_runner().invoke(args=["check", "invariants", "--no-record"])
    assert check.exit_code == 0, check.output
    assert check.output.rstrip().endswith("0 violation(s) in "
                                          f"{len(check_invariants.INVARIANTS)} invariant(s)")
