"""State shared by the parts of the demo generator: the random source, the clock, the pools,
the writer and the staff the portfolio is assigned to."""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from portal.seed.bulk import BulkWriter
from portal.seed.geo import City
from portal.seed.pools import Pools

RANDOM_SEED = 2026


class FastRandom(random.Random):
    """``random.Random`` made cheaper for millions of calls, just as deterministic for a seed:
    a plain ``randint``, and ``choices`` that remembers the cumulative weights of the (tuple)
    weights it has seen instead of summing them on every call."""

    def __init__(self, seed: int):
        super().__init__(seed)
        self._cumulative: dict[tuple, tuple] = {}

    def randint(self, a: int, b: int) -> int:
        return a + int(self.random() * (b - a + 1))

    def choice(self, seq):
        return seq[int(self.random() * len(seq))]

    def choices(self, population, weights=None, *, cum_weights=None, k=1):
        if cum_weights is None and isinstance(weights, tuple):
            cum_weights = self._cumulative.get(weights)
            if cum_weights is None:
                cum_weights = self._cumulative[weights] = tuple(itertools.accumulate(weights))
            weights = None
        if k == 1 and cum_weights is not None:  # what random.choices does, minus the overhead
            index = bisect.bisect(cum_weights, self.random() * cum_weights[-1], 0,
                                  len(population) - 1)
            return [population[index]]
        return super().choices(population, weights, cum_weights=cum_weights, k=k)


@dataclass
class Staff:
    id: int
    username: str
    role: str
    full_name: str
    team: int | None = None  # index into SeedContext.teams
    city: City | None = None
    districts: tuple[str, ...] = ()  # field agents: the districts they cover


@dataclass
class TeamInfo:
    id: int
    name: str
    city: City
    supervisor: Staff | None = None
    agents: list[Staff] = field(default_factory=list)
    field_agents: list[Staff] = field(default_factory=list)


@dataclass
class SeedContext:
    bulk: BulkWriter
    tz: ZoneInfo
    now: datetime  # UTC, timezone-aware
    rng: random.Random = field(default_factory=lambda: FastRandom(RANDOM_SEED))
    pools: Pools = field(default_factory=lambda: Pools.build(RANDOM_SEED))
    teams: list[TeamInfo] = field(default_factory=list)
    users: dict[str, Staff] = field(default_factory=dict)
    field_by_district: dict[str, Staff] = field(default_factory=dict)
    action_codes: dict[tuple[str, str, str], tuple[int, bool, bool, int | None]] = field(
        default_factory=dict
    )  # (type, subtype, result) -> (id, is_contact, is_promise, follow_up_days)
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def now_local(self) -> datetime:
        return self.now.astimezone(self.tz)

    @property
    def today(self) -> date:
        """The bank's business date."""
        return self.now_local.date()

    def at(self, day: date, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
        """A wall-clock time of the bank's zone on ``day``, as an aware UTC timestamp."""
        local = datetime.combine(day, time(hour, minute, second), tzinfo=self.tz)
        return local.astimezone(UTC)

    def local_date(self, ts: datetime) -> date:
        return ts.astimezone(self.tz).date()

    def seq(self, name: str) -> int:
        """The next number of a named counter (1, 2, ...): unique business keys."""
        value = self.counters.get(name, 0) + 1
        self.counters[name] = value
        return value

    @property
    def last_sync_at(self) -> datetime:
        """When the nightly bank sync last ran (02:15 bank time)."""
        today_run = self.at(self.today, 2, 15)
        return today_run if today_run <= self.now else today_run - timedelta(days=1)
