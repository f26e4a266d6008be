"""Live traffic of the push integrations: the payment webhook, the CTI webhook and the phones'
positions. They have no runs to count (the other side calls us), so each request is counted
at receipt, per hour, accepted (answered below 400) or refused, with how long it took.

- :func:`counted` — the decorator on their routes (portal/webhooks/payments.py, cti.py,
  portal/api/field.py): after the view answered (and committed), one autocommit statement adds
  the request to ``integration_traffic`` (its commit does not wait for the WAL flush; a writer
  takes one of ``SLOTS`` rows of the hour, so concurrent requests do not queue on one row lock).
  Counting never fails a request: an error is logged and the request answered as it was.
- :func:`read` — the figures of the ops cards (portal/ops/health.py): per hour over 24 h,
  totals, last received, latency, and the two alarms:
  ``refusals`` — more than ``TRAFFIC_REFUSAL_RATE`` of the requests of the last
  ``TRAFFIC_WINDOW_HOURS`` started hours refused (at least ``TRAFFIC_REFUSAL_MIN`` of them);
  ``silence`` — during the bank's working hours (``BANK_WORKING_HOURS`` on
  ``BANK_WORKING_DAYS``, bank time) nothing received for longer than the integration's
  ``TRAFFIC_SILENCE_MINUTES`` (counted from the later of the last request and the start of the
  working day; an integration never heard from is not silent, it is unknown).
  The alert rules (portal/ops/alerts.py) raise them; the card is degraded while one holds.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from functools import wraps
from time import perf_counter

from flask import current_app, make_response
from sqlalchemy import text
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from portal import clock
from portal.extensions import db
from portal.ops.words import N_, said

log = logging.getLogger(__name__)

PUSH_INTEGRATIONS = ("PAYMENTS", "CTI", "GPS")
SLOTS = 8
HOURS = 24  # hourly buckets on the card
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULTS = {
    "TRAFFIC_REFUSAL_RATE": 0.1,
    "TRAFFIC_REFUSAL_MIN": 5,
    "TRAFFIC_WINDOW_HOURS": 2,
    "TRAFFIC_SILENCE_MINUTES": "PAYMENTS=60,CTI=30,GPS=30",
    "BANK_WORKING_HOURS": "08:00-17:30",
    "BANK_WORKING_DAYS": "Mon,Tue,Wed,Thu,Fri",
}

RECORD_SQL = text("""
WITH relax AS (SELECT set_config('synchronous_commit', 'off', true))
INSERT INTO integration_traffic AS t (
    integration, hour, slot, accepted, refused, latency_ms_total, latency_ms_max,
    last_received_at, last_accepted_at, last_refused_at)
SELECT CAST(:integration AS varchar), CAST(:hour AS timestamptz), CAST(:slot AS smallint),
       CAST(:accepted AS integer), 1 - CAST(:accepted AS integer),
       CAST(:latency AS bigint), CAST(:latency AS integer), CAST(:at AS timestamptz),
       CASE WHEN CAST(:accepted AS integer) = 1 THEN CAST(:at AS timestamptz) END,
       CASE WHEN CAST(:accepted AS integer) = 0 THEN CAST(:at AS timestamptz) END
FROM relax
ON CONFLICT (integration, hour, slot) DO UPDATE SET
    accepted = t.accepted + EXCLUDED.accepted,
    refused = t.refused + EXCLUDED.refused,
    latency_ms_total = t.latency_ms_total + EXCLUDED.latency_ms_total,
    latency_ms_max = GREATEST(t.latency_ms_max, EXCLUDED.latency_ms_max),
    last_received_at = GREATEST(t.last_received_at, EXCLUDED.last_received_at),
    last_accepted_at = GREATEST(t.last_accepted_at, EXCLUDED.last_accepted_at),
    last_refused_at = GREATEST(t.last_refused_at, EXCLUDED.last_refused_at)
""")


def hour_of(moment: datetime) -> datetime:
    """The start of ``moment``'s hour (UTC)."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def record(integration: str, *, accepted: bool, latency_ms: float,
           at: datetime | None = None) -> None:
    """Count one request of ``integration`` (its own autocommit statement). Never raises."""
    at = at or clock.now()
    try:
        with db.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(RECORD_SQL, {
                "integration": integration, "hour": hour_of(at),
                "slot": hash((os.getpid(), threading.get_ident())) % SLOTS,
                "accepted": 1 if accepted else 0, "latency": max(0, round(latency_ms)),
                "at": at})
    except Exception:  # noqa: BLE001 - a count must never refuse what was accepted
        log.warning("traffic of %s not counted", integration, exc_info=True)


