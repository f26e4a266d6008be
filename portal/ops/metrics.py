"""``GET /metrics`` in the Prometheus text format.

Protection: an API token with the scope ``api.integrations`` (``Authorization: Bearer <token>``;
create one under Administration → API tokens for the Prometheus scraper) or a signed-in user
whose role grants it (ops).

Two sources:

- **requests** of this process: ``crm_http_requests_total{endpoint,method,status}`` and
  ``crm_http_request_duration_seconds{endpoint}`` (a histogram). With several gunicorn workers
  set ``PROMETHEUS_MULTIPROC_DIR`` (an empty directory, the same for every worker) and the
  counters of all workers are summed at scrape time (prometheus_client's multiprocess mode).
  Signed webhooks are requests too: their outcomes are the ``webhooks.*`` endpoints by status.
- **state** read at scrape time from PostgreSQL and Redis (identical whichever process answers):
  integration runs and records, durations p50/p95, card states, circuit breakers, queue depths
  and failed jobs, live workers, the event outbox lag and deliveries, quarantined records,
  refused webhook notifications, firing alerts.
"""

from __future__ import annotations

import logging
import os
import time

from flask import Response, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import text

from integrations.control import breaker_states
from portal.extensions import db
from portal.ops import alerts
from portal.ops import health as ops_health
from portal.ops.views import bp
from portal.ops.worker_health import collect_health
from portal.permissions.decorators import api_permission_required

log = logging.getLogger(__name__)

REQUESTS = CollectorRegistry(auto_describe=True)
REQUEST_COUNT = Counter("crm_http_requests", "HTTP requests by endpoint, method and status",
                        ["endpoint", "method", "status"], registry=REQUESTS)
REQUEST_LATENCY = Histogram("crm_http_request_duration_seconds", "HTTP request latency",
                            ["endpoint"], registry=REQUESTS,
                            buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}


@bp.before_app_request
def _start_timer() -> None:
    g._metrics_started = time.perf_counter()


@bp.after_app_request
def _count_request(response):
    started = g.pop("_metrics_started", None)
    endpoint = request.endpoint or "unmatched"
    if started is not None and endpoint != "static":
        try:
            REQUEST_COUNT.labels(endpoint, request.method, str(response.status_code)).inc()
            REQUEST_LATENCY.labels(endpoint).observe(time.perf_counter() - started)
        except Exception:  # noqa: BLE001 - metrics never fail a request
            log.debug("request metrics failed", exc_info=True)
    return response


def _request_metrics() -> bytes:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        return generate_latest(registry)
    return generate_latest(REQUESTS)


