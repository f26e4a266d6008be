"""Alerts: rules over the health of integrations, queues and workers, evaluated every minute
(workers/jobs/alerts.py), raised once while their condition holds, cleared when it ends.

Each rule returns the conditions that hold now, each with a stable ``key`` (``rule:subject``).
``evaluate`` compares them with the firing rows of the ``alerts`` table:

- a new key → a firing row, a notification to every active ops user, and (when
  ``ALERT_WEBHOOK_URL`` is set) a signed JSON POST ``{"status": "firing", ...}``;
- a key still holding → ``last_seen_at`` only (never repeated);
- a firing key no longer holding → resolved, "cleared" notification and POST
  ``{"status": "resolved", ...}``.

A partial unique index (one firing row per key) and a transaction-level advisory lock keep two
evaluators from raising the same alert twice. A webhook POST that fails is tried again at the
next evaluations (up to ``WEBHOOK_MAX_ATTEMPTS``).

Rules (thresholds in portal/config.py; runbook per rule in docs/operations.md):

| rule | holds when |
|---|---|
| integration_down | an integration's card has been ``down`` for ``ALERT_DOWN_MINUTES`` |
| run_failed | an integration's latest run failed after its retries |
| discrepancies | open discrepancies of an integration > ``ALERT_DISCREPANCY_THRESHOLD`` |
| dead_letters | event deliveries are dead (retries exhausted) |
| worker_heartbeat | no live worker or cron scheduler, or a heartbeat older than
  ``ALERT_HEARTBEAT_SECONDS`` |
| queue_depth | a queue holds more than ``ALERT_QUEUE_DEPTH`` jobs |
| push_refused | a push integration refuses more than ``TRAFFIC_REFUSAL_RATE`` of its requests |
| no_traffic | a push integration received nothing for ``TRAFFIC_SILENCE_MINUTES`` (working hours) |
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from portal import clock
from portal.models import Alert, User
from portal.notifications import operations as notifications
from portal.notifications.messages import Message, listing, message
from portal.ops import health as ops_health
from portal.ops.words import N_, Said, said, said_n, shown_json
from portal.ops.worker_health import collect_health
from portal.permissions.roles import roles_with
from portal.signing import signed_headers
from portal.tracing import http_client_span

log = logging.getLogger(__name__)

ADVISORY_LOCK = 7_300_009  # pg_advisory_xact_lock key of the evaluator
WEBHOOK_MAX_ATTEMPTS = 5
# T24/W4/LOS syncs retry a failed run themselves (integrations/sync.py, SYNC_RETRIES)
RETRYING_INTEGRATIONS = ("T24", "W4", "LOS")


@dataclass
class Condition:
    rule: str
    subject: str | None
    title: str
    detail: str = ""
    severity: str = "warning"
    link: str | None = None
    data: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.rule}:{self.subject}" if self.subject else self.rule


@dataclass
class Context:
    session: Session
    now: datetime
    config: dict
    cards: list = field(default_factory=list)
    health: dict | None = None  # worker_health.collect_health(); None: Redis unreadable


RULES: dict[str, Callable[[Context], list[Condition]]] = {}
RULE_TITLES: dict[str, object] = {}  # lazy: shown in the reader's language


def rule(name: str, title: str):
    def register(fn):
        RULES[name] = fn
        RULE_TITLES[name] = title
        return fn

    return register


@rule("integration_down", _l("Integration down"))
def integration_down(ctx: Context) -> list[Condition]:
    limit = timedelta(minutes=int(ctx.config.get("ALERT_DOWN_MINUTES", 10)))
    out = []
    for card in ctx.cards:
        if card.state != "down" or card.down_since is None or ctx.now - card.down_since < limit:
            continue
        minutes = int((ctx.now - card.down_since).total_seconds() // 60)
        out.append(Condition(
            "integration_down", card.name, said(N_("%(name)s is down"), name=_card(card)),
            said(N_("Down for %(num)s min: %(reasons)s."), num=minutes,
                 reasons=listing(*[r.message if isinstance(r, Said) else str(r)
                                   for r in card.reasons])), "critical",
            f"/ops/integrations#card-{card.name}",
            {"since": card.down_since.isoformat(), "reasons": card.reasons}))
    return out


@rule("run_failed", _l("Run failed after retries"))
def run_failed(ctx: Context) -> list[Condition]:
    attempts = int(ctx.config.get("SYNC_RETRIES", 3)) + 1
    out = []
    for card in ctx.cards:
        run = card.last_effective_run  # a later run with nothing to do settles nothing
        if not run or run["status"] != "failed":
            continue
        if card.name in RETRYING_INTEGRATIONS and (run["attempt"] or 1) < attempts:
            continue  # its own retry is coming
        error = card.last_error or message(N_("see the run"))
        out.append(Condition(
            "run_failed", card.name,
            said(N_("%(name)s: %(kind)s run failed"), name=_card(card),
                 kind={"label": run["kind"]}),
            said(N_("Run %(id)s failed (attempt %(attempt)s): %(error)s"), id=run["id"],
                 attempt=run["attempt"], error=error), "critical",
            f"/ops/integrations/runs/{run['id']}", {"run_id": run["id"]}))
    return out


@rule("discrepancies", _l("Reconciliation discrepancies"))
def discrepancies(ctx: Context) -> list[Condition]:
    threshold = int(ctx.config.get("ALERT_DISCREPANCY_THRESHOLD", 10))
    return [
        Condition("discrepancies", card.name,
                  said(N_("%(name)s: %(num)s open discrepancies"), name=_card(card),
                       num=card.discrepancies_open),
                  said(N_("More than %(num)s reconciliation gaps are open."), num=threshold),
                  "warning",
                  "/payments/reconciliation", {"open": card.discrepancies_open})
        for card in ctx.cards
        if card.discrepancies_open is not None and card.discrepancies_open > threshold
    ]


@rule("dead_letters", _l("Dead letters"))
def dead_letters(ctx: Context) -> list[Condition]:
    rows = ctx.session.execute(text(
        "SELECT subscriber, count(*) AS n FROM event_deliveries WHERE status = 'dead' "
        "GROUP BY subscriber ORDER BY n DESC")).all()
    total = sum(n for _, n in rows)
    if not total:
        return []
    detail = ", ".join(f"{s.rsplit('.', 1)[-1]} {n}" for s, n in rows[:5])
    return [Condition("dead_letters", None,
                      said_n(N_("%(num)d dead event delivery"), N_("%(num)d dead event deliveries"),
                             total),
                      said(N_("Subscribers gave up on events: %(detail)s."), detail=detail),
                      "warning",
                      "/ops/integrations#card-EVENTS", {"dead": total})]


@rule("worker_heartbeat", _l("Worker heartbeat missing"))
def worker_heartbeat(ctx: Context) -> list[Condition]:
    health = ctx.health
    if health is None:
        return [Condition("worker_heartbeat", "redis", said(N_("Workers cannot be checked")),
                          said(N_("Redis did not answer the worker health check.")), "critical",
                          "/ops/workers")]
    stale = int(ctx.config.get("ALERT_HEARTBEAT_SECONDS", 480))
    out = []
    workers = health["workers"]
    live = [w for w in workers if w["heartbeat_age_s"] is not None
            and w["heartbeat_age_s"] < stale]
    if not live:
        out.append(Condition("worker_heartbeat", "workers", said(N_("No live worker")),
                             said(N_("No RQ worker has sent a heartbeat: jobs are not being "
                                     "run.")),
                             "critical", "/ops/workers"))
    for w in workers:
        age = w["heartbeat_age_s"]
        if age is None or age >= stale:
            out.append(Condition("worker_heartbeat", w["name"][:100],
                                 said(N_("Worker %(name)s stopped sending heartbeats"),
                                      name=w["name"]),
                                 said(N_("Last heartbeat %(num)s s ago."), num=int(age or 0)),
                                 "warning",
                                 "/ops/workers", {"age_s": age}))
    if not any(c["alive"] for c in health["cron_schedulers"]):
        out.append(Condition("worker_heartbeat", "scheduler", said(N_("No live cron scheduler")),
                             said(N_("Periodic jobs (syncs, reconciliation, alerts) are not "
                                     "enqueued.")),
                             "critical", "/ops/workers"))
    return out


@rule("queue_depth", _l("Queue depth"))
def queue_depth(ctx: Context) -> list[Condition]:
    if ctx.health is None:
        return []
    threshold = int(ctx.config.get("ALERT_QUEUE_DEPTH", 1000))
    return [
        Condition("queue_depth", q["name"],
                  said(N_("Queue %(name)s holds %(num)s jobs"), name=q["name"], num=q["depth"]),
                  said(N_("Above the threshold of %(num)s; %(workers)s live workers serve it."),
                       num=threshold, workers=q["workers"]),
                  "warning", "/ops/workers", {"depth": q["depth"]})
        for q in ctx.health["queues"] if q["depth"] > threshold
    ]


@rule("push_refused", _l("Requests refused"))
def push_refused(ctx: Context) -> list[Condition]:
    out = []
    for card in ctx.cards:
        traffic = card.traffic
        if traffic is None or card.paused or not traffic.refusal_alarm:
            continue
        out.append(Condition(
            "push_refused", card.name, said(N_("%(name)s: requests refused"), name=_card(card)),
            said(N_("%(reason)s; the threshold is %(rate)s%%."),
                 reason=traffic.reasons()[0].message,
                 rate=f"{100 * traffic.refusal_threshold:.0f}"), "warning",
            f"/ops/integrations#card-{card.name}",
            {"refused": traffic.window_refused, "accepted": traffic.window_accepted}))
    return out


@rule("no_traffic", _l("No traffic"))
def no_traffic(ctx: Context) -> list[Condition]:
    out = []
    for card in ctx.cards:
        traffic = card.traffic
        if traffic is None or card.paused or not traffic.silence_alarm:
            continue
        last = traffic.last_received_at
        out.append(Condition(
            "no_traffic", card.name, said(N_("%(name)s: no traffic"), name=_card(card)),
            said(N_("Nothing received for %(num)s min in working hours (expected within "
                    "%(limit)s min); last request %(last)s."), num=traffic.silent_min,
                 limit=traffic.silence_limit_min,
                 last={"datetime": last.isoformat(), "format": "%d/%m %H:%M"}), "warning",
            f"/ops/integrations#card-{card.name}",
            {"silent_min": traffic.silent_min, "last_received_at": last.isoformat()}))
    return out


# --- words in the reader's language -----------------------------------------------------------

WORDS = "_words"  # the key of alerts.data holding the title's and detail's messages


def _card(card) -> dict:
    """A card's name as a message parameter (its label, in the reader's language)."""
    return {"msg": message(ops_health.CARD_WORDS.get(card.name, card.name)).to_json()}


def _words(value):
    """A message parameter or notification part for ``value`` (a Said: its message)."""
    return value.message if isinstance(value, Said) else value


def _data(cond: Condition) -> dict | None:
    data = dict(cond.data or {})
    words = {part: getattr(cond, part).message.to_json() for part in ("title", "detail")
             if isinstance(getattr(cond, part), Said)}
    if words:
        data[WORDS] = words
    return data or None


def _stored_words(alert: Alert, part: str):
    spec = ((alert.data or {}).get(WORDS) or {}).get(part)
    if spec:
        return Message.from_json(spec)
    return getattr(alert, part)


def shown(alert: Alert, part: str) -> str:
    """The alert's ``part`` ("title" or "detail") in the reader's language."""
    return shown_json(((alert.data or {}).get(WORDS) or {}).get(part), getattr(alert, part))


# --- evaluation -------------------------------------------------------------------------------


@dataclass
class Outcome:
    raised: list[Alert] = field(default_factory=list)
    cleared: list[Alert] = field(default_factory=list)
    holding: int = 0
    skipped: bool = False  # another evaluator held the lock


def _health():
    try:
        return collect_health()
    except Exception:
        log.warning("alerts: worker health unreadable", exc_info=True)
        return None


def conditions(session: Session, *, now: datetime | None = None, health=...) -> list[Condition]:
    """Every condition holding now (all rules)."""

    now = now or clock.now()
    ctx = Context(session=session, now=now, config=dict(current_app.config),
                  cards=ops_health.collect_cards(session, now=now),
                  health=_health() if health is ... else health)
    out: list[Condition] = []
    for name, fn in RULES.items():
        try:
            out.extend(fn(ctx))
        except Exception:
            session.rollback()
            log.exception("alert rule failed", extra={"rule": name})
    return out


def ops_user_ids(session: Session) -> list[int]:
    return list(session.scalars(select(User.id).where(
        User.role.in_(roles_with("ops.actions")), User.active.is_(True))))


def evaluate(session: Session, *, now: datetime | None = None, health=...,
             send: bool = True) -> Outcome:
    """Raise new alerts, clear ended ones, and send their webhooks (commits)."""
    now = now or clock.now()
    found = {c.key: c for c in conditions(session, now=now, health=health)}
    outcome = Outcome()
    locked = session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"),
                             {"k": ADVISORY_LOCK}).scalar()
    if not locked:
        session.rollback()
        outcome.skipped = True
        return outcome
    firing = {a.key: a for a in session.scalars(select(Alert).where(Alert.status == "firing"))}
    users = ops_user_ids(session)
    for key, cond in found.items():
        alert = firing.get(key)
        if alert is not None:
            alert.last_seen_at = now
            outcome.holding += 1
            continue
        alert = Alert(key=key, rule=cond.rule, subject=cond.subject, severity=cond.severity,
                      status="firing", title=cond.title[:200], detail=cond.detail,
                      link=cond.link, data=_data(cond), raised_at=now, last_seen_at=now,
                      webhook_status=None, webhook_attempts=0)
        session.add(alert)
        outcome.raised.append(alert)
        for user_id in users:
            notifications.notify(session, user_id, "ops_alert",
                                 message(N_("Alert: %(title)s"), title=_words(cond.title)),
                                 _words(cond.detail), link=cond.link or "/ops/alerts")
    for key, alert in firing.items():
        if key in found:
            continue
        alert.status = "resolved"
        alert.resolved_at = now
        alert.webhook_status = None
        alert.webhook_attempts = 0
        alert.webhook_error = None
        outcome.cleared.append(alert)
        minutes = int((now - alert.raised_at).total_seconds() // 60)
        for user_id in users:
            notifications.notify(session, user_id, "ops_alert_cleared",
                                 message(N_("Cleared: %(title)s"),
                                         title=_stored_words(alert, "title")),
                                 message(N_("The condition ended after %(num)s min."),
                                         num=minutes),
                                 link=alert.link or "/ops/alerts")
    session.commit()
    for alert in outcome.raised:
        log.error("alert raised: %s", alert.title, extra={"alert": alert.key,
                                                          "severity": alert.severity})
    for alert in outcome.cleared:
        log.warning("alert cleared: %s", alert.title, extra={"alert": alert.key})
    if send:
        send_webhooks(session, now=now)
    return outcome


def payload(alert: Alert) -> dict:
    return {
        "id": alert.id, "key": alert.key, "rule": alert.rule, "subject": alert.subject,
        "status": alert.status, "severity": alert.severity, "title": alert.title,
        "detail": alert.detail, "link": alert.link,
        "data": {k: v for k, v in (alert.data or {}).items() if k != WORDS} or None,
        "raised_at": alert.raised_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "source": "collection-crm",
    }


def send_webhooks(session: Session, *, now: datetime | None = None) -> int:
    """POST every transition not yet delivered to ``ALERT_WEBHOOK_URL`` (signed). Returns the
    number delivered. No URL configured: nothing to do."""

    url = current_app.config.get("ALERT_WEBHOOK_URL")
    if not url:
        return 0
    secret = current_app.config.get("ALERT_WEBHOOK_SECRET") or ""
    timeout = float(current_app.config.get("ALERT_WEBHOOK_TIMEOUT", 5))
    pending = session.scalars(
        select(Alert).where(Alert.webhook_status.is_distinct_from("sent"),
                            Alert.webhook_attempts < WEBHOOK_MAX_ATTEMPTS,
                            Alert.last_seen_at >= (now or clock.now()) - timedelta(days=1))
        .order_by(Alert.id)
    ).all()
    sent = 0
    for alert in pending:
        body = json.dumps(payload(alert), separators=(",", ":")).encode()
        headers = signed_headers(secret, body) if secret else {"Content-Type": "application/json"}
        alert.webhook_attempts += 1
        try:
            with http_client_span("POST", url, system="ALERTS") as call:
                response = requests.post(url, data=body, headers={**headers, **call.headers},
                                         timeout=timeout)
                call.status(response.status_code)
            response.raise_for_status()
        except Exception as exc:
            alert.webhook_status = "failed"
            alert.webhook_error = f"{type(exc).__name__}: {exc}"[:500]
            log.warning("alert webhook failed", extra={"alert": alert.key,
                                                       "error": alert.webhook_error})
        else:
            alert.webhook_status = "sent"
            alert.webhook_error = None
            sent += 1
        session.commit()
    return sent


def firing(session: Session) -> list[Alert]:
    return list(session.scalars(select(Alert).where(Alert.status == "firing")
                                .order_by(Alert.severity, Alert.raised_at.desc())))


def history(session: Session, *, limit: int = 50) -> list[Alert]:
    return list(session.scalars(select(Alert).order_by(Alert.raised_at.desc(), Alert.id.desc())
                                .limit(limit)))
