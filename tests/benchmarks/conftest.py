"""Shared by every benchmark: the reduced / full sizes and the one summary report.

Sizes
    ``make bench`` runs every benchmark at reduced sizes (the whole run fits in ~10 minutes on
    2 cores); ``make bench-full`` / ``make bench FULL=1`` / ``pytest tests/benchmarks --full``
    run the issues' large sizes. ``--full`` is registered here, so it is known when
    tests/benchmarks (or a file in it) is on the command line; ``BENCH_FULL=1`` in the
    environment is the same switch and works everywhere (``--full`` sets it at configure time,
    before the benchmark modules are imported, so module-level constants may use it).

    ``from tests.benchmarks.sizing import bench_size, bench_full``
    ``bench_size(reduced, full, env=None) -> int``: ``full`` under --full, else ``reduced``; the
    environment variable ``env`` (e.g. ``"BENCH_WS_CUSTOMERS"``), when set, overrides both.
    ``bench_full() -> bool``; the fixture ``bench_full`` gives the same bool.

Summary report
    The session fixture ``bench_report`` collects one row per figure::

        bench_report.record(name, figure, unit, baseline=None, baseline_label=None, ratio=None,
                            target=None, met=None, notes="")

    ``name`` identifies the row (recording the same name again replaces it); ``figure`` a number
    in ``unit`` ("ms", "events/s"…); ``baseline`` the reference measured in the same run, same
    unit, described by ``baseline_label`` ("bare RQ", "COPY"…); ``ratio`` defaults to
    figure / baseline when both are given; ``target`` the goal as text ("≥ 50% of bare",
    "p95 < 300 ms"); ``met`` True / False / None (no target, or not judged); ``notes`` why a
    target is not met, or any caveat. Record before asserting, so a missed target still
    appears in the report.

    At the end of the session the block between ``<!-- bench-summary:begin -->`` and
    ``<!-- bench-summary:end -->`` at the top of docs/performance.md is (re)written: date,
    commit, machine (CPU, cores, RAM, PostgreSQL and Redis versions, load average at start and
    end), sizes, and the table (benchmark, figure, baseline, ratio, target, met / not met and
    why). Rows of benchmark files that did not run in this session are kept from the previous
    summary, marked "earlier run". Each benchmark still writes its own detail block (its own
    markers) further down the file; nothing here touches those.
"""

from __future__ import annotations

import os

import pytest

from tests.benchmarks.sizing import FULL_ENV
from tests.benchmarks.sizing import bench_full as _bench_full
from tests.benchmarks.summary import BenchReport

_report = BenchReport()  # one per session: the rows and which benchmark files ran


def pytest_addoption(parser):
    parser.addoption("--full", action="store_true", default=False,
                     help="benchmarks: the large sizes of the issues (same as BENCH_FULL=1)")


def pytest_configure(config):
    if config.getoption("--full", default=False):
        os.environ[FULL_ENV] = "1"


def pytest_runtest_setup(item):
    if item.module is not None:
        _report.current_module = item.module.__name__
        _report.modules_run.add(item.module.__name__)


@pytest.fixture(scope="session")
def bench_report():
    yield _report
    _report.write()


@pytest.fixture(scope="session")
def bench_full() -> bool:
    return _bench_full()
