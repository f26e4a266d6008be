"""Seeding at scale, with rows per second: 10,000 customers and 20,000 loans and cards reduced,
50,000 / 100,000 with --full (BENCH_SEED_CUSTOMERS / BENCH_SEED_PRODUCTS override). The bank-size
seed (``flask seed-demo --customers 500000 --loans 1000000``) runs in the workspace benchmark
under --full.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from tests.benchmarks.sizing import bench_size

pytestmark = pytest.mark.benchmark

CUSTOMERS = bench_size(10_000, 50_000, "BENCH_SEED_CUSTOMERS")
PRODUCTS = bench_size(20_000, 100_000, "BENCH_SEED_PRODUCTS")
MIN_ROWS_PER_SECOND = 5_000  # a floor far below what COPY reaches; catches row-by-row inserts


def test_seed_customers_and_products(app, db, benchmark, bench_report):
    runner = app.test_cli_runner()
    timing = {}

    def seed():
        started = time.perf_counter()
        result = runner.invoke(args=["seed-demo", "--customers", str(CUSTOMERS),
                                     "--loans", str(PRODUCTS)])
        timing["seconds"] = time.perf_counter() - started
        return result

    result = benchmark.pedantic(seed, rounds=1, iterations=1)
    assert result.exit_code == 0, result.output
    assert f"customers {CUSTOMERS}/{CUSTOMERS}" in result.output

    def count(table: str) -> int:
        return db.session.execute(text(f'SELECT count(*) FROM "{table}"')).scalar()

    assert count("customers") == CUSTOMERS
    assert count("loans") + count("cards") == PRODUCTS
    rows = sum(count(t.name) for t in db.metadata.sorted_tables)
    rate = rows / timing["seconds"]
    benchmark.extra_info.update(rows=rows, seconds=round(timing["seconds"], 1),
                                rows_per_second=round(rate))
    print(f"\nseed-demo {CUSTOMERS} customers / {PRODUCTS} products: {rows} rows in "
          f"{timing['seconds']:.1f}s = {rate:,.0f} rows/s")
    bench_report.record(f"seed-demo ({CUSTOMERS:,} customers / {PRODUCTS:,} products)", rate,
                        "rows/s", target=f"> {MIN_ROWS_PER_SECOND:,} rows/s",
                        met=rate > MIN_ROWS_PER_SECOND,
                        notes=f"{rows:,} rows in {timing['seconds']:.1f} s")
    assert rate > MIN_ROWS_PER_SECOND
