"""The integration health cards (all 7, every figure) over a large run history.

OPS_BENCH_RUNS runs in the last 7 days (50,000 with --full — a GPS forward a minute for a week
is 10,000 —, 10,000 reduced) plus OPS_BENCH_OLD_RUNS older ones (500,000 with --full, 50,000
reduced), 20,000 events with deliveries.
Baseline in the same run: one plain ``SELECT count(*) FROM integration_runs`` (a full scan of
the history). The page polls every OPS_POLL_SECONDS, so the cards must stay well under a second.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from portal.ops import health as ops_health
from tests.benchmarks.sizing import bench_size

pytestmark = pytest.mark.benchmark
RECENT = bench_size(10_000, 50_000, "OPS_BENCH_RUNS")
OLD = bench_size(50_000, 500_000, "OPS_BENCH_OLD_RUNS")
TARGET_S = 2.0
NOW = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)


def _timed(fn, rounds=5) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def test_health_cards_over_a_large_history(db, bench_report):
    s = db.session
    s.execute(text("""
        INSERT INTO integration_runs (integration, kind, trigger, status, started_at,
            finished_at, duration_ms, extracted, loaded)
        SELECT (ARRAY['T24','W4','LOS','PAYMENTS','CTI','GPS'])[1 + g % 6], 'sync', 'schedule',
               CASE WHEN g % 17 = 0 THEN 'failed' ELSE 'succeeded' END,
               ts, ts + (100 + g % 5000) * interval '1 millisecond', 100 + g % 5000,
               g % 1000, g % 900
        FROM (SELECT g, :now - (g % :span) * interval '1 second' AS ts
              FROM generate_series(1, :n) g) AS x"""),
              {"now": NOW, "span": 7 * 86400 - 60, "n": RECENT})
    s.execute(text("""
        INSERT INTO integration_runs (integration, kind, trigger, status, started_at,
            finished_at, duration_ms, extracted, loaded)
        SELECT (ARRAY['T24','W4','LOS','PAYMENTS','CTI','GPS'])[1 + g % 6], 'sync', 'schedule',
               'succeeded', ts, ts + interval '1 second', 1000, 10, 10
        FROM (SELECT g, :now - interval '8 days' - (g % 30000000) * interval '1 second' AS ts
              FROM generate_series(1, :n) g) AS x"""), {"now": NOW, "n": OLD})
    s.execute(text("""
        INSERT INTO events (id, type, version, aggregate_type, aggregate_id, payload,
                            occurred_at, relayed_at)
        SELECT gen_random_uuid(), 'LOAN_UPDATED', 1, 'loan', 'L' || g, '{}',
               :now - (g % 600000) * interval '1 second', :now
        FROM generate_series(1, 20000) g"""), {"now": NOW})
    s.execute(text("""
        INSERT INTO event_deliveries (event_id, subscriber, status, attempts, delivered_at)
        SELECT id, 'bench.subscriber', 'delivered', 1, occurred_at + interval '300 milliseconds'
        FROM events"""))
    s.commit()
    s.execute(text("ANALYZE"))

    cards = ops_health.collect_cards(s, now=NOW)
    assert len(cards) == 8 and cards[5].week.runs > 0  # 7 integrations and the strategies
    baseline = _timed(lambda: s.execute(text("SELECT count(*) FROM integration_runs")).scalar())
    served = _timed(lambda: ops_health.collect_cards(s, now=NOW))
    print(f"\nops health cards: {RECENT:,} recent + {OLD:,} old runs, 20,000 events: "
          f"{served * 1000:.0f} ms median (baseline full count {baseline * 1000:.0f} ms, "
          f"ratio {served / baseline:.2f})")
    bench_report.record(f"ops health cards ({RECENT:,} recent + {OLD:,} old runs)",
                        served * 1000, "ms", baseline=baseline * 1000,
                        baseline_label="one full count of the history",
                        target=f"< {TARGET_S * 1000:,.0f} ms", met=served < TARGET_S)
    assert served < TARGET_S
