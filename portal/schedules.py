"""The worker jobs by name, and the periodic ones declared as data: what runs, when (cron
expression or interval), on which queue, with which timeout (workers/schedule.py runs them; the
ops page and the worker health read them). Cron expressions are evaluated in the scheduler
host's local time (RQ's rule).

``Jobs`` is the one place that spells a job's dotted path: the portal sits below workers/ and
enqueues by these names (RQ imports the function in the worker), the schedule uses them too.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime

from croniter import croniter

from portal import clock
from portal.queues import get_spec

CRON_LOCK_KEY = "portal:cron-scheduler:lock"
CRON_LOCK_TTL = 30


class Jobs:
    """The entry points in workers/jobs/ (tests/unit/test_schedules.py resolves each)."""

    RELAY_EVENTS = "workers.jobs.events.relay_events"
    DELIVER_EVENT = "workers.jobs.events.deliver_event"
    SWEEP_DELIVERIES = "workers.jobs.events.sweep_deliveries"
    RECOVER_EVENTS = "workers.jobs.events.recover"
    BROKEN_PROMISES = "workers.jobs.promises.run_broken_promises"
    RECOMPUTE_PRIORITIES = "workers.jobs.cases.run_recompute_priorities"
    RECONCILE_PAYMENTS = "workers.jobs.payments.run_payments_reconciliation"
    RELEASE_HELD_PAYMENTS = "workers.jobs.payments.release_held"
    SYNC = "workers.jobs.sync.run_sync_job"
    SCHEDULED_SYNC = "workers.jobs.sync.run_scheduled_sync"
    SYNC_AGENT_STATUSES = "workers.jobs.calls.sync_agent_statuses"
    RECONCILE_CALLS = "workers.jobs.calls.reconcile_calls"
    AGGREGATE_KPIS = "workers.jobs.kpis.aggregate_kpis"
    FORWARD_LOCATIONS = "workers.jobs.field.forward_locations"
    MARK_MISSED_VISITS = "workers.jobs.field.mark_missed_visits"
    EVALUATE_ALERTS = "workers.jobs.alerts.evaluate_alerts"
    CHECK_INVARIANTS = "workers.jobs.invariants.check_invariants"
    PRUNE_WEBHOOK_RECEIPTS = "workers.jobs.maintenance.prune_webhook_receipts"
    RUN_STRATEGIES = "workers.jobs.strategies.run_strategies"
    DISPATCH_MESSAGES = "workers.jobs.messages.dispatch_messages"
    DISPATCH_MESSAGE = "workers.jobs.messages.dispatch_message"
    RECONCILE_SMS_REPORTS = "workers.jobs.messages.reconcile_reports"
    BUILD_PRINT_BATCH = "workers.jobs.letters.build_print_batch"
    TAKE_BACKUP = "workers.jobs.backups.take_backup"

    @classmethod
    def all(cls) -> dict[str, str]:
        return {name: value for name, value in vars(cls).items() if name.isupper()}


def resolve(func: str):
    """The function a dotted job path names."""
    module_name, _, attr = func.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


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
        return resolve(self.func)

    def next_run(self, after: datetime | None = None) -> datetime | None:
        """The next time the job is enqueued after ``after`` (default now), on the product's
        clock (UTC). None for an interval job (it runs every ``interval`` seconds)."""
        if not self.cron:
            return None
        # RQ's cron fires by the system clock in the host's local time, so its timetable is
        # read by that clock, then said on the product's (shifted by TEST_CLOCK in tests)
        shift = clock.offset()
        base = ((after or clock.now()) - shift).astimezone().replace(tzinfo=None)
        local = croniter(self.cron, base).get_next(datetime)
        return datetime.fromtimestamp(local.timestamp(), UTC) + shift

    def in_words(self, now: datetime | None = None) -> str:
        """When it runs, in words and in the bank's time: "every minute", "every 10 minutes",
        "hourly at :15", "daily at 01:30", "every 30 s" (the one wording of a schedule)."""
        if self.interval:
            seconds = self.interval
            if seconds % 3600 == 0:
                return "hourly" if seconds == 3600 else f"every {seconds // 3600} h"
            if seconds % 60 == 0:
                return "every minute" if seconds == 60 else f"every {seconds // 60} minutes"
            return f"every {seconds} s"
        minute, hour, day, month, weekday = self.cron.split()
        if (day, month, weekday) != ("*", "*", "*"):
            return f"on a timetable (cron {self.cron}, server time)"
        if hour == "*" and minute == "*":
            return "every minute"
        if hour == "*" and minute.startswith("*/") and minute[2:].isdigit():
            step = int(minute[2:])
            return "every minute" if step == 1 else f"every {step} minutes"
        nxt = self.next_run(now).astimezone(clock.bank_zone())
        if hour == "*" and minute.isdigit():
            return f"hourly at :{nxt:%M}"
        if hour.isdigit() and minute.isdigit():
            return f"daily at {nxt:%H:%M}"
        return f"on a timetable (cron {self.cron}, server time)"

    def as_dict(self) -> dict:
        return {
            "name": self.name, "func": self.func, "queue": self.queue, "cron": self.cron,
            "interval": self.interval, "timeout": self.job_timeout,
            "description": self.description,
        }


SCHEDULES: tuple[Schedule, ...] = (
    Schedule(
        "events.relay", Jobs.RELAY_EVENTS, "events", cron="* * * * *",
        timeout=120, description="relay events whose after-commit trigger was missed",
    ),
    Schedule(
        "events.sweep", Jobs.SWEEP_DELIVERIES, "events", cron="*/2 * * * *",
        timeout=120, description="re-enqueue deliveries whose job was lost (killed worker)",
    ),
    Schedule(
        # hourly, not once at midnight: the job decides by the bank's date at run time and is
        # idempotent, so it needs no time-zone arithmetic and catches up after downtime
        "promises.broken", Jobs.BROKEN_PROMISES, "default",
        cron="5 * * * *", timeout=600,
        description="mark promises broken the day after their date when paid short, plan "
                    "instalments missed and plans broken",
    ),
    Schedule(
        "cases.priorities", Jobs.RECOMPUTE_PRIORITIES, "default",
        cron="15 * * * *", timeout=900,
        description="recompute work-queue priorities as follow-ups and promise dates come due",
    ),
    Schedule(
        # 00:30 in Ho Chi Minh City (UTC+7): yesterday's report is complete; the job takes
        # the bank's yesterday at run time, so a late run still reconciles the right date
        "payments.reconcile", Jobs.RECONCILE_PAYMENTS,
        "integrations", cron="30 17 * * *", timeout=1800,
        description="reconcile yesterday's payments with the payment system's report",
    ),
    # Bank synchronisation, daily (UTC; override with SYNC_T24_CRON / SYNC_W4_CRON /
    # SYNC_LOS_CRON). T24 after the bank's end of day (01:30 Asia/Ho_Chi_Minh = 18:30 UTC).
    Schedule(
        "sync.t24", Jobs.SCHEDULED_SYNC, "integrations",
        cron=os.environ.get("SYNC_T24_CRON", "30 18 * * *"), args=("T24",),
        description="load the T24 file sets waiting in the inbox (integrations/sync.py)",
    ),
    Schedule(
        "sync.w4", Jobs.SCHEDULED_SYNC, "integrations",
        cron=os.environ.get("SYNC_W4_CRON", "0 19 * * *"), args=("W4",),
        description="W4 cards changed since the stored cursor",
    ),
    Schedule(
        "sync.los", Jobs.SCHEDULED_SYNC, "integrations",
        cron=os.environ.get("SYNC_LOS_CRON", "15 19 * * *"), args=("LOS",),
        description="LOS applications changed since the stored cursor",
    ),
    Schedule(
        "calls.status_sync", Jobs.SYNC_AGENT_STATUSES, "integrations",
        interval=30, timeout=120,
        description="push agent statuses the call centre has not confirmed (it was down)",
    ),
    Schedule(
        # 00:30 in Asia/Ho_Chi_Minh: the bank's day just ended
        "calls.reconcile", Jobs.RECONCILE_CALLS, "integrations",
        cron="30 17 * * *", timeout=900,
        description="reconcile yesterday's calls against the call centre's call list",
    ),
    Schedule(
        "kpis.aggregate", Jobs.AGGREGATE_KPIS, "default",
        cron="*/10 * * * *", timeout=900,
        description="KPI daily per-agent aggregates up to yesterday and roll-rate snapshots",
    ),
    Schedule(
        "field.forward", Jobs.FORWARD_LOCATIONS, "integrations",
        cron="* * * * *", timeout=600,
        description="forward stored GPS positions to the GPS system, oldest first (backlog)",
    ),
    Schedule(
        "field.missed_visits", Jobs.MARK_MISSED_VISITS, "default",
        cron="20 * * * *", timeout=300,
        description="mark planned visits of past days without a check-in as missed",
    ),
    Schedule(
        "ops.alerts", Jobs.EVALUATE_ALERTS, "default",
        cron="* * * * *", timeout=120,
        description="evaluate the ops alert rules: raise, clear, deliver alert webhooks",
    ),
    Schedule(
        # 03:40 in Asia/Ho_Chi_Minh: after the night's syncs and a priorities refresh
        "ops.invariants", Jobs.CHECK_INVARIANTS, "default", cron="40 20 * * *", timeout=1800,
        description="check the truths that tie the tables together (flask check invariants)",
    ),
    Schedule(
        # 03:00 in Asia/Ho_Chi_Minh, before the invariants check (BACKUP_CRON to move it):
        # pg_dump of the database, the instance files, a manifest; then the retention
        "ops.backup", Jobs.TAKE_BACKUP, "default",
        cron=os.environ.get("BACKUP_CRON", "0 20 * * *"), timeout=3600,
        description="back up the database and the instance files into BACKUP_DIR; drop "
                    "backups past BACKUP_KEEP_DAYS beyond the newest BACKUP_KEEP_COUNT",
    ),
    Schedule(
        # 05:00 in Asia/Ho_Chi_Minh: after the night's syncs and the priorities refresh, before
        # the agents start; idempotent per business date, so a second run changes nothing
        "strategies.daily", Jobs.RUN_STRATEGIES, "default", cron="0 22 * * *", timeout=1800,
        description="strategies' daily run: segments, steps, messages, call queues, visits",
    ),
    Schedule(
        # 04:10 in Asia/Ho_Chi_Minh, a quiet hour
        "webhooks.prune_receipts", Jobs.PRUNE_WEBHOOK_RECEIPTS, "default", cron="10 21 * * *",
        timeout=600, description="drop webhook receipts older than WEBHOOK_RECEIPT_DAYS",
    ),
    Schedule(
        # every minute: queued messages due now, retries whose backoff ended, messages held
        # for quiet hours once the hours open (portal/messages/dispatch.py)
        "messages.dispatch", Jobs.DISPATCH_MESSAGES, "integrations", cron="* * * * *",
        timeout=600, description="send due SMS and e-mail under the contact rules, retry "
                                 "failures with backoff",
    ),
    Schedule(
        "messages.reconcile_reports", Jobs.RECONCILE_SMS_REPORTS, "integrations",
        cron="25 * * * *", timeout=900,
        description="ask the SMS gateway about sent SMS whose delivery report never came",
    ),
    Schedule(
        # 17:00 in Asia/Ho_Chi_Minh: after the day's strategy run queued its letters; building
        # a date again returns its batch (ops can also build it from /letters/batches)
        "letters.print_batch", Jobs.BUILD_PRINT_BATCH, "default", cron="0 10 * * *",
        timeout=1800, description="the day's print batch of letters for the print vendor",
    ),
)

# The schedule that drives each integration's runs and what it does (the ops pages say it in
# words); the push integrations also take the other side's requests at any time.
INTEGRATION_SCHEDULES = {
    "T24": ("sync.t24", "synced"), "W4": ("sync.w4", "synced"), "LOS": ("sync.los", "synced"),
    "PAYMENTS": ("payments.reconcile", "reconciled"), "CTI": ("calls.reconcile", "reconciled"),
    "GPS": ("field.forward", "forwarded"), "EVENTS": ("events.relay", "relayed"),
    "STRATEGIES": ("strategies.daily", "assigned"),
}
PUSH = ("PAYMENTS", "CTI", "GPS")


def schedule_of(integration: str) -> Schedule | None:
    """The schedule of ``integration``'s runs (INTEGRATION_SCHEDULES), or None."""
    name, _ = INTEGRATION_SCHEDULES.get(integration.upper(), (None, None))
    return next((s for s in SCHEDULES if s.name == name), None)


def integration_schedule(integration: str,
                         now: datetime | None = None) -> tuple[str, datetime | None]:
    """(``integration``'s schedule in words, its next run): ("Synced daily at 01:30", …),
    ("Real time; reconciled daily at 00:30", …); ("Not scheduled", None)."""
    schedule = schedule_of(integration)
    if schedule is None:
        return "Not scheduled", None
    verb = INTEGRATION_SCHEDULES[integration.upper()][1]
    words = f"{verb} {schedule.in_words(now)}"
    if integration.upper() in PUSH:
        words = f"real time; {words}"
    return words[:1].upper() + words[1:], schedule.next_run(now)
