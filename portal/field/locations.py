"""GPS positions of field agents: validation of what phones send (our JSON and the OsmAnd /
Traccar Client protocol), bulk storage, latest positions and a day's route.

Every point is checked alone first. A refused point is not stored as a position and comes back
with a reason code (the API answers it to the phone); one that can never be accepted (all
refusals but a time only a little ahead, which becomes acceptable as time passes) is kept in
``rejected_locations`` with its reason and the values as sent (:func:`store_rejections`), for
ops and supervisors; a suspicious one is stored with a ``flag``. Then the
points that can be stored are judged for plausibility against each other and the agent's stored
points (portal/field/plausibility.py): one outside the service area, or too fast from its
neighbours, is stored with its ``implausible_reason`` and left out of routes, distances and the
last position (every read here filters on :data:`PLAUSIBLE`). The same agent and
``recorded_at`` twice is a duplicate, ignored by the database (unique index, ON CONFLICT DO
NOTHING); a point older than the last one is stored all the same — order is by ``recorded_at``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app, has_app_context
from sqlalchemy import text
from sqlalchemy.orm import Session

from portal import clock
from portal.field import geo as field_geo
from portal.field import plausibility
from portal.text import printable

MAX_BATCH = 1000
KNOTS_TO_MS = 0.514444

# refusal reason codes (stable: phones and docs/integrations.md rely on them)
REASONS = {
    "malformed": "a point must be a JSON object",
    "missing_field": "a required field is missing",
    "invalid_number": "a field that must be a number is not one",
    "lat_out_of_range": "lat must be between -90 and 90",
    "lon_out_of_range": "lon must be between -180 and 180",
    "null_island": "lat 0, lon 0 is a receiver without a fix",
    "invalid_timestamp": "recorded_at must be ISO 8601 with a zone, or Unix seconds/milliseconds",
    "future_timestamp": "recorded_at is in the future",
    "too_old": "recorded_at is older than the oldest point accepted",
    "accuracy_absurd": "accuracy is negative or beyond the largest accepted",
}
# flags stored with a point that is kept
FLAG_POOR_ACCURACY = "poor_accuracy"
FLAG_SPEED = "implausible_speed"
FLAG_MOCK = "mock_location"  # the phone says the position comes from a mock provider
FLAG_NOT_VALID = "not_valid"  # the tracker says the fix is not valid (OsmAnd ``valid=false``)
MAX_SPEED_MS = 70.0  # 250 km/h: not a motorbike in a city
# the condition every read of positions that trusts them adds (routes, last position, …)
PLAUSIBLE = "implausible_reason IS NULL"


class PointRefused(ValueError):
    """A point that cannot be stored. ``final``: it never will be (kept as rejected and answered
    2xx to trackers); otherwise sending it again later may succeed (a time a little ahead).
    ``recorded_at``: the point's time, when it could be read."""

    def __init__(self, code: str, message: str | None = None, *, final: bool = True,
                 recorded_at: datetime | None = None):
        super().__init__(message or REASONS[code])
        self.code = code
        self.message = message or REASONS[code]
        self.final = final
        self.recorded_at = recorded_at


@dataclass
class Limits:
    flag_accuracy_m: float = 500.0
    max_accuracy_m: float = 10_000.0
    future_tolerance_s: int = 120
    max_age_days: int = 7
    # a point ahead by more than the tolerance but at most this is refused for now (it becomes
    # acceptable as time passes: a phone clock a few minutes fast); beyond, for good
    future_retry_s: int = 900

    @classmethod
    def from_config(cls) -> Limits:
        if not has_app_context():
            return cls()
        c = current_app.config
        return cls(c.get("LOCATION_FLAG_ACCURACY_M", 500.0), c.get("LOCATION_MAX_ACCURACY_M",
                                                                     10_000.0),
                   c.get("LOCATION_FUTURE_TOLERANCE_S", 120), c.get("LOCATION_MAX_AGE_DAYS", 7),
                   c.get("LOCATION_FUTURE_RETRY_S", 900))


