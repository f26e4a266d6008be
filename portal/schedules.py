"""Periodic jobs, declared as data: what runs, when (cron expression or interval), on which
queue, with which timeout (workers/schedule.py runs them; the ops page and the worker health
read them). Cron expressions are evaluated in the scheduler host's local time (RQ's rule).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime

from croniter import croniter

from portal.queues import get_spec

CRON_LOCK_KEY = "portal:cron-scheduler:lock"
CRON_LOCK_TTL = 30


@dataclass(frozen=True)
class Schedule:
    name: str
    func: str  # dotted path of the job function
    queue: str
    cron: str | None = None
    interval: int | None = None  # seconds, instead of ``cron``
    timeout: int | None = None  # default: the queue's job timeout
    description: str = ""
    args: tuple = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if bool(self.cron) == bool(self.interval):
            raise ValueError(f"schedule {self.name}: give exactly one of cron or interval")
        if self.cron and not croniter.is_valid(self.cron):
            raise ValueError(f"schedule {self.name}: invalid cron expression {self.cron!r}")
        get_spec(self.queue)

    @property
    def job_timeout(self) -> int:
        return self.timeout or get_spec(self.queue).timeout

    def resolve(self):
        module_name, _, attr = self.func.rpartition(".")
        return getattr(importlib.import_module(module_name), attr)

    def next_run(self, after: datetime | None = None) -> datetime | None:
        if not self.cron:
            return None
        # RQ's cron fires by the system clock, so its timetable is read by that clock too
        base = (after or datetime.now(UTC)).astimezone().replace(tzinfo=None)
        local = croniter(self.cron, base).get_next(datetime)
        return datetime.fromtimestamp(local.timestamp(), UTC)

    def as_dict(self) -> dict:
        return {
            "name": self.name, "func": self.func, "queue": self.queue, "cron": self.cron,
            "interval": self.interval, "timeout": self.job_timeout,
            "description": self.description,
        }


SCHEDULES: tuple[Schedule, ...] = (
    Schedule(
        "events.relay", "workers.jobs.events.relay_events", "events", cron="* * * * *",
        timeout=120, description="relay events whose after-commit trigger was missed",
    ),
    Schedule(
        "events.sweep", "workers.jobs.events.sweep_deliveries", "events", cron="*/2 * * * *",
        timeout=120, description="re-enqueue deliveries whose job was lost (killed worker)",
    ),
    Schedule(
        # hourly, not once at midnight: the job decides by the bank's date at run time and is
        # idempotent, so it needs no time-zone arithmetic and catches up after downtime
        "promises.broken", "workers.jobs.promises.run_broken_promises", "default",
        cron="5 * * * *", timeout=600,
        description="mark promises broken the day after their date when paid short",
    ),
    Schedule(
        "cases.priorities", "workers.jobs.cases.run_recompute_priorities", "default",
        cron="15 * * * *", timeout=900,
        description="recompute work-queue priorities as follow-ups and promise dates come due",
    ),
    Schedule(
        # 00:30 in Ho Chi Minh City (UTC+7): yesterday's report is complete; the job takes
        # the bank's yesterday at run time, so a late run still reconciles the right date
        "payments.reconcile", "workers.jobs.payments.run_payments_reconciliation",
        "integrations", cron="30 17 * * *", timeout=1800,
        description="reconcile yesterday's payments with the payment system's report",
    ),
    # Bank synchronisation, daily (UTC; override with SYNC_T24_CRON / SYNC_W4_CRON /
    # SYNC_LOS_CRON). T24 after the bank's end of day (01:30 Asia/Ho_Chi_Minh = 18:30 UTC).
    Schedule(
        "sync.t24", "workers.jobs.sync.run_scheduled_sync", "integrations",
        cron=os.environ.get("SYNC_T24_CRON", "30 18 * * *"), args=("T24",),
        description="load the T24 file sets waiting in the inbox (integrations/sync.py)",
    ),
    Schedule(
        "sync.w4", "workers.jobs.sync.run_scheduled_sync", "integrations",
        cron=os.environ.get("SYNC_W4_CRON", "0 19 * * *"), args=("W4",),
        description="W4 cards changed since the stored cursor",
    ),
    Schedule(
        "sync.los", "workers.jobs.sync.run_scheduled_sync", "integrations",
        cron=os.environ.get("SYNC_LOS_CRON", "15 19 * * *"), args=("LOS",),
        description="LOS applications changed since the stored cursor",
    ),
    Schedule(
        "calls.status_sync", "workers.jobs.calls.sync_agent_statuses", "integrations",
        interval=30, timeout=120,
        description="push agent statuses the call centre has not confirmed (it was down)",
    ),
    Schedule(
        # 00:30 in Asia/Ho_Chi_Minh: the bank's day just ended
        "calls.reconcile", "workers.jobs.calls.reconcile_calls", "integrations",
        cron="30 17 * * *", timeout=900,
        description="reconcile yesterday's calls against the call centre's call list",
    ),
    Schedule(
        "kpis.aggregate", "workers.jobs.kpis.aggregate_kpis", "default",
        cron="*/10 * * * *", timeout=900,
        description="KPI daily per-agent aggregates up to yesterday and roll-rate snapshots",
    ),
    Schedule(
        "field.forward", "workers.jobs.field.forward_locations", "integrations",
        cron="* * * * *", timeout=600,
        description="forward stored GPS positions to the GPS system, oldest first (backlog)",
    ),
    Schedule(
        "field.missed_visits", "workers.jobs.field.mark_missed_visits", "default",
        cron="20 * * * *", timeout=300,
        description="mark planned visits of past days without a check-in as missed",
    ),
    Schedule(
        "ops.alerts", "workers.jobs.alerts.evaluate_alerts", "default",
        cron="* * * * *", timeout=120,
        description="evaluate the ops alert rules: raise, clear, deliver alert webhooks",
    ),
)
