"""The product's one clock: ``now()`` in UTC and the bank's business date.

Two settings move it, both for tests and demos, never in production:
- ``CRM_CLOCK_OFFSET_SECONDS`` (environment): the whole process tree runs shifted by that many
  seconds from the system clock. The test suite sets it from ``TEST_CLOCK`` once, so the pytest
  process and every server, worker and sandbox twin it starts share one running clock.
  PostgreSQL's ``crm_now()`` follows it on the product's connections (postgres_connect_args).
- ``FROZEN_NOW`` (app config, an aware datetime or ISO 8601 string): ``now()`` stands still at
  that instant inside the app context; a test freezes the instant its expectations depend on.

``now()`` is what decides by time (contact windows, follow-ups, due filters, promise dates,
business dates). ``running_now()`` ignores ``FROZEN_NOW``: record stamps (created_at, run
started/finished) keep their order while a test holds the business clock still.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context

DEFAULT_ZONE = "Asia/Ho_Chi_Minh"
OFFSET_ENV = "CRM_CLOCK_OFFSET_SECONDS"


@cache
def _parse_offset(raw: str) -> timedelta:
    try:
        return timedelta(seconds=float(raw))
    except ValueError:
        raise ValueError(f"{OFFSET_ENV}={raw!r} is not a number of seconds") from None


def offset() -> timedelta:
    """How far this process's clock runs from the system clock (0 unless shifted)."""
    raw = os.environ.get(OFFSET_ENV)
    return _parse_offset(raw) if raw else timedelta(0)


def postgres_connect_args() -> dict[str, str]:
    """Connection arguments that give PostgreSQL's ``crm_now()`` (migration 0013) this clock:
    what the database stamps by itself (column defaults, ``updated_at``) agrees with the
    product. Empty when the clock is the system's."""
    seconds = offset().total_seconds()
    return {"options": f"-c crm.clock_offset={seconds!r}"} if seconds else {}


def running_now() -> datetime:
    """The system time shifted by the process clock offset (UTC, aware); never frozen."""
    return datetime.now(UTC) + offset()


def now() -> datetime:
    """The current time (UTC, aware): ``FROZEN_NOW`` from the app config when set."""
    if has_app_context():
        frozen = current_app.config.get("FROZEN_NOW")
        if frozen:
            value = datetime.fromisoformat(frozen) if isinstance(frozen, str) else frozen
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            return value.astimezone(UTC)
    return running_now()


def bank_zone() -> ZoneInfo:
    name = current_app.config.get("BANK_TIMEZONE", DEFAULT_ZONE) if has_app_context() \
        else DEFAULT_ZONE
    return ZoneInfo(name)


def bank_today(at: datetime | None = None) -> date:
    """The business date in the bank's zone at ``at`` (default: now)."""
    return (at or now()).astimezone(bank_zone()).date()


def bank_datetime(day: date, at: time = time(8, 0)) -> datetime:
    """``day`` at local time ``at`` in the bank's zone, as a UTC datetime."""
    return datetime.combine(day, at, tzinfo=bank_zone()).astimezone(UTC)


def add_days(day: date, days: int) -> date:
    return day + timedelta(days=days)