def counted(integration: str) -> Callable[[Callable], Callable]:
    """Count every request of the decorated route as ``integration``'s traffic: accepted when
    answered below 400, refused otherwise (an exception too); latency = the view's time."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            started = perf_counter()
            try:
                response = make_response(view(*args, **kwargs))
            except HTTPException as exc:
                _count(integration, (exc.code or 500) < 400, started)
                raise
            except Exception:
                _count(integration, False, started)
                raise
            _count(integration, response.status_code < 400, started)
            return response

        return wrapped

    return decorate


def _count(integration: str, accepted: bool, started: float) -> None:
    record(integration, accepted=accepted,
           latency_ms=(perf_counter() - started) * 1000)


# --- settings ---------------------------------------------------------------------------------


def _setting(config, key: str):
    value = config.get(key)
    return DEFAULTS[key] if value in (None, "") else value


def silence_minutes(config, integration: str) -> int | None:
    """``TRAFFIC_SILENCE_MINUTES`` of ``integration`` ("PAYMENTS=60,CTI=30,GPS=30"; a bare
    number applies to all; 0 or absent: no silence alarm)."""
    raw = str(_setting(config, "TRAFFIC_SILENCE_MINUTES"))
    found = None
    for part in raw.split(","):
        name, _, minutes = part.strip().rpartition("=")
        if not name or name.strip().upper() == integration:
            try:
                found = int(minutes)
            except ValueError:
                continue
    return found or None


def working_hours(config) -> tuple[time, time]:
    raw = str(_setting(config, "BANK_WORKING_HOURS"))
    try:
        start, end = (time.fromisoformat(p.strip()) for p in raw.split("-"))
    except ValueError:
        log.warning("BANK_WORKING_HOURS=%r is not HH:MM-HH:MM; using the default", raw)
        start, end = (time.fromisoformat(p) for p in DEFAULTS["BANK_WORKING_HOURS"].split("-"))
    return start, end


def working_days(config) -> set[int]:
    """Weekday numbers (Monday 0) of ``BANK_WORKING_DAYS`` ("Mon,Tue,Wed,Thu,Fri")."""
    raw = str(_setting(config, "BANK_WORKING_DAYS"))
    days = {DAY_NAMES.index(p.strip()[:3].lower()) for p in raw.split(",")
            if p.strip()[:3].lower() in DAY_NAMES}
    return days or {0, 1, 2, 3, 4}


def working_day_start(config, now: datetime) -> datetime | None:
    """When today's working hours began (UTC), if ``now`` is inside them; else None."""
    local = now.astimezone(clock.bank_zone())
    start, end = working_hours(config)
    if local.weekday() not in working_days(config) or not start <= local.time() < end:
        return None
    return clock.bank_datetime(local.date(), start)


# --- reading ----------------------------------------------------------------------------------


_HOURS_SQL = text("""
SELECT integration, hour, sum(accepted) AS accepted, sum(refused) AS refused,
       sum(latency_ms_total) AS latency_total, max(latency_ms_max) AS latency_max,
       max(last_accepted_at) AS last_accepted_at, max(last_refused_at) AS last_refused_at
FROM integration_traffic
WHERE integration = ANY(:names) AND hour >= :since AND hour <= :now
GROUP BY integration, hour
""")

# the last request of each, however long ago (its newest hour, read by the primary key)
_LAST_SQL = text("""
SELECT n.integration, (
    SELECT max(t.last_received_at) FROM integration_traffic t
    WHERE t.integration = n.integration
      AND t.hour = (SELECT max(x.hour) FROM integration_traffic x
                    WHERE x.integration = n.integration AND x.hour <= :now)
) AS last_received_at
FROM unnest(CAST(:names AS text[])) AS n(integration)
""")


