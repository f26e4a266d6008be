"""The health of every integration, for the ops page, the alerts and /metrics.

One card per integration (``CARDS``: T24, W4, LOS, payments, call centre, GPS, event bus). A
card's **state** is derived, in this order:

``paused``    ops switched the integration off (``integration_settings.enabled = false``);
``down``      its circuit breaker is open, or its last ``DOWN_AFTER_FAILED_RUNS`` finished runs
              all failed, or a backlog provider reports a level at or above its ``down_at``;
``degraded``  the breaker is half-open (probing), the last finished run failed or was partial,
              or a backlog is at or above its ``degraded_at``;
``healthy``   it has run (the event bus: its backlog could be read; a push integration: it
              received requests in 24 h) and none of the above holds;
``unknown``   nothing known yet (no run in 7 days, breaker closed).

A ``skipped`` run (a triggered run that had nothing to do) says nothing of the integration's
health: it is shown as the last run, but the states above are derived from the runs that worked.
The push integrations (payments, call centre, GPS) also have their live traffic on the card
(portal/ops/traffic.py): requests accepted and refused per hour, last received, latency; a
refusal rate over its threshold, or silence in working hours, degrades the card.

Figures over 24 h and 7 days come from ``integration_runs`` in one query per window: runs,
failures, failure rate, latency p50/p95 (``percentile_cont`` over each run's duration: its
``duration_ms`` or ``finished_at - started_at``) and records per run.

**Backlog providers** are small functions registered per integration
(``register_backlog("GPS", "unforwarded positions", fn, degraded_at=..., down_at=...)``);
``fn(session)`` returns a count. Each runs in a savepoint, so a provider whose table or column
does not exist yet shows "unavailable" instead of breaking the page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import text
from sqlalchemy.orm import Session

from integrations.control import breaker_states
from portal import clock
from portal.notifications.messages import Message, message
from portal.ops import traffic as push_traffic
from portal.ops.words import N_, said, shown

log = logging.getLogger(__name__)

DOWN_AFTER_FAILED_RUNS = 2
RECENT_RUNS = 30  # runs drawn in the duration and records charts


@dataclass(frozen=True)
class CardSpec:
    name: str  # portal.models.enums.INTEGRATIONS
    label: str
    description: str
    external: bool = True  # has a circuit breaker (an external system)
    resync: bool = False  # offers a full resync


# the cards' names and descriptions (msgids; CardSpec holds them lazily translated)
CARD_WORDS = {
    "T24": N_("T24 core banking"), "W4": N_("W4 card system"), "LOS": N_("Loan origination"),
    "PAYMENTS": N_("Payments"), "CTI": N_("Call centre"), "GPS": N_("GPS tracking"),
    "EVENTS": N_("Event bus"), "STRATEGIES": N_("Collection strategies"),
}
CARDS: tuple[CardSpec, ...] = (
    CardSpec("T24", _l(CARD_WORDS["T24"]), _l("customers, loans, collaterals · daily files"),
             resync=True),
    CardSpec("W4", _l(CARD_WORDS["W4"]), _l("cards · REST, updated_since cursor")),
    CardSpec("LOS", _l(CARD_WORDS["LOS"]), _l("applications · REST, updated_since cursor")),
    CardSpec("PAYMENTS", _l(CARD_WORDS["PAYMENTS"]), _l("signed webhooks · daily reconciliation")),
    CardSpec("CTI", _l(CARD_WORDS["CTI"]), _l("call and agent-status events · click-to-call")),
    CardSpec("GPS", _l(CARD_WORDS["GPS"]), _l("positions in · forwarding out")),
    CardSpec("EVENTS", _l(CARD_WORDS["EVENTS"]), _l("outbox relay · subscriber deliveries"),
             external=False),
    CardSpec("STRATEGIES", _l(CARD_WORDS["STRATEGIES"]),
             _l("daily run · segments, steps, messages, call queues"), external=False),
)
CARD_BY_NAME = {c.name: c for c in CARDS}
STATES = ("healthy", "degraded", "down", "paused", "unknown")


# --- backlog providers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BacklogProvider:
    integration: str
    label: str
    fn: Callable[[Session], int | None]
    degraded_at: int | None = None
    down_at: int | None = None
    link: str | None = None  # an endpoint name of a page listing the backlog


BACKLOGS: dict[tuple[str, str], BacklogProvider] = {}


def register_backlog(integration: str, label: str, fn: Callable[[Session], int | None], *,
                     degraded_at: int | None = None, down_at: int | None = None,
                     link: str | None = None) -> BacklogProvider:
    """Show ``fn(session)`` on ``integration``'s card as "<n> <label>" (re-registering the same
    label replaces it). ``degraded_at`` / ``down_at``: levels that change the card's state."""
    provider = BacklogProvider(integration.upper(), label, fn, degraded_at, down_at, link)
    BACKLOGS[(provider.integration, label)] = provider
    return provider


