"""How big a scenario day is. CI (``make test``) runs the reduced sizes below;
``SCENARIO_SCALE=10`` (any number) multiplies the portfolio and the traffic for a larger run.
The fault tests run a smaller day than the scenario (each one is a whole day of its own)."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Sizes:
    customers: int  # T24 portfolio (loans: about 1.5 per customer)
    products: int
    agents: int  # call agents working their queues
    cases_per_agent: int  # cases each agent opens and records an action on
    payments: int  # payment transactions of the payment system (webhooks)
    reversals: int  # received payments reversed later in the day
    duplicate_rate: float  # share of webhooks the payment system sends twice
    call_minutes: int  # minutes of call-centre traffic for every agent
    field_agents: int
    visits_per_field_agent: int
    gps_ticks: int  # position posts of every field agent

    def scaled(self, factor: float) -> Sizes:
        def times(n: int) -> int:
            return max(1, round(n * factor))

        return replace(self, customers=times(self.customers), products=times(self.products),
                       cases_per_agent=times(self.cases_per_agent),
                       payments=times(self.payments), reversals=times(self.reversals),
                       visits_per_field_agent=times(self.visits_per_field_agent))


SCALE = float(os.environ.get("SCENARIO_SCALE", "1") or 1)

DAY = Sizes(customers=1500, products=2250, agents=25, cases_per_agent=3, payments=2000,
            reversals=60, duplicate_rate=0.2, call_minutes=20, field_agents=3,
            visits_per_field_agent=3, gps_ticks=6).scaled(SCALE)
FAULT_DAY = Sizes(customers=200, products=300, agents=5, cases_per_agent=2, payments=150,
                  reversals=8, duplicate_rate=0.2, call_minutes=10, field_agents=2,
                  visits_per_field_agent=2, gps_ticks=4).scaled(SCALE)