@dataclass
class Traffic:
    integration: str
    since: datetime  # start of the oldest hourly bucket shown
    hourly: list[dict] = field(default_factory=list)  # oldest first: hour, accepted, refused
    accepted: int = 0  # over the buckets shown
    refused: int = 0
    latency_total_ms: int = 0
    latency_max_ms: int | None = None
    last_received_at: datetime | None = None
    last_accepted_at: datetime | None = None
    last_refused_at: datetime | None = None
    window_since: datetime | None = None  # the refusal-rate window
    window_accepted: int = 0
    window_refused: int = 0
    refusal_threshold: float = 0.1
    refusal_alarm: bool = False
    silence_limit_min: int | None = None
    silent_min: int | None = None  # minutes of silence in working hours, when over the limit

    @property
    def requests(self) -> int:
        return self.accepted + self.refused

    @property
    def refusal_rate(self) -> float | None:
        return self.refused / self.requests if self.requests else None

    @property
    def window_rate(self) -> float | None:
        total = self.window_accepted + self.window_refused
        return self.window_refused / total if total else None

    @property
    def latency_avg_ms(self) -> float | None:
        return self.latency_total_ms / self.requests if self.requests else None

    @property
    def silence_alarm(self) -> bool:
        return self.silent_min is not None

    def reasons(self) -> list[str]:
        """Why the card is degraded by its traffic (empty: it is not)."""
        out = []
        if self.refusal_alarm:
            total = self.window_accepted + self.window_refused
            since = self.window_since.astimezone(clock.bank_zone()).strftime("%H:%M")
            out.append(said(N_("%(rate)s%% of requests refused since %(since)s "
                               "(%(refused)s of %(total)s)"),
                            rate=f"{100 * self.window_rate:.0f}", since=since,
                            refused=self.window_refused, total=total))
        if self.silence_alarm:
            out.append(said(N_("no traffic for %(num)s min in working hours"),
                            num=self.silent_min))
        return out


def read(session: Session, names: list[str], *, now: datetime | None = None,
         config=None) -> dict[str, Traffic]:
    """{integration: Traffic} of the push integrations among ``names`` (two queries)."""
    names = [n for n in names if n in PUSH_INTEGRATIONS]
    if not names:
        return {}
    now = now or clock.now()
    config = config if config is not None else current_app.config
    current = hour_of(now)
    since = current - timedelta(hours=HOURS - 1)
    window_hours = max(1, int(_setting(config, "TRAFFIC_WINDOW_HOURS")))
    window_since = current - timedelta(hours=window_hours - 1)
    threshold = float(_setting(config, "TRAFFIC_REFUSAL_RATE"))
    minimum = int(_setting(config, "TRAFFIC_REFUSAL_MIN"))
    rows: dict[str, dict[datetime, dict]] = {}
    for row in session.execute(_HOURS_SQL, {"names": names, "since": since,
                                            "now": now}).mappings():
        rows.setdefault(row["integration"], {})[row["hour"].astimezone(UTC)] = dict(row)
    last = {r["integration"]: r["last_received_at"]
            for r in session.execute(_LAST_SQL, {"names": names, "now": now}).mappings()}
    day_start = working_day_start(config, now)
    out = {}
    for name in names:
        traffic = Traffic(name, since, refusal_threshold=threshold, window_since=window_since,
                          last_received_at=last.get(name))
        by_hour = rows.get(name, {})
        for n in range(HOURS):
            hour = since + timedelta(hours=n)
            row = by_hour.get(hour) or {}
            accepted, refused = int(row.get("accepted") or 0), int(row.get("refused") or 0)
            traffic.hourly.append({"hour": hour, "accepted": accepted, "refused": refused})
            traffic.accepted += accepted
            traffic.refused += refused
            traffic.latency_total_ms += int(row.get("latency_total") or 0)
            if row.get("latency_max") is not None:
                traffic.latency_max_ms = max(traffic.latency_max_ms or 0, row["latency_max"])
            for key in ("last_accepted_at", "last_refused_at"):
                value = row.get(key)
                if value is not None and (getattr(traffic, key) is None
                                          or value > getattr(traffic, key)):
                    setattr(traffic, key, value)
            if hour >= window_since:
                traffic.window_accepted += accepted
                traffic.window_refused += refused
        rate = traffic.window_rate
        traffic.refusal_alarm = (rate is not None and rate > threshold
                                 and traffic.window_refused >= minimum)
        limit = silence_minutes(config, name)
        traffic.silence_limit_min = limit
        if limit and day_start is not None and traffic.last_received_at is not None:
            quiet = now - max(traffic.last_received_at, day_start)
            if quiet > timedelta(minutes=limit):
                traffic.silent_min = int(quiet.total_seconds() // 60)
        out[name] = traffic
    return out