def _scalar(sql: str) -> Callable[[Session], int | None]:
    def fn(session: Session) -> int | None:
        return session.execute(text(sql)).scalar()

    return fn


register_backlog("EVENTS", "unrelayed events",
                 _scalar("SELECT count(*) FROM events WHERE relayed_at IS NULL"),
                 degraded_at=500, down_at=5000)
register_backlog("EVENTS", "dead letters",
                 _scalar("SELECT count(*) FROM event_deliveries WHERE status = 'dead'"),
                 degraded_at=1)
register_backlog("EVENTS", "deliveries retrying",
                 _scalar("SELECT count(*) FROM event_deliveries WHERE status = 'failed'"))
# defaults for the other integrations; their modules may register better ones (same label)
register_backlog("GPS", "unforwarded positions",
                 _scalar("SELECT count(*) FROM agent_locations WHERE forwarded_at IS NULL"),
                 degraded_at=5000)
register_backlog("GPS", "implausible positions (24 h)",  # kept, never trusted nor forwarded
                 _scalar("SELECT count(*) FROM agent_locations WHERE implausible_reason IS NOT "
                         "NULL AND recorded_at >= crm_now() - interval '24 hours'"))
register_backlog("GPS", "rejected positions (24 h)",  # refused for good, answered 2xx
                 _scalar("SELECT coalesce(sum(times), 0) FROM rejected_locations "
                         "WHERE last_received_at >= crm_now() - interval '24 hours'"),
                 link="field.rejected")
register_backlog("PAYMENTS", "rejected notifications (24 h)",
                 _scalar("SELECT count(*) FROM rejected_notifications "
                         "WHERE received_at >= crm_now() - interval '24 hours'"))


# the words of the backlogs registered above (their labels stay the English keys)
BACKLOG_WORDS = {
    "unrelayed events": N_("unrelayed events"),
    "dead letters": N_("dead letters"),
    "deliveries retrying": N_("deliveries retrying"),
    "unforwarded positions": N_("unforwarded positions"),
    "implausible positions (24 h)": N_("implausible positions (24 h)"),
    "rejected positions (24 h)": N_("rejected positions (24 h)"),
    "rejected notifications (24 h)": N_("rejected notifications (24 h)"),
}


def backlog_message(label: str) -> Message:
    """A backlog's label as a message (a label registered elsewhere: as it is)."""
    return message(BACKLOG_WORDS.get(label, label))


def read_backlogs(session: Session, integration: str) -> list[dict]:
    rows = []
    for provider in BACKLOGS.values():
        if provider.integration != integration:
            continue
        value, error = None, None
        try:
            with session.begin_nested():
                value = provider.fn(session)
        except Exception as exc:  # a table or column that does not exist (yet)
            error = type(exc).__name__
            log.info("backlog provider unavailable", extra={
                "integration": integration, "backlog": provider.label, "error": str(exc)[:200]})
        level = "ok"
        if value is not None:
            if provider.down_at is not None and value >= provider.down_at:
                level = "down"
            elif provider.degraded_at is not None and value >= provider.degraded_at:
                level = "degraded"
        rows.append({"label": provider.label, "value": value, "error": error, "level": level,
                     "link": provider.link})
    return rows