@dataclass
class Point:
    lat: float
    lon: float
    recorded_at: datetime
    accuracy_m: float | None = None
    speed: float | None = None  # m/s
    heading: float | None = None
    battery: float | None = None  # percent
    flag: str | None = None
    implausible: str | None = None  # plausibility.OUTSIDE / TOO_FAST: stored, not trusted
    implausible_note: str | None = None  # why, for the phone
    time_source: str = "device"  # "received": sent without a time, recorded_at = receipt
    device_flags: tuple[str, ...] = ()  # what the phone says of its fix (FLAG_MOCK, ...)


@dataclass
class IngestResult:
    received: int = 0
    accepted: int = 0  # stored now
    duplicates: int = 0  # same agent + recorded_at already stored (or twice in the batch)
    flagged: int = 0  # stored with a flag or as implausible
    # {"index", "code", "message", "retry"}; retry false: refused for good, kept as rejected
    refused: list[dict] = field(default_factory=list)
    implausible: list[dict] = field(default_factory=list)  # stored: {"index", "reason", …}
    rejected: int = 0  # refused for good (kept in rejected_locations)

    @property
    def retryable(self) -> list[dict]:
        """The refusals that sending the point again later may turn into an acceptance."""
        return [r for r in self.refused if r["retry"]]

    def as_dict(self) -> dict:
        return {"received": self.received, "accepted": self.accepted,
                "duplicates": self.duplicates, "flagged": self.flagged,
                "rejected": self.rejected, "refused": self.refused,
                "implausible": self.implausible}


# --- parsing ---------------------------------------------------------------------------------