class StateCollector:
    """Reads the portal's state at scrape time (one instance per scrape)."""

    def collect(self):
        session = db.session
        yield from self._integrations(session)
        yield from self._queues()
        yield from self._events(session)
        session.rollback()

    def _integrations(self, session):
        runs = CounterMetricFamily("crm_integration_runs", "Integration runs by status",
                                   labels=["integration", "status"])
        records = CounterMetricFamily("crm_integration_records",
                                      "Records handled by integration runs",
                                      labels=["integration", "outcome"])
        for row in session.execute(text(
                "SELECT integration, status, count(*) AS n, sum(extracted) AS extracted, "
                "sum(loaded) AS loaded, sum(failed) AS failed, sum(quarantined) AS quarantined "
                "FROM integration_runs GROUP BY integration, status")).mappings():
            runs.add_metric([row["integration"], row["status"]], row["n"])
        for row in session.execute(text(
                "SELECT integration, sum(extracted) AS extracted, sum(loaded) AS loaded, "
                "sum(failed) AS failed, sum(quarantined) AS quarantined "
                "FROM integration_runs GROUP BY integration")).mappings():
            for outcome in ("extracted", "loaded", "failed", "quarantined"):
                records.add_metric([row["integration"], outcome], int(row[outcome] or 0))
        yield runs
        yield records

        breakers = breaker_states()
        cards = ops_health.collect_cards(session, breakers=breakers)
        state = GaugeMetricFamily("crm_integration_state",
                                  "1 for the current state of each integration's card",
                                  labels=["integration", "state"])
        duration = GaugeMetricFamily("crm_integration_run_duration_seconds",
                                     "Run duration percentiles over a window",
                                     labels=["integration", "window", "quantile"])
        failure = GaugeMetricFamily("crm_integration_failure_ratio",
                                    "Failed runs / finished runs over a window",
                                    labels=["integration", "window"])
        last_success = GaugeMetricFamily("crm_integration_last_success_timestamp_seconds",
                                         "When the last successful run finished",
                                         labels=["integration"])
        quarantined = GaugeMetricFamily("crm_quarantined_records_open",
                                        "Quarantined records not yet reprocessed or discarded",
                                        labels=["integration"])
        backlog = GaugeMetricFamily("crm_integration_backlog", "Backlog providers' levels",
                                    labels=["integration", "backlog"])
        for card in cards:
            for s in ops_health.STATES:
                state.add_metric([card.name, s], 1.0 if card.state == s else 0.0)
            for window, stats in (("24h", card.day), ("7d", card.week)):
                for quantile, value in (("0.5", stats.p50_ms), ("0.95", stats.p95_ms)):
                    if value is not None:
                        duration.add_metric([card.name, window, quantile], value / 1000)
                if stats.failure_rate is not None:
                    failure.add_metric([card.name, window], stats.failure_rate)
            if card.last_success:
                last_success.add_metric([card.name], card.last_success.timestamp())
            quarantined.add_metric([card.name], card.quarantined_open)
            for b in card.backlogs:
                if b["value"] is not None:
                    backlog.add_metric([card.name, b["label"]], b["value"])
        yield from (state, duration, failure, last_success, quarantined, backlog)

        breaker = GaugeMetricFamily("crm_breaker_state",
                                    "Circuit breaker: 0 closed, 1 half-open, 2 open",
                                    labels=["system"])
        for name, b in breakers.items():
            breaker.add_metric([name], BREAKER_VALUES.get(b.state, 0))
        yield breaker

        firing = GaugeMetricFamily("crm_alerts_firing", "Alerts firing now", labels=["rule"])
        counts: dict[str, int] = {}
        for alert in alerts.firing(session):
            counts[alert.rule] = counts.get(alert.rule, 0) + 1
        for rule in alerts.RULES:
            firing.add_metric([rule], counts.get(rule, 0))
        yield firing

        rejected = CounterMetricFamily("crm_webhook_rejected",
                                       "Webhook notifications refused (signature, schema...)",
                                       labels=["integration", "status_code"])
        try:
            with session.begin_nested():
                for row in session.execute(text(
                        "SELECT integration, status_code, count(*) AS n "
                        "FROM rejected_notifications GROUP BY integration, status_code")):
                    rejected.add_metric([row[0], str(row[1])], row[2])
        except Exception:  # noqa: BLE001 - table not there (yet)
            pass
        yield rejected

    def _queues(self):
        try:
            health = collect_health()
        except Exception:  # noqa: BLE001 - Redis down: no queue metrics
            log.warning("metrics: worker health unreadable", exc_info=True)
            return
        depth = GaugeMetricFamily("crm_queue_depth", "Jobs waiting in a queue", labels=["queue"])
        failed = GaugeMetricFamily("crm_queue_failed_jobs", "Jobs in a queue's failed registry",
                                   labels=["queue"])
        started = GaugeMetricFamily("crm_queue_started_jobs", "Jobs running now",
                                    labels=["queue"])
        oldest = GaugeMetricFamily("crm_queue_oldest_job_age_seconds",
                                   "Age of the oldest waiting job", labels=["queue"])
        for q in health["queues"]:
            depth.add_metric([q["name"]], q["depth"])
            failed.add_metric([q["name"]], q["failed"])
            started.add_metric([q["name"]], q["started"])
            oldest.add_metric([q["name"]], q["oldest_queued_age_s"] or 0)
        workers = GaugeMetricFamily("crm_workers_alive", "Workers with a recent heartbeat")
        workers.add_metric([], sum(1 for w in health["workers"] if w["alive"]))
        schedulers = GaugeMetricFamily("crm_cron_schedulers_alive",
                                       "Cron schedulers with a recent heartbeat")
        schedulers.add_metric([], sum(1 for c in health["cron_schedulers"] if c["alive"]))
        yield from (depth, failed, started, oldest, workers, schedulers)

    def _events(self, session):
        unrelayed, lag = session.execute(text(
            "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM (crm_now() - min(occurred_at))), 0) "
            "FROM events WHERE relayed_at IS NULL")).one()
        yield _gauge("crm_events_unrelayed", "Events in the outbox not yet relayed", unrelayed)
        yield _gauge("crm_event_lag_seconds", "Age of the oldest unrelayed event", float(lag))
        deliveries = GaugeMetricFamily("crm_event_deliveries", "Event deliveries by status",
                                       labels=["status"])
        for status, n in session.execute(text(
                "SELECT status, count(*) FROM event_deliveries GROUP BY status")):
            deliveries.add_metric([status], n)
        yield deliveries


def _gauge(name: str, documentation: str, value) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation)
    family.add_metric([], value)
    return family


@bp.get("/metrics")
@api_permission_required("api.integrations")
def metrics():
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector())
    body = _request_metrics() + generate_latest(registry)
    return Response(body, mimetype=CONTENT_TYPE_LATEST.split(";")[0],
                    headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})