# --- figures from integration_runs -----------------------------------------------------------

_DURATION = ("COALESCE(duration_ms::float8, "
             "EXTRACT(EPOCH FROM (finished_at - started_at)) * 1000)")

# Every query on integration_runs names the integrations and a start time, so it reads the
# (integration, started_at) index instead of the whole history. One pass gives both windows.
_SCOPE = "integration = ANY(:names) AND started_at >= :since"


def _window_columns(prefix: str, cond: str) -> str:
    # a run that is still running, or that had nothing to do (skipped), is no run of the window
    done = "status NOT IN ('running', 'skipped')"
    return f"""
       count(*) FILTER (WHERE {cond} AND {done}) AS {prefix}runs,
       count(*) FILTER (WHERE {cond} AND status = 'failed') AS {prefix}failed,
       count(*) FILTER (WHERE {cond} AND status = 'partial') AS {prefix}partial,
       count(*) FILTER (WHERE {cond} AND status = 'succeeded') AS {prefix}succeeded,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY {_DURATION})
           FILTER (WHERE {cond} AND {done} AND finished_at IS NOT NULL) AS {prefix}p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY {_DURATION})
           FILTER (WHERE {cond} AND {done} AND finished_at IS NOT NULL) AS {prefix}p95,
       avg(loaded) FILTER (WHERE {cond} AND {done}) AS {prefix}loaded_per_run,
       avg(extracted) FILTER (WHERE {cond} AND {done}) AS {prefix}extracted_per_run,
       sum(loaded) FILTER (WHERE {cond}) AS {prefix}loaded"""


_WINDOW_SQL = text(f"""
SELECT integration,{_window_columns("d_", "started_at >= :day")},
       {_window_columns("w_", "true")}
FROM integration_runs WHERE {_SCOPE}
GROUP BY integration
""")


@dataclass
class WindowStats:
    runs: int = 0
    failed: int = 0
    partial: int = 0
    succeeded: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    loaded_per_run: float | None = None
    extracted_per_run: float | None = None
    loaded: int = 0

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.runs if self.runs else None

    @property
    def success_rate(self) -> float | None:
        return (self.runs - self.failed) / self.runs if self.runs else None


def _stats(row, prefix: str) -> WindowStats:
    def number(key):
        value = row[prefix + key]
        return None if value is None else float(value)

    return WindowStats(
        runs=row[prefix + "runs"], failed=row[prefix + "failed"],
        partial=row[prefix + "partial"], succeeded=row[prefix + "succeeded"],
        p50_ms=number("p50"), p95_ms=number("p95"), loaded_per_run=number("loaded_per_run"),
        extracted_per_run=number("extracted_per_run"), loaded=int(row[prefix + "loaded"] or 0),
    )


def window_stats(session: Session, names: list[str], *, day_since: datetime,
                 week_since: datetime) -> tuple[dict[str, WindowStats], dict[str, WindowStats]]:
    """({integration: 24 h figures}, {integration: 7 day figures})."""
    day, week = {}, {}
    for row in session.execute(_WINDOW_SQL, {"names": names, "since": week_since,
                                             "day": day_since}).mappings():
        day[row["integration"]] = _stats(row, "d_")
        week[row["integration"]] = _stats(row, "w_")
    return day, week


_RECENT_SQL = text(f"""
SELECT r.* FROM unnest(CAST(:names AS text[])) AS n(integration)
CROSS JOIN LATERAL (
  SELECT id, integration, kind, trigger, status, started_at, finished_at, loaded, extracted,
         quarantined, failed, attempt, errors, progress_done, progress_total, note,
         {_DURATION} AS duration
  FROM integration_runs
  WHERE integration = n.integration AND started_at >= :since
  ORDER BY started_at DESC, id DESC LIMIT :limit
) AS r ORDER BY r.integration, r.started_at DESC, r.id DESC
""")

