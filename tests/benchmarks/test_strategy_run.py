"""The strategies' daily run over a large portfolio (issue 23).

Scale: 50,000 accounts reduced, the issue's 1,000,000 with --full (STRATEGY_BENCH_ACCOUNTS
overrides): one loan per customer, a card for one customer in five on top (counted in the
accounts), addresses, pending and broken promises, active plans. One active strategy, three
segments with conditions on DPD, overdue amount, region and promise history, SMS / call /
letter / placement-review steps, a challenger on 20 %.

Figures: the daily run (assign every account to segment, step and variant, queue the messages,
the call weights and teams on the cases, plan the visits) against the limit, a bare SQL pass over
the same rows (one INSERT … SELECT of every eligible account with a fixed CASE for its segment
into an unindexed table: reading the same rows and writing one row each, no more). Target: the
1,000,000-account run in under 5 minutes. Also: the simulation (same query, counted, nothing
written) and a re-run of the same business date (idempotent: writes nothing).
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import text

from portal.strategies import engine, operations, run
from tests.benchmarks.sizing import bench_size

pytestmark = pytest.mark.benchmark
ACCOUNTS = bench_size(50_000, 1_000_000, "STRATEGY_BENCH_ACCOUNTS")
CUSTOMERS = ACCOUNTS * 5 // 6  # one loan each, plus a card for one in five
NOW = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)  # 05:00 on the 25th in Hà Nội
DAY = date(2026, 11, 25)
TARGET_S = 300  # the issue: 1M accounts in under 5 minutes

BARE_SQL = """
CREATE UNLOGGED TABLE bench_bare AS
SELECT p.account_number, p.cif, c.id AS case_id,
       CASE WHEN p.dpd <= 30 THEN 1 WHEN p.dpd <= 90 THEN 2 ELSE 3 END AS segment
FROM (SELECT account_number, cif, dpd FROM loans WHERE status <> 'CLOSED'
      UNION ALL SELECT contract_number, cif, days_overdue FROM cards WHERE status <> 'CLOSED') p
