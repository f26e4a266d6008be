"""Seeding at scale: 50,000 customers and 100,000 loans and cards, with rows per second.

Run with the benchmarks (``-m benchmark``); ``flask seed-demo --customers 500000 --loans 1000000``
is the full-size run.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

pytestmark = pytest.mark.benchmark

CUSTOMERS, PRODUCTS = 50_000, 100_000
MIN_ROWS_PER_SECOND = 5_000  # a floor far below what COPY reaches; catches row-by-row inserts


def test_seed_50k_customers_100k_products(app, db, benchmark):
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
    assert rate > MIN_ROWS_PER_SECOND