# the latest success and failure of each integration, whenever they were (index, newest first);
# a customer's refresh is neither
_LAST_SQL = text("""
SELECT n.integration, ok.finished_at AS last_success, ko.finished_at AS last_failure
FROM unnest(CAST(:names AS text[])) AS n(integration)
LEFT JOIN LATERAL (SELECT finished_at FROM integration_runs
                   WHERE integration = n.integration AND status IN ('succeeded', 'partial')
                     AND kind <> 'refresh'
                   ORDER BY started_at DESC LIMIT 1) AS ok ON true
LEFT JOIN LATERAL (SELECT finished_at FROM integration_runs
                   WHERE integration = n.integration AND status = 'failed'
                     AND kind <> 'refresh'
                   ORDER BY started_at DESC LIMIT 1) AS ko ON true
""")

# runs per day (bank zone) over 7 days and, for the last 24 h, per hour: one pass
_DAILY_SQL = text(f"""
SELECT integration, date_trunc('day', started_at AT TIME ZONE :zone) AS day,
       CASE WHEN started_at >= :day THEN
            floor(EXTRACT(EPOCH FROM (:now - started_at)) / 3600)::int END AS hours_ago,
       count(*) FILTER (WHERE status IN ('succeeded', 'partial')) AS ok,
       count(*) FILTER (WHERE status = 'failed') AS failed
FROM integration_runs WHERE {_SCOPE} AND started_at <= :now
GROUP BY 1, 2, 3
""")


# The event bus has no runs: its figures are events published (``runs``), events with a dead
# delivery (``failed``) and the delivery latency (published → handled) percentiles.
_EVENTS_WINDOW_SQL = text("""
WITH ev AS (SELECT id, occurred_at FROM events WHERE occurred_at >= :week),
dead AS (SELECT DISTINCT ev.id, ev.occurred_at FROM event_deliveries d
         JOIN ev ON ev.id = d.event_id WHERE d.status = 'dead'),
lags AS (SELECT d.delivered_at,
                EXTRACT(EPOCH FROM (d.delivered_at - e.occurred_at)) * 1000 AS lag_ms
         FROM event_deliveries d JOIN events e ON e.id = d.event_id
         WHERE d.status = 'delivered' AND d.delivered_at >= :week)
SELECT (SELECT count(*) FROM ev WHERE occurred_at >= :day) AS d_runs,
       (SELECT count(*) FROM ev) AS w_runs,
       (SELECT count(*) FROM dead WHERE occurred_at >= :day) AS d_failed,
       (SELECT count(*) FROM dead) AS w_failed,
       l.*
FROM (SELECT
        percentile_cont(0.5) WITHIN GROUP (ORDER BY lag_ms)
            FILTER (WHERE delivered_at >= :day) AS d_p50,
        percentile_cont(0.95) WITHIN GROUP (ORDER BY lag_ms)
            FILTER (WHERE delivered_at >= :day) AS d_p95,
        count(*) FILTER (WHERE delivered_at >= :day) AS d_delivered,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY lag_ms) AS w_p50,
        percentile_cont(0.95) WITHIN GROUP (ORDER BY lag_ms) AS w_p95,
        count(*) AS w_delivered
      FROM lags) AS l
""")

_EVENTS_DAILY_SQL = text("""
SELECT date_trunc('day', e.occurred_at AT TIME ZONE :zone) AS day, count(*) AS total,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM event_deliveries d
                                      WHERE d.event_id = e.id AND d.status = 'dead')) AS failed
FROM events e WHERE e.occurred_at >= :since GROUP BY day
""")

_EVENTS_HOURLY_SQL = text("""
SELECT floor(EXTRACT(EPOCH FROM (:now - e.occurred_at)) / 3600)::int AS hours_ago,
       count(*) AS total,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM event_deliveries d
                                      WHERE d.event_id = e.id AND d.status = 'dead')) AS failed
FROM events e WHERE e.occurred_at >= :since AND e.occurred_at <= :now GROUP BY hours_ago
""")

