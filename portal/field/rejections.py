"""Positions refused for good (``rejected_locations``, kept by portal/field/locations.py): what
ops and supervisors read of them — counts per reason and the latest ones, reasons in words."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import text
from sqlalchemy.orm import Session

from portal import clock

# the reason codes of portal/field/locations.py in words, for people
REASON_WORDS = {
    "malformed": _l("Not a position object"),
    "missing_field": _l("Position incomplete (latitude, longitude or a required field missing)"),
    "invalid_number": _l("A value that should be a number is not one"),
    "lat_out_of_range": _l("Latitude outside -90 to 90"),
    "lon_out_of_range": _l("Longitude outside -180 to 180"),
    "null_island": _l("No GPS fix (0, 0)"),
    "invalid_timestamp": _l("Time unreadable"),
    "future_timestamp": _l("Time far in the future (phone clock wrong)"),
    "too_old": _l("Older than the oldest position accepted (phone offline too long)"),
    "accuracy_absurd": _l("Accuracy impossible (negative or too large)"),
}
SOURCE_WORDS = {"api": _l("CRM app"), "osmand": "Traccar Client"}  # a product's name
LATEST_LIMIT = 50


def reason_words(code: str) -> str:
    return str(REASON_WORDS.get(code, _l("Refused")))


def _agent_filter(agent_ids: list[int] | None) -> tuple[str, dict]:
    if agent_ids is None:
        return "", {}
    return "AND r.agent_id = ANY(:agents)", {"agents": list(agent_ids)}


def summary(session: Session, *, agent_ids: list[int] | None = None,
            now: datetime | None = None) -> dict:
    """Rejected positions received in the last 24 hours and 7 days, per reason (a point
    received again counts each time it was sent), for the agents ``agent_ids`` (None: all)."""
    now = now or clock.now()
    where, params = _agent_filter(agent_ids)
    rows = session.execute(text(f"""
        SELECT r.reason,
               coalesce(sum(r.times) FILTER (WHERE r.last_received_at >= :day), 0) AS day,
               sum(r.times) AS week, count(DISTINCT r.agent_id) AS agents
        FROM rejected_locations r
        WHERE r.last_received_at >= :week {where}
        GROUP BY r.reason ORDER BY week DESC, r.reason"""),
        {"day": now - timedelta(hours=24), "week": now - timedelta(days=7), **params}).all()
    reasons = [{"code": r.reason, "words": reason_words(r.reason), "day": int(r.day),
                "week": int(r.week), "agents": int(r.agents)} for r in rows]
    return {"reasons": reasons, "day": sum(r["day"] for r in reasons),
            "week": sum(r["week"] for r in reasons)}


def latest(session: Session, *, agent_ids: list[int] | None = None,
           limit: int = LATEST_LIMIT) -> list[dict]:
    """The latest rejected positions (by when last received), with their agent and reason."""
    where, params = _agent_filter(agent_ids)
    rows = session.execute(text(f"""
        SELECT r.id, r.agent_id, u.full_name AS agent_name, r.device_id, r.source, r.reason,
               r.message, r.raw, r.recorded_at, r.received_at, r.last_received_at, r.times
        FROM rejected_locations r JOIN users u ON u.id = r.agent_id
        WHERE true {where}
        ORDER BY r.last_received_at DESC, r.id DESC LIMIT :limit"""),
        {"limit": limit, **params}).mappings().all()
    return [{**row, "words": reason_words(row["reason"]),
             "source_words": str(SOURCE_WORDS.get(row["source"], row["source"])),
             "raw_text": _raw_text(row["raw"] or {})}
            for row in rows]


def _raw_text(raw: dict) -> str:
    """The values as sent, compact: a query string when they were one, else JSON."""
    if all(isinstance(v, str) for v in raw.values()):
        return "&".join(f"{k}={v}" for k, v in raw.items())
    return json.dumps(raw, ensure_ascii=False, separators=(",", ":"))
