"""The GPS system's circuit breaker: the shared one of integrations.control (Redis, seen and
forcible on the ops page), under the names the GPS code uses.

After ``THRESHOLD`` failures in a row the circuit opens for ``OPEN_SECONDS``: callers skip the
GPS system (visits fall back to the local rule, forwarding waits) instead of each paying the
timeouts; then one probe is let through. Redis itself unavailable means "closed" — the call is
tried.
"""

from __future__ import annotations

from integrations.control import Breaker, breaker

SYSTEM = "GPS"
THRESHOLD = 3
OPEN_SECONDS = 30


def _breaker() -> Breaker:
    return breaker(SYSTEM, failures=THRESHOLD, cooldown=OPEN_SECONDS)


def is_open() -> bool:
    """True when the GPS system must not be called now (takes the half-open probe if due)."""
    return not _breaker().allow()


def record_success() -> None:
    _breaker().record_success()


def record_failure(error: BaseException | str | None = None) -> None:
    _breaker().record_failure(error)


def reset() -> None:
    _breaker().reset()


def state() -> str:
    return _breaker().state().state