_EVENTS_LAST_SQL = text("""
SELECT (SELECT max(delivered_at) FROM event_deliveries WHERE status = 'delivered') AS last_success,
       (SELECT max(updated_at) FROM event_deliveries WHERE status IN ('dead', 'failed'))
           AS last_failure,
       (SELECT last_error FROM event_deliveries WHERE status IN ('dead', 'failed')
         ORDER BY updated_at DESC NULLS LAST LIMIT 1) AS last_error
""")


def _event_bus(session: Session, card: Card, now: datetime, days: list) -> None:
    row = session.execute(_EVENTS_WINDOW_SQL, {"day": now - timedelta(hours=24),
                                               "week": now - timedelta(days=7)}).mappings().one()
    for attr, p in (("day", "d_"), ("week", "w_")):
        setattr(card, attr, WindowStats(
            runs=row[p + "runs"], failed=row[p + "failed"],
            succeeded=row[p + "runs"] - row[p + "failed"],
            p50_ms=None if row[p + "p50"] is None else float(row[p + "p50"]),
            p95_ms=None if row[p + "p95"] is None else float(row[p + "p95"]),
            loaded=row[p + "delivered"]))
    zone = str(clock.bank_zone())
    by_day = {r["day"].date(): r for r in session.execute(
        _EVENTS_DAILY_SQL, {"since": now - timedelta(days=7), "zone": zone}).mappings()}
    card.daily = [{"day": d, "ok": by_day[d]["total"] - by_day[d]["failed"] if d in by_day else 0,
                   "failed": by_day[d]["failed"] if d in by_day else 0} for d in days]
    by_hour = {r["hours_ago"]: r for r in session.execute(
        _EVENTS_HOURLY_SQL, {"since": now - timedelta(hours=24), "now": now}).mappings()}
    card.hourly = [{"hours_ago": h,
                    "ok": by_hour[h]["total"] - by_hour[h]["failed"] if h in by_hour else 0,
                    "failed": by_hour[h]["failed"] if h in by_hour else 0}
                   for h in range(23, -1, -1)]
    last = session.execute(_EVENTS_LAST_SQL).mappings().one()
    card.last_success, card.last_failure = last["last_success"], last["last_failure"]
    card.last_error = last["last_error"]


def _safe(session: Session, sql, params: dict) -> list:
    """Rows of ``sql`` in a savepoint; [] when its tables are not there (yet)."""
    try:
        with session.begin_nested():
            return list(session.execute(sql, params).mappings())
    except Exception as exc:
        log.info("ops health query unavailable", extra={"error": str(exc)[:200]})
        return []


# --- cards ---------------------------------------------------------------------------------------


@dataclass
class Card:
    spec: CardSpec
    state: str = "unknown"
    reasons: list[str] = field(default_factory=list)
    down_since: datetime | None = None
    paused: bool = False
    setting: dict | None = None
    breaker: object | None = None  # integrations.control.BreakerState
    last_success: datetime | None = None
    last_failure: datetime | None = None
    last_error: str | None = None
    last_run: dict | None = None  # the newest finished run (a skipped one included)
    last_effective_run: dict | None = None  # the newest finished run that was not skipped
    last_failed_run: dict | None = None
    running: dict | None = None
    day: WindowStats = field(default_factory=WindowStats)
    week: WindowStats = field(default_factory=WindowStats)
    recent: list[dict] = field(default_factory=list)  # newest first
    daily: list[dict] = field(default_factory=list)  # 7 days, oldest first: {day, ok, failed}
    hourly: list[dict] = field(default_factory=list)  # 24 hours, oldest first
    quarantined_open: int = 0
    discrepancies_open: int | None = None
    backlogs: list[dict] = field(default_factory=list)
    traffic: push_traffic.Traffic | None = None  # push integrations only

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)

    @property
    def reason_shown(self) -> str:
        """The reasons in the reader's language, the first letter capitalised."""
        text_ = "; ".join(shown(r) for r in self.reasons)
        return text_[:1].upper() + text_[1:]


def _finished(run: dict) -> bool:
    return run["status"] != "running"


