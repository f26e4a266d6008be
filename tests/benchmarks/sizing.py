"""Benchmark sizes: reduced by default (the whole `make bench` fits in ~10 minutes on 2 cores),
the issues' large sizes with `pytest --full` / `make bench-full` / BENCH_FULL=1."""

from __future__ import annotations

import os

FULL_ENV = "BENCH_FULL"


def bench_full() -> bool:
    """True when the large sizes were asked for (`--full` sets BENCH_FULL=1 at configure time)."""
    return os.environ.get(FULL_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def bench_size(reduced: int, full: int, env: str | None = None) -> int:
    """``full`` under --full, else ``reduced``; the variable ``env``, when set, overrides both."""
    if env and os.environ.get(env, "").strip():
        return int(os.environ[env])
    return full if bench_full() else reduced


def sizes_label() -> str:
    return "full (--full)" if bench_full() else "reduced (default; --full for the large sizes)"