def _number(value, name: str, required: bool = False) -> float | None:
    if value is None or value == "":
        if required:
            raise PointRefused("missing_field", f"{name} is required")
        return None
    if isinstance(value, bool):
        raise PointRefused("invalid_number", f"{name} must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond float
        raise PointRefused("invalid_number", f"{name} must be a number") from None
    if not math.isfinite(number):
        raise PointRefused("invalid_number", f"{name} must be a finite number")
    return number


def parse_timestamp(value, name: str = "recorded_at") -> datetime:
    """ISO 8601 with a zone, or Unix time in seconds or milliseconds (numbers or digits)."""
    if value is None or value == "":
        raise PointRefused("missing_field", f"{name} is required")
    try:
        if isinstance(value, int | float) and not isinstance(value, bool) or (
                isinstance(value, str) and value.replace(".", "", 1).isdigit()):
            seconds = float(value)
            if seconds > 1e11:  # milliseconds
                seconds /= 1000
            return datetime.fromtimestamp(seconds, UTC)
        if isinstance(value, str):
            ts = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            if ts.tzinfo is None:
                raise PointRefused("invalid_timestamp",
                                   f"{name} needs a time zone (e.g. 2026-11-24T08:00:00Z)")
            return ts.astimezone(UTC)
    except PointRefused:
        raise
    except (ValueError, OverflowError, OSError):
        pass
    raise PointRefused("invalid_timestamp", f"{name} must be ISO 8601 with a zone, or Unix "
                                            "seconds/milliseconds")


def check_point(point: Point, now: datetime, limits: Limits) -> Point:
    """Range, time and accuracy rules; sets ``flag``; raises PointRefused."""
    if not -90 <= point.lat <= 90:
        raise PointRefused("lat_out_of_range", f"lat {point.lat} is not between -90 and 90")
    if not -180 <= point.lon <= 180:
        raise PointRefused("lon_out_of_range", f"lon {point.lon} is not between -180 and 180")
    if point.lat == 0 and point.lon == 0:
        raise PointRefused("null_island")
    if point.recorded_at > now + timedelta(seconds=limits.future_tolerance_s):
        ahead = int((point.recorded_at - now).total_seconds())
        raise PointRefused("future_timestamp", f"recorded_at is {ahead} s in the future "
                                               f"(tolerance {limits.future_tolerance_s} s)",
                           final=ahead > limits.future_retry_s, recorded_at=point.recorded_at)
    if point.recorded_at < now - timedelta(days=limits.max_age_days):
        raise PointRefused("too_old", f"recorded_at is older than {limits.max_age_days} days",
                           recorded_at=point.recorded_at)
    if point.accuracy_m == 0:
        point.accuracy_m = None  # Android's "no accuracy" (Location.getAccuracy()), never 0 m
    if point.accuracy_m is not None and not 0 <= point.accuracy_m <= limits.max_accuracy_m:
        raise PointRefused("accuracy_absurd", f"accuracy {point.accuracy_m:g} m is not between "
                                              f"0 and {limits.max_accuracy_m:g} m",
                           recorded_at=point.recorded_at)
    flags = list(point.device_flags)
    if point.accuracy_m is not None and point.accuracy_m > limits.flag_accuracy_m:
        flags.append(FLAG_POOR_ACCURACY)
    if point.speed is not None and not 0 <= point.speed <= MAX_SPEED_MS:
        flags.append(FLAG_SPEED)
        point.speed = None if point.speed < 0 else point.speed
    if point.battery is not None and not 0 <= point.battery <= 100:
        point.battery = None
    if point.heading is not None:
        point.heading = point.heading % 360
    if point.speed is not None and point.speed >= 100_000:
        point.speed = None  # beyond numeric(7,2); the point is flagged already
    point.flag = ",".join(flags) or None
    return point


def _fast_point(raw: dict) -> Point | None:
    """The common case, cheaply: numbers as JSON numbers and an ISO timestamp with a zone.
    None when anything is unusual (the careful path then says exactly what)."""
    lat, lon, ts = raw.get("lat"), raw.get("lon"), raw.get("recorded_at")
    if type(lat) not in _NUMBER or type(lon) not in _NUMBER or type(ts) is not str:
        return None
    optional = [raw.get(k) for k in ("accuracy_m", "speed", "heading", "battery")]
    if any(v is not None and type(v) not in _NUMBER for v in optional) or "lng" in raw \
            or "accuracy" in raw:
        return None
    try:
        recorded_at = datetime.fromisoformat(ts)
    except ValueError:
        return None
    try:  # an integer beyond float or a time at year 1 (astimezone) overflows
        if recorded_at.tzinfo is None or not all(
                math.isfinite(v) for v in (lat, lon, *[o for o in optional if o is not None])):
            return None
        return Point(float(lat), float(lon), recorded_at.astimezone(UTC),
                     *[None if v is None else float(v) for v in optional])
    except OverflowError:
        return None


_NUMBER = (int, float)


def parse_json_point(raw) -> Point:
    """One point of ``POST /api/v1/field/locations``."""
    if not isinstance(raw, dict):
        raise PointRefused("malformed")
    fast = _fast_point(raw)
    if fast is not None:
        return fast
    return Point(
        lat=_number(raw.get("lat"), "lat", required=True),
        lon=_number(raw.get("lon", raw.get("lng")), "lon", required=True),
        recorded_at=parse_timestamp(raw.get("recorded_at")),
        accuracy_m=_number(raw.get("accuracy_m", raw.get("accuracy")), "accuracy_m"),
        speed=_number(raw.get("speed"), "speed"),
        heading=_number(raw.get("heading"), "heading"),
        battery=_number(raw.get("battery"), "battery"),
    )


# OsmAnd ``timestamp`` as Traccar's decoder reads it: digits are Unix seconds below 2^31 and
# milliseconds above; text with a "T" is ISO 8601 (Traccar requires a zone; one without is read
# like the next form here); otherwise ``yyyy-MM-dd HH:mm:ss`` (a "+" in a query string is a
# space), which carries no zone: Traccar reads it in its server's zone, here in
# OSMAND_NAIVE_TIMEZONE (UTC, the zone Traccar servers run in by default).
_OSMAND_DIGITS = re.compile(r"[+-]?\d+")
_OSMAND_REGION = re.compile(r"(?P<ts>[^\[]+)\[(?P<zone>[^\]]+)\]")  # 2026-…+07:00[Asia/…]
_INT_MAX = 2**31 - 1


def naive_zone() -> ZoneInfo:
    """The zone an OsmAnd time without one is read in (``OSMAND_NAIVE_TIMEZONE``)."""
    name = current_app.config.get("OSMAND_NAIVE_TIMEZONE", "UTC") if has_app_context() \
        else "UTC"
    return ZoneInfo(name or "UTC")


def parse_osmand_timestamp(value, zone: ZoneInfo | None = None) -> datetime | None:
    """An OsmAnd ``timestamp`` (or the Traccar Client JSON ``timestamp``) as UTC; None when
    it is missing or empty: the time of receipt is used, as Traccar does."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise PointRefused("invalid_timestamp", "timestamp must be a time")
    raw = str(value).strip()
    try:
        if isinstance(value, int | float) or _OSMAND_DIGITS.fullmatch(raw):
            number = float(value) if isinstance(value, float) else int(raw)
            seconds = number if abs(number) < _INT_MAX else number / 1000
            return datetime.fromtimestamp(seconds, UTC)
        if raw.replace(".", "", 1).isdigit():  # decimal seconds (not Traccar's; harmless)
            return datetime.fromtimestamp(float(raw), UTC)
        region = _OSMAND_REGION.fullmatch(raw)
        if region:
            raw = region["ts"]
        ts = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=ZoneInfo(region["zone"]) if region
                            else zone or naive_zone())
        return ts.astimezone(UTC)
    except (ValueError, OverflowError, OSError, ZoneInfoNotFoundError):
        pass
    raise PointRefused("invalid_timestamp", "timestamp must be Unix seconds or milliseconds, "
                                            "ISO 8601, or yyyy-MM-dd HH:mm:ss")


def _osmand_bool(value) -> bool | None:
    if value is None or value == "":
        return None
    return str(value).strip().lower() in ("true", "1")


def parse_osmand_params(params, *, now: datetime | None = None) -> tuple[str | None, Point]:
    """OsmAnd protocol (query string or form), as Traccar's decoder reads it: ``id`` /
    ``deviceid``, ``lat``, ``lon`` (or ``location=lat,lon``), ``timestamp`` (missing: the
    time of receipt, ``time_source = "received"``), ``accuracy`` (or ``hdop``; 0 = unknown),
    ``speed`` (knots), ``bearing`` / ``heading``, ``batt``; ``valid=false`` and ``mock=true``
    flag the point. Everything else Traccar knows (altitude, charge, motion, driverUniqueId,
    cell, wifi, alarm, odometer, ...) is accepted and not stored."""
    device_id = params.get("id") or params.get("deviceid")
    lat, lon = params.get("lat"), params.get("lon")
    if (lat in (None, "") or lon in (None, "")) and params.get("location"):
        lat, _, lon = str(params["location"]).partition(",")
    speed = _number(params.get("speed"), "speed")
    recorded_at = parse_osmand_timestamp(params.get("timestamp"))
    flags = []
    if _osmand_bool(params.get("valid")) is False:
        flags.append(FLAG_NOT_VALID)
    if _osmand_bool(params.get("mock")):
        flags.append(FLAG_MOCK)
    accuracy = params.get("accuracy")
    try:
        lat, lon = _number(lat, "lat", required=True), _number(lon, "lon", required=True)
    except PointRefused as exc:
        exc.recorded_at = recorded_at  # kept with the rejected point
        raise
    return device_id, Point(
        lat=lat,
        lon=lon,
        recorded_at=recorded_at or now or clock.now(),
        time_source="device" if recorded_at else "received",
        accuracy_m=_number(accuracy if accuracy not in (None, "") else params.get("hdop"),
                           "accuracy"),
        speed=None if speed is None else speed * KNOTS_TO_MS,
        heading=_number(params.get("bearing", params.get("heading")), "bearing"),
        battery=_number(params.get("batt"), "batt"),
        device_flags=tuple(flags),
    )


def _unknown_if_negative(value: float | None) -> float | None:
    return None if value is None or value < 0 else value  # the JSON client's -1: unknown


def parse_osmand_json(body: dict, *, now: datetime | None = None) -> tuple[str | None, list]:
    """The JSON form of the Traccar Client (``{"device_id", "location": {...} | [...]}``, the
    shape of flutter_background_geolocation): returns the device id and a list of
    Point-or-PointRefused, one per location. ``coords.speed`` is m/s; -1 (speed, heading,
    accuracy, battery level) and accuracy 0 are unknown; ``mock: true`` flags the point."""
    device_id = body.get("device_id") or body.get("id")
    locations = body.get("location", body.get("locations"))
    if isinstance(locations, dict):
        locations = [locations]
    if not isinstance(locations, list):
        raise PointRefused("malformed", "expected 'location' (an object or a list)")
    out: list = []
    for loc in locations:
        try:
            if not isinstance(loc, dict):
                raise PointRefused("malformed")
            coords = loc.get("coords") or {}
            if not isinstance(coords, dict):
                raise PointRefused("malformed", "coords must be an object")
            battery = loc.get("battery") or {}
            level = battery.get("level") if isinstance(battery, dict) else None
            level = _unknown_if_negative(_number(level, "battery.level"))
            recorded_at = parse_osmand_timestamp(loc.get("timestamp"))
            out.append(Point(
                lat=_number(coords.get("latitude"), "coords.latitude", required=True),
                lon=_number(coords.get("longitude"), "coords.longitude", required=True),
                recorded_at=recorded_at or now or clock.now(),
                time_source="device" if recorded_at else "received",
                accuracy_m=_unknown_if_negative(_number(coords.get("accuracy"),
                                                        "coords.accuracy")),
                speed=_unknown_if_negative(_number(coords.get("speed"), "coords.speed")),
                heading=_unknown_if_negative(_number(coords.get("heading"), "coords.heading")),
                battery=None if level is None else level * 100,
                device_flags=(FLAG_MOCK,) if loc.get("mock") is True else (),
            ))
        except PointRefused as exc:
            out.append(exc)
    return device_id, out


# --- storing ---------------------------------------------------------------------------------

# The batch travels as one JSON parameter (json.dumps is C; adapting eight Python lists to
# PostgreSQL arrays costs more than the insert) and is unpacked by json_to_recordset.
_INSERT_SQL = """
    INSERT INTO agent_locations (agent_id, lat, lon, accuracy_m, speed, heading, battery,
                                 recorded_at, received_at, source, flag, implausible_reason,
                                 time_source)
    SELECT :agent_id, p.a, p.o, p.c, p.s, p.h, p.b, p.t, :received_at, :source, p.f, p.i,
           coalesce(p.r, 'device')
    FROM json_to_recordset(CAST(:points AS json))
         AS p(a float8, o float8, c float8, s float8, h float8, b float8, t timestamptz, f text,
              i text, r text)
    ON CONFLICT (agent_id, recorded_at) DO NOTHING
"""
_INSERT = text(_INSERT_SQL)
# with flagged points, RETURNING tells how many of them were stored (not duplicates); it costs
# more than the plain insert, whose row count is enough for the common batch without flags
_INSERT_COUNTING_FLAGS = text(
    f"WITH ins AS ({_INSERT_SQL} RETURNING flag, implausible_reason) "
    "SELECT count(*), count(*) FILTER (WHERE flag IS NOT NULL OR implausible_reason IS NOT NULL) "
    "FROM ins")


def store_points(session: Session, agent_id: int, points: list[Point], *, source: str = "api",
                 now: datetime | None = None) -> tuple[int, int]:
    """Insert checked and judged points (``plausibility.judge``) in one statement (no ORM row
    per point); no commit. Returns (stored, stored with a flag or as implausible); the rest were
    duplicates."""
    if not points:
        return 0, 0
    payload = json.dumps([
        {"a": round(p.lat, 6), "o": round(p.lon, 6), "c": p.accuracy_m, "s": p.speed,
         "h": p.heading, "b": p.battery, "t": p.recorded_at.isoformat(), "f": p.flag,
         "i": p.implausible, **({"r": p.time_source} if p.time_source != "device" else {})}
        for p in points])
    params = {"agent_id": agent_id, "received_at": now or clock.now(), "source": source,
              "points": payload}
    if any(p.flag or p.implausible for p in points):
        row = session.execute(_INSERT_COUNTING_FLAGS, params).one()
        return int(row[0]), int(row[1])
    return session.execute(_INSERT, params).rowcount, 0


# A rejected point sent again (the same values from the same agent) is one row, counted.
_INSERT_REJECTIONS = text("""
    INSERT INTO rejected_locations AS r (agent_id, device_id, source, reason, message, raw,
                                         fingerprint, recorded_at, received_at,
                                         last_received_at)
    SELECT :agent_id, :device_id, :source, x.reason, x.message, x.raw, x.fingerprint,
           x.recorded_at, :received_at, :received_at
    FROM json_to_recordset(CAST(:rows AS json))
         AS x(reason text, message text, raw jsonb, fingerprint text, recorded_at timestamptz)
    ON CONFLICT (agent_id, fingerprint) DO UPDATE SET
        times = r.times + 1, last_received_at = EXCLUDED.last_received_at,
        device_id = coalesce(EXCLUDED.device_id, r.device_id)
""")
MAX_RAW_CHARS = 4000  # a rejected point's values as sent, kept up to this size


def _raw_values(raw) -> dict:
    """What a phone sent for one point, as a JSON object to keep (a bare value is wrapped;
    ``token`` is never kept; beyond MAX_RAW_CHARS only the start is)."""
    if hasattr(raw, "to_dict"):  # a MultiDict of query / form values
        raw = {k: v[0] if len(v) == 1 else v for k, v in raw.to_dict(flat=False).items()}
    if not isinstance(raw, dict):
        raw = {"value": raw}
    raw = {str(k): v for k, v in raw.items() if k != "token"}
    try:
        encoded = json.dumps(raw, default=str, ensure_ascii=False, allow_nan=False)
    except (ValueError, RecursionError):  # NaN, Infinity (PostgreSQL refuses), too deep
        encoded = json.dumps({"truncated": repr(raw)[:MAX_RAW_CHARS]}, ensure_ascii=False)
    # what PostgreSQL cannot store (NUL, lone surrogates) is replaced, never refused
    encoded = printable(encoded).replace("\\u0000", "\\ufffd")
    if len(encoded) > MAX_RAW_CHARS:
        return {"truncated": encoded[:MAX_RAW_CHARS]}
    return json.loads(encoded)


def store_rejections(session: Session, agent_id: int, rejections: list[tuple],
                     *, device_id: str | None, source: str, now: datetime) -> None:
    """Keep points refused for good: ``rejections`` are (raw values, PointRefused); no
    commit. The same values from the same agent again add to the row's ``times``."""
    if not rejections:
        return
    rows = []
    for raw, exc in rejections:
        values = _raw_values(raw)
        fingerprint = hashlib.sha256(json.dumps([source, values], sort_keys=True,
                                                default=str).encode()).hexdigest()
        rows.append({"reason": exc.code, "message": exc.message[:300], "raw": values,
                     "fingerprint": fingerprint,
                     "recorded_at": exc.recorded_at.isoformat() if exc.recorded_at else None})
    # one row per fingerprint in a statement (ON CONFLICT cannot touch a row twice)
    unique = list({r["fingerprint"]: r for r in rows}.values())
    session.execute(_INSERT_REJECTIONS, {
        "agent_id": agent_id, "device_id": device_id, "source": source, "received_at": now,
        "rows": json.dumps(unique, default=str)})


def relax_commit(session: Session) -> None:
    """This transaction's commit does not wait for the WAL flush (``LOCATION_ASYNC_COMMIT``,
    on by default): a database crash may lose the last few milliseconds of positions, never
    corrupt anything. Positions are telemetry; only location posts use it."""
    if not has_app_context() or current_app.config.get("LOCATION_ASYNC_COMMIT", True):
        session.execute(text("SET LOCAL synchronous_commit TO off"))


def ingest(session: Session, agent_id: int, raw_points: list, *, source: str = "api",
           parse=parse_json_point, now: datetime | None = None,
           limits: Limits | None = None, sent: list | None = None,
           device_id: str | None = None) -> IngestResult:
    """Check and store a batch of raw points (dicts of our JSON API by default, or already
    parsed Points / PointRefused) for one agent; no commit. A point refused for good is kept
    in ``rejected_locations`` with ``sent[i]`` (what the phone sent for it; by default the raw
    point itself) and ``device_id``."""
    now = now or clock.now()
    limits = limits or Limits.from_config()
    result = IngestResult(received=len(raw_points))
    good: list[Point] = []
    indexes: list[int] = []
    rejections: list[tuple] = []
    for index, raw in enumerate(raw_points):
        point = None
        try:
            if isinstance(raw, PointRefused):
                raise raw
            point = raw if isinstance(raw, Point) else parse(raw)
            good.append(check_point(point, now, limits))
            indexes.append(index)
        except PointRefused as exc:
            if exc.recorded_at is None and point is not None:
                exc.recorded_at = point.recorded_at
            result.refused.append({"index": index, "code": exc.code, "message": exc.message,
                                   "retry": not exc.final})
            if exc.final:
                rejections.append((raw if sent is None else sent[index], exc))
    store_rejections(session, agent_id, rejections, device_id=device_id, source=source, now=now)
    result.rejected = len(rejections)
    plausibility.judge(session, agent_id, good)
    stored, flagged = store_points(session, agent_id, good, source=source, now=now)
    result.accepted, result.flagged = stored, flagged
    result.duplicates = len(good) - stored
    result.implausible = [{"index": i, "reason": p.implausible, "message": p.implausible_note}
                          for i, p in zip(indexes, good, strict=True) if p.implausible]
    return result


# --- reading ---------------------------------------------------------------------------------


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The bank business day ``day`` as a UTC [start, end) range."""
    zone = clock.bank_zone()
    start = datetime.combine(day, time(0), zone)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def latest_positions(session: Session, *, team_id: int | None = None,
                     agent_ids: list[int] | None = None) -> list[dict]:
    """The last plausible position of every active field agent (None when none yet)."""
    where = ["u.role = 'field_agent'", "u.active"]
    params: dict = {}
    if team_id is not None:
        where.append("u.team_id = :team_id")
        params["team_id"] = team_id
    if agent_ids is not None:
        where.append("u.id = ANY(:agent_ids)")
        params["agent_ids"] = list(agent_ids)
    rows = session.execute(text(f"""
        SELECT u.id, u.username, u.full_name, u.team_id, t.name AS team_name,
               l.lat, l.lon, l.accuracy_m, l.speed, l.battery, l.recorded_at
        FROM users u
        LEFT JOIN teams t ON t.id = u.team_id
        LEFT JOIN LATERAL (
            SELECT lat, lon, accuracy_m, speed, battery, recorded_at FROM agent_locations
            WHERE agent_id = u.id AND {PLAUSIBLE} ORDER BY recorded_at DESC LIMIT 1
        ) l ON true
        WHERE {' AND '.join(where)}
        ORDER BY u.full_name
    """), params).mappings().all()
    return [dict(r) for r in rows]


# --- presence: THE definition of a field agent being "live" ----------------------------------
# The map, the supervisor's home and any other page say "live" of a field agent by these: a
# last position (``latest_positions``) younger than FIELD_STALE_MINUTES (default 15).

DEFAULT_STALE_MINUTES = 15


def stale_minutes() -> int:
    """Minutes without a position after which a field agent is no longer live."""
    if has_app_context():
        return int(current_app.config.get("FIELD_STALE_MINUTES", DEFAULT_STALE_MINUTES))
    return DEFAULT_STALE_MINUTES


def is_live(seen_at: datetime | None, now: datetime | None = None) -> bool:
    """A last position recorded at ``seen_at`` makes its agent live at ``now``."""
    if seen_at is None:
        return False
    return (now or clock.now()) - seen_at <= timedelta(minutes=stale_minutes())


@dataclass(frozen=True)
class Presence:
    seen_at: datetime | None  # the last position's time (None: no position yet)
    live: bool


def presence(session: Session, agent_ids: list[int],
             now: datetime | None = None) -> dict[int, Presence]:
    """{field agent id: Presence} of the active field agents among ``agent_ids``."""
    if not agent_ids:
        return {}
    now = now or clock.now()
    return {row["id"]: Presence(row["recorded_at"], is_live(row["recorded_at"], now))
            for row in latest_positions(session, agent_ids=agent_ids)}


def latest_position(session: Session, agent_id: int) -> dict | None:
    """The agent's last plausible position (None when none yet)."""
    row = session.execute(text(f"""
        SELECT lat, lon, accuracy_m, recorded_at FROM agent_locations
        WHERE agent_id = :a AND {PLAUSIBLE} ORDER BY recorded_at DESC LIMIT 1"""),
        {"a": agent_id}).mappings()
    found = row.first()
    return dict(found) if found else None


def route_history(session: Session, agent_id: int, day: date, *,
                  tolerance_m: float = 15.0) -> dict:
    """An agent's points of a bank day: simplified line, distance travelled, stops.

    Implausible points are left out of everything (``implausible_points`` counts them), points
    flagged for poor accuracy out of the line and the distance."""
    start, end = day_bounds(day)
    rows = session.execute(text("""
        SELECT lat, lon, recorded_at, flag, implausible_reason FROM agent_locations
        WHERE agent_id = :a AND recorded_at >= :s AND recorded_at < :e
        ORDER BY recorded_at"""), {"a": agent_id, "s": start, "e": end}).all()
    implausible = sum(1 for r in rows if r.implausible_reason)
    good = [(float(r.lat), float(r.lon), r.recorded_at) for r in rows
            if not r.implausible_reason and not (r.flag and FLAG_POOR_ACCURACY in r.flag)]
    latlon = [(p[0], p[1]) for p in good]
    keep = field_geo.simplify(latlon, tolerance_m)
    found_stops = field_geo.stops(good)
    return {
        "agent_id": agent_id,
        "date": day.isoformat(),
        "points": len(rows),
        "used_points": len(good),
        "implausible_points": implausible,
        "line": [[good[i][0], good[i][1], good[i][2].isoformat()] for i in keep],
        "distance_m": round(field_geo.path_length_m(latlon), 1),
        "stops": [{"lat": round(s.lat, 6), "lon": round(s.lon, 6),
                   "started_at": s.started_at.isoformat(), "ended_at": s.ended_at.isoformat(),
                   "minutes": round(s.minutes, 1)} for s in found_stops],
        "first_at": good[0][2].isoformat() if good else None,
        "last_at": good[-1][2].isoformat() if good else None,
    }


def implausible_counts(session: Session, day: date,
                       agent_ids: list[int] | None = None) -> dict[int, int]:
    """Implausible points of each agent on the bank day ``day`` (agents without any left out)."""
    start, end = day_bounds(day)
    where, params = "", {"s": start, "e": end}
    if agent_ids is not None:
        where, params["agents"] = "AND agent_id = ANY(:agents)", list(agent_ids)
    rows = session.execute(text(f"""
        SELECT agent_id, count(*) AS n FROM agent_locations
        WHERE implausible_reason IS NOT NULL AND recorded_at >= :s AND recorded_at < :e {where}
        GROUP BY agent_id"""), params).all()
    return {r.agent_id: r.n for r in rows}