def _effective(run: dict) -> bool:
    """A finished run that says how the integration does: not one with nothing to do, nor one
    customer's refresh (integrations/refresh.py: listed with the runs, but one customer fetched
    now neither proves nor disproves the integration's own runs; its source's breaker counts
    its failures)."""
    return _finished(run) and run["status"] != "skipped" and run.get("kind") != "refresh"


def derive_state(card: Card, *, now: datetime) -> None:
    """Set ``card.state``, ``reasons`` and ``down_since`` from what was read (see module doc)."""
    reasons_down, reasons_degraded = [], []
    finished = [r for r in card.recent if _finished(r)]
    effective = [r for r in finished if _effective(r)]
    breaker = card.breaker
    breaker_state = getattr(breaker, "state", "closed")
    if breaker_state == "open":
        reasons_down.append(said(N_("circuit breaker open (forced)")) if breaker.forced
                            else said(N_("circuit breaker open")))
    elif breaker_state == "half_open":
        reasons_degraded.append(said(N_("circuit breaker half-open (probing)")))
    streak = []
    for run in effective:
        if run["status"] != "failed":
            break
        streak.append(run)
    if len(streak) >= DOWN_AFTER_FAILED_RUNS:
        reasons_down.append(said(N_("last %(num)s runs failed"), num=len(streak)))
    elif streak:
        reasons_degraded.append(said(N_("last run failed")))
    elif effective and effective[0]["status"] == "partial":
        reasons_degraded.append(said(N_("last run partial")))
    if card.traffic is not None:
        reasons_degraded += card.traffic.reasons()
    for backlog in card.backlogs:
        text_ = said(N_("%(num)s %(backlog)s"), num=backlog["value"],
                     backlog={"msg": backlog_message(backlog["label"]).to_json()}) \
            if backlog["value"] is not None else ""
        if backlog["level"] == "down":
            reasons_down.append(text_)
        elif backlog["level"] == "degraded":
            reasons_degraded.append(text_)

    if card.paused:
        card.state = "paused"
        by = (card.setting or {}).get("reason")
        card.reasons = [said(N_("paused by ops: %(reason)s"), reason=by) if by
                        else said(N_("paused by ops"))] + reasons_down \
            + reasons_degraded
    elif reasons_down:
        card.state = "down"
        card.reasons = reasons_down + reasons_degraded
    elif reasons_degraded:
        card.state = "degraded"
        card.reasons = reasons_degraded
    elif finished or card.running or (card.traffic is not None and card.traffic.requests) or (
            not card.spec.external and any(b["value"] is not None for b in card.backlogs)):
        card.state = "healthy"
        card.reasons = []
    else:
        card.state = "unknown"
        card.reasons = [said(N_("no runs yet"))]

    if card.state == "down":
        moments = []
        if streak:
            moments.append(streak[-1]["started_at"])  # the first failure of the streak
        if breaker_state == "open" and getattr(breaker, "opened_at", None):
            moments.append(datetime.fromtimestamp(breaker.opened_at, UTC))
        card.down_since = min(moments) if moments else now