JOIN cases c ON c.cif = p.cif AND c.status <> 'closed'
"""


def _load(db) -> None:
    s = db.session
    started = time.perf_counter()
    s.execute(text("INSERT INTO teams (id, name) VALUES (1, 'Đội gọi'), (2, 'Đội pháp lý')"))
    s.execute(text("""INSERT INTO customers (cif, type, name, segment, source_system)
        SELECT 'C' || g, 'INDIVIDUAL', 'Khách hàng ' || g,
               (ARRAY['MASS', 'AFFLUENT', 'SME'])[1 + g % 3], 'T24'
        FROM generate_series(1, :n) g"""), {"n": CUSTOMERS})
    s.execute(text("""INSERT INTO cases (cif, status, max_dpd)
        SELECT 'C' || g, CASE WHEN g % 50 = 0 THEN 'closed' ELSE 'open' END, g % 150
        FROM generate_series(1, :n) g"""), {"n": CUSTOMERS})
    s.execute(text("""INSERT INTO loans (account_number, cif, product_type, dpd, bucket,
        due_amount, outstanding, next_payment_date, status, source_system)
        SELECT 'L' || g, 'C' || g, (ARRAY['PERSONAL_LOAN', 'AUTO_LOAN', 'MORTGAGE'])[1 + g % 3],
               g % 150,
               CASE WHEN g % 150 = 0 THEN 'current' WHEN g % 150 <= 30 THEN '1-30'
                    WHEN g % 150 <= 60 THEN '31-60' WHEN g % 150 <= 90 THEN '61-90'
                    ELSE '90+' END,
               CASE WHEN g % 150 = 0 THEN 0 ELSE 500000 * (1 + g % 40) END,
               10000000 * (1 + g % 30), date '2026-11-25' + (g % 10) - (g % 150),
               CASE WHEN g % 97 = 0 THEN 'CLOSED' ELSE 'OPEN' END, 'T24'
        FROM generate_series(1, :n) g"""), {"n": CUSTOMERS})
    s.execute(text("""INSERT INTO cards (contract_number, cif, masked_card_number, days_overdue,
        bucket, min_due, outstanding, status, source_system)
        SELECT 'K' || g, 'C' || (1 + (g * 5) % :c), '4111********1111', (g * 7) % 120,
               '1-30', 300000, 20000000, 'ACTIVE', 'W4'
        FROM generate_series(1, :n) g"""), {"n": ACCOUNTS - CUSTOMERS, "c": CUSTOMERS})
    s.execute(text("""INSERT INTO addresses (cif, type, line1, province, is_primary,
        source_system)
        SELECT 'C' || g, 'HOME', 'Số ' || g, (ARRAY['Hà Nội', 'TP Hồ Chí Minh', 'Đà Nẵng',
               'Cần Thơ'])[1 + g % 4], true, 'T24'
        FROM generate_series(1, :n) g WHERE g % 3 <> 0"""), {"n": CUSTOMERS})
    s.execute(text("""INSERT INTO promises (cif, account_number, amount, promised_date, status,
        created_at, updated_at)
        SELECT 'C' || g, 'L' || g, 1000000, date '2026-11-20' + (g % 10),
               CASE WHEN g % 2 = 0 THEN 'pending' ELSE 'broken' END, now(), now()
        FROM generate_series(1, :n, 10) g"""), {"n": CUSTOMERS})
    s.execute(text("""INSERT INTO payment_plans (cif, status, total, overdue_at_start,
        created_at, updated_at)
        SELECT 'C' || g, 'active', 5000000, 5000000, now(), now()
        FROM generate_series(1, :n, 50) g"""), {"n": CUSTOMERS})
    s.execute(text("""INSERT INTO message_templates (code, channel, name, body_vi, body_en)
        VALUES ('SMS_NHAC', 'sms', 'Nhắc', 'Nhắc', 'Remind'),
               ('THU_DOI_NO', 'letter', 'Thư', 'Thư', 'Letter')"""))
    s.execute(text("SELECT setval(pg_get_serial_sequence('teams', 'id'), 2)"))
    s.execute(text("ANALYZE"))
    s.commit()
    print(f"\nloaded {ACCOUNTS:,} accounts ({CUSTOMERS:,} customers) in "
          f"{time.perf_counter() - started:.0f} s", flush=True)


def _strategy(db, actor):
    s = db.session
    strategy = operations.create_strategy(s, actor, "BENCH", "Chiến lược chuẩn")
    version = strategy.versions[0]
    early = operations.add_segment(s, actor, version, "Sớm", [
        {"field": "dpd", "op": "le", "value": "30"}], ["cured", "promise_pending"])
    operations.add_step(s, actor, early, {"key": "dpd", "at_value": "-3", "action": "sms",
                                          "template_code": "SMS_NHAC"})
    operations.add_step(s, actor, early, {"key": "dpd", "at_value": "5", "action": "call",
                                          "priority_weight": "150", "team_id": "1"})
    middle = operations.add_segment(s, actor, version, "Trung hạn", [
        {"field": "dpd", "op": "le", "value": "90"},
        {"field": "overdue", "op": "ge", "value": "1.000.000"},
        {"field": "region", "op": "in", "value": "Hà Nội, TP Hồ Chí Minh, Đà Nẵng"}],
        ["promise_pending", "plan_active"])
    operations.add_step(s, actor, middle, {"key": "dpd", "at_value": "31", "action": "call",
                                           "priority_weight": "250", "team_id": "1"})
    operations.add_step(s, actor, middle, {"key": "dpd", "at_value": "45", "action": "letter",
                                           "template_code": "THU_DOI_NO"})
    late = operations.add_segment(s, actor, version, "Muộn", [
        {"field": "broken_promises_90d", "op": "ge", "value": "0"}], ["placed"])
    operations.add_step(s, actor, late, {"key": "dpd", "at_value": "0", "action": "call",
                                         "priority_weight": "300", "team_id": "2"})
    operations.add_step(s, actor, late, {"key": "dpd", "at_value": "91",
                                         "action": "placement_review"})
    operations.add_challenger(s, actor, version, "Gọi sớm hơn", 20, weight_delta=100)
    operations.activate(s, actor, version, NOW)
    s.commit()
    return strategy, version


def test_strategy_daily_run(db, frozen_now, bench_report):
    frozen_now(NOW)
    _load(db)
    s = db.session
    strategy, version = _strategy(db, "bench")

    started = time.perf_counter()
    s.execute(text(BARE_SQL))
    bare_rows = s.execute(text("SELECT count(*) FROM bench_bare")).scalar()
    s.commit()
    bare_s = time.perf_counter() - started

    started = time.perf_counter()
    simulated = engine.simulate(s, version, DAY)
    simulate_s = time.perf_counter() - started

    started = time.perf_counter()
    counts = run.run_business_date(s, DAY, now=NOW)
    s.commit()
    run_s = time.perf_counter() - started

    started = time.perf_counter()
    again = run.run_business_date(s, DAY, now=NOW)
    s.commit()
    rerun_s = time.perf_counter() - started

    s.execute(text("DROP TABLE bench_bare"))
    s.commit()
    assert counts["accounts"] == simulated.total == bare_rows
    assert again["assigned"] == again["messages"] == again["cases_weighted"] == 0
    rate = counts["accounts"] / run_s
    projected = 1_000_000 / rate
    print(f"\nstrategies daily run, {counts['accounts']:,} accounts: {run_s:.1f} s "
          f"({rate:,.0f} accounts/s; bare SQL pass {bare_s:.1f} s, x{run_s / bare_s:.1f}); "
          f"simulation {simulate_s:.1f} s; re-run {rerun_s:.1f} s; "
          f"{counts['messages']:,} messages, {counts['cases_weighted']:,} cases weighted, "
          f"phases {counts['seconds']} then {again['seconds']}, "
          f"per action {counts['per_action']}")
    size = f"{counts['accounts']:,} accounts"
    met = run_s < TARGET_S * counts["accounts"] / 1_000_000 if counts["accounts"] < 1_000_000 \
        else run_s < TARGET_S
    bench_report.record(
        f"strategies daily run ({size})", run_s, "s", baseline=bare_s,
        baseline_label="bare SQL pass (CREATE TABLE … AS SELECT the same rows)",
        target="1M accounts < 300 s", met=met,
        notes=(f"{rate:,.0f} accounts/s, 1M projected {projected:.0f} s; "
               f"{counts['messages']:,} messages queued"
               if counts["accounts"] < 1_000_000 else f"{rate:,.0f} accounts/s"))
    bench_report.record(f"strategies simulation ({size})", simulate_s, "s",
                        baseline=run_s, baseline_label="the daily run")
    bench_report.record(f"strategies re-run of the same date ({size})", rerun_s, "s",
                        baseline=run_s, baseline_label="first run",
                        notes="idempotent: nothing written")
    assert met
