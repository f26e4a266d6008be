"""The one clock of the agent workspace: ``now()`` in UTC and the bank's business date.

Tests (and a demo) freeze time by setting ``app.config["FROZEN_NOW"]`` to an aware datetime
(or an ISO 8601 string); everything that decides by time (contact windows, follow-ups, the
queue's "due" filters, promise dates) reads it from here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context

DEFAULT_ZONE = "Asia/Ho_Chi_Minh"


def now() -> datetime:
    """The current time (UTC, aware); ``FROZEN_NOW`` from the app config when set."""
    if has_app_context():
        frozen = current_app.config.get("FROZEN_NOW")
        if frozen:
            value = datetime.fromisoformat(frozen) if isinstance(frozen, str) else frozen
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            return value.astimezone(UTC)
    return datetime.now(UTC)


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