def collect_cards(session: Session, *, now: datetime | None = None,
                  names: list[str] | None = None, breakers: dict | None = None) -> list[Card]:
    """Every card (or the ``names`` ones), with its state and figures (read-only)."""

    now = now or clock.now()
    specs = [c for c in CARDS if names is None or c.name in names]
    day_since, week_since = now - timedelta(hours=24), now - timedelta(days=7)
    names = [c.name for c in specs if c.name != "EVENTS"]
    day, week = window_stats(session, names, day_since=day_since, week_since=week_since)
    recent: dict[str, list[dict]] = {}
    for row in session.execute(_RECENT_SQL, {"names": names, "since": week_since,
                                             "limit": RECENT_RUNS}).mappings():
        recent.setdefault(row["integration"], []).append(dict(row))
    last = {r["integration"]: r for r in session.execute(_LAST_SQL, {"names": names}).mappings()}
    zone = str(clock.bank_zone())
    daily: dict[str, dict] = {}
    hourly: dict[str, dict] = {}
    for row in session.execute(_DAILY_SQL, {"names": names, "since": week_since, "zone": zone,
                                            "day": day_since, "now": now}).mappings():
        per_day = daily.setdefault(row["integration"], {}).setdefault(
            row["day"].date(), {"ok": 0, "failed": 0})
        per_day["ok"] += row["ok"]
        per_day["failed"] += row["failed"]
        if row["hours_ago"] is not None:
            per_hour = hourly.setdefault(row["integration"], {}).setdefault(
                row["hours_ago"], {"ok": 0, "failed": 0})
            per_hour["ok"] += row["ok"]
            per_hour["failed"] += row["failed"]
    settings = {r["integration"]: dict(r) for r in session.execute(text(
        "SELECT s.integration, s.enabled, s.change_reason AS reason, s.changed_at, "
        "u.full_name AS changed_by FROM integration_settings s "
        "LEFT JOIN users u ON u.id = s.changed_by_id")).mappings()}
    quarantined = {r["integration"]: r["n"] for r in session.execute(text(
        "SELECT integration, count(*) AS n FROM quarantined_records WHERE status = 'open' "
        "GROUP BY integration")).mappings()}
    discrepancies = {r["integration"]: r["n"] for r in _safe(session, text(
        "SELECT r.integration, count(*) AS n FROM discrepancies d "
        "JOIN reconciliation_runs r ON r.id = d.run_id WHERE d.status = 'open' "
        "GROUP BY r.integration"), {})}
    if breakers is None:
        breakers = breaker_states([c.name for c in specs if c.external])
    traffic = push_traffic.read(session, names, now=now)

    today = clock.bank_today(now)
    days = [today - timedelta(days=i) for i in range(6, -1, -1)]
    cards = []
    for spec in specs:
        name = spec.name
        card = Card(spec=spec, day=day.get(name, WindowStats()), week=week.get(name, WindowStats()))
        card.recent = recent.get(name, [])
        setting = settings.get(name)
        card.setting = setting
        card.paused = bool(setting) and setting["enabled"] is False
        card.breaker = breakers.get(name) if spec.external else None
        if name in last:
            card.last_success = last[name]["last_success"]
            card.last_failure = last[name]["last_failure"]
        card.running = next((r for r in card.recent if r["status"] == "running"), None)
        card.last_run = next((r for r in card.recent if _finished(r)), None)
        card.last_effective_run = next((r for r in card.recent if _effective(r)), None)
        card.traffic = traffic.get(name)
        card.last_failed_run = next((r for r in card.recent if r["status"] == "failed"
                                     and r.get("kind") != "refresh"), None)
        if card.last_failed_run and card.last_failed_run["errors"]:
            errors = card.last_failed_run["errors"]
            first = errors[-1] if isinstance(errors, list) else errors
            card.last_error = (first.get("message") or str(first)) if isinstance(first, dict) \
                else str(first)
        by_day = daily.get(name, {})
        card.daily = [{"day": d, "ok": by_day[d]["ok"] if d in by_day else 0,
                       "failed": by_day[d]["failed"] if d in by_day else 0} for d in days]
        by_hour = hourly.get(name, {})
        card.hourly = [{"hours_ago": h, "ok": by_hour[h]["ok"] if h in by_hour else 0,
                        "failed": by_hour[h]["failed"] if h in by_hour else 0}
                       for h in range(23, -1, -1)]
        if name == "EVENTS":
            _event_bus(session, card, now, days)
        card.quarantined_open = quarantined.get(name, 0)
        card.discrepancies_open = discrepancies.get(name)
        card.backlogs = read_backlogs(session, name)
        derive_state(card, now=now)
        cards.append(card)
    return cards


def card(session: Session, name: str, **kwargs) -> Card:
    return collect_cards(session, names=[name], **kwargs)[0]


def summary(cards: list[Card]) -> dict[str, int]:
    counts = dict.fromkeys(STATES, 0)
    for c in cards:
        counts[c.state] += 1
    return counts
