"""What ops can do from the health page, each audited: run now, full resync, retry a failed run,
retry dead letters, requeue failed jobs, pause/resume, force a circuit breaker.

Integrations plug their entry points into ``TRIGGERS`` (``register_trigger``); the page offers
an action only when its integration registered it. A trigger function is called as
``fn(user=<User>, run=<IntegrationRun or None>)`` and returns a short message for the page
(e.g. "W4 sync enqueued (job 1a2b)"); it should enqueue work rather than do it inline.

The event bus registers itself here: "run now" relays pending events, "retry" re-enqueues the
dead letters (the same ``retry_dead`` as ``flask events retry-dead``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from rq.job import Job
from sqlalchemy.orm import Session

from integrations import sync
from portal import audit
from portal.events.relay import relay_pending, retry_dead
from portal.extensions import db
from portal.labels import label
from portal.queues import all_queues, enqueue, get_queue
from portal.schedules import Jobs

log = logging.getLogger(__name__)

ACTIONS = ("run_now", "full_resync", "retry_run")


class ActionError(Exception):
    """An action that cannot be done (not registered, wrong state): shown to the user."""


@dataclass
class Trigger:
    integration: str
    run_now: Callable | None = None
    full_resync: Callable | None = None
    retry_run: Callable | None = None
    label_run_now: object = _l("Run now")
    label_retry: object = _l("Retry run")


TRIGGERS: dict[str, Trigger] = {}


def register_trigger(integration: str, *, run_now: Callable | None = None,
                     full_resync: Callable | None = None, retry_run: Callable | None = None,
                     label_run_now=_l("Run now"), label_retry=_l("Retry run")) -> Trigger:
    """Register (or extend) the trigger functions of ``integration``."""
    name = integration.upper()
    trigger = TRIGGERS.get(name) or Trigger(name)
    trigger.run_now = run_now or trigger.run_now
    trigger.full_resync = full_resync or trigger.full_resync
    trigger.retry_run = retry_run or trigger.retry_run
    trigger.label_run_now = label_run_now
    trigger.label_retry = label_retry
    TRIGGERS[name] = trigger
    return trigger


def available(integration: str) -> dict[str, bool]:
    trigger = TRIGGERS.get(integration.upper())
    return {action: bool(trigger and getattr(trigger, action)) for action in ACTIONS}


def trigger(session: Session, integration: str, action: str, user, *, run=None) -> str:
    """Call ``integration``'s ``action`` (run_now | full_resync | retry_run), audited."""
    if action not in ACTIONS:
        raise ActionError(f"unknown action {action!r}")
    name = integration.upper()
    fn = getattr(TRIGGERS.get(name), action, None) if name in TRIGGERS else None
    if fn is None:
        raise ActionError(_("%(name)s offers no '%(action)s' action yet", name=name,
                            action=action.replace("_", " ")))
    if action == "retry_run":
        if run is None or run.integration != name:
            raise ActionError(_("Choose a run of this integration to retry."))
        if run.status not in ("failed", "partial", "cancelled"):
            raise ActionError(_("Run %(id)s is %(status)s: only a failed run can be retried.",
                                id=run.id, status=label(run.status).lower()))
    audit.record(session, user, f"ops.{action}", "integration", name,
                 after={"run_id": getattr(run, "id", None)})
    session.commit()  # the audit row stays even if the trigger fails
    message = fn(user=user, run=run)
    log.warning("ops action %s on %s", action, name, extra={
        "integration": name, "action": action, "run_id": getattr(run, "id", None),
        "user": getattr(user, "username", None)})
    return message or _("%(name)s: %(action)s requested", name=name,
                        action=action.replace("_", " "))


# --- the event bus ------------------------------------------------------------------------------


def _events_relay(*, user=None, run=None) -> str:
    events, jobs = relay_pending(db.session)
    return _("Relayed %(events)s events (%(jobs)s deliveries enqueued)", events=events, jobs=jobs)


def _events_retry_dead(*, user=None, run=None) -> str:
    count = retry_dead(db.session)
    return ngettext("Re-enqueued %(num)d dead letter", "Re-enqueued %(num)d dead letters", count)


register_trigger("EVENTS", run_now=_events_relay, retry_run=_events_retry_dead,
                 label_run_now=_l("Relay now"), label_retry=_l("Retry dead letters"))


# --- payments, call centre, GPS: their periodic jobs, queued now --------------------------------


def _enqueue(label, queue: str, func: str, *, with_user: bool = False, **kwargs):
    """An action that queues ``func`` (``with_user``: passing the ops user as ``user_id``, so
    the run it records says who asked for it)."""
    def run(*, user=None, run=None) -> str:
        extra = {"user_id": getattr(user, "id", None)} if with_user else {}
        job = enqueue(queue, func, **kwargs, **extra)
        return _("%(what)s queued (job %(job)s)", what=label, job=job.id)
    return run


def _payments_rerun(*, user=None, run=None) -> str:
    day = (run.business_date.isoformat() if getattr(run, "business_date", None) else None)
    job = enqueue("integrations", Jobs.RECONCILE_PAYMENTS,
                  business_date=day, trigger="retry", user_id=getattr(user, "id", None))
    if day:
        return _("Reconciliation of %(day)s queued again (job %(job)s)", day=day, job=job.id)
    return _("Reconciliation of yesterday queued again (job %(job)s)", job=job.id)


register_trigger("PAYMENTS", run_now=_enqueue(
    _l("Reconciliation of yesterday"), "integrations",
    Jobs.RECONCILE_PAYMENTS, trigger="manual", with_user=True),
    retry_run=_payments_rerun, label_run_now=_l("Reconcile now"))
register_trigger("CTI", run_now=_enqueue(
    _l("Call reconciliation of yesterday"), "integrations", Jobs.RECONCILE_CALLS,
    trigger="manual", with_user=True),
    label_run_now=_l("Reconcile calls now"))
register_trigger("GPS", run_now=_enqueue(
    _l("Forwarding of waiting positions"), "integrations",
    Jobs.FORWARD_LOCATIONS, trigger="manual"),
    label_run_now=_l("Forward now"))

# the bank syncs: "Sync now", "Full resync" and "Retry run" (integrations/sync.py)
for _name in sync.INTEGRATIONS:
    register_trigger(_name, run_now=sync.ops_run_now(_name),
                     full_resync=sync.ops_full_resync(_name),
                     retry_run=sync.ops_retry_run(_name), label_run_now=_l("Sync now"))


def retry_dead_letters(session: Session, user, *, delivery_ids: list[int] | None = None) -> int:
    """Give dead event deliveries a new job (all, or the given ids), audited."""

    audit.record(session, user, "ops.retry_dead_letters", "event_deliveries", None,
                 after={"delivery_ids": delivery_ids})
    count = retry_dead(session, delivery_ids=delivery_ids)  # commits (with the audit row)
    if not count:
        session.commit()
    return count


# --- failed RQ jobs -------------------------------------------------------------------------------


def failed_jobs(connection=None, *, limit: int = 50) -> list[dict]:
    """The failed job registry of every queue: newest first, with the exception text."""

    rows = []
    for queue in all_queues(connection):
        registry = queue.failed_job_registry
        ids = registry.get_job_ids(0, limit - 1, desc=True)
        for job in Job.fetch_many(ids, connection=queue.connection):
            if job is None:
                continue
            exc_info = None
            try:
                exc_info = job.latest_result().exc_string if job.latest_result() else None
            except Exception:  # noqa: BLE001 - older result formats
                exc_info = None
            exc_info = exc_info or getattr(job, "exc_info", None) or ""
            rows.append({
                "id": job.id, "queue": queue.name, "func": job.func_name,
                "args": repr(job.args)[:200], "ended_at": job.ended_at,
                "enqueued_at": job.enqueued_at, "exc_info": exc_info,
                "error": (exc_info.strip().splitlines() or [""])[-1][:300],
                "correlation_id": job.meta.get("correlation_id"),
            })
    rows.sort(key=lambda r: (r["ended_at"] or r["enqueued_at"]).timestamp()
              if (r["ended_at"] or r["enqueued_at"]) else 0.0, reverse=True)
    return rows[:limit]


def requeue_failed(session: Session, user, *, queue_name: str, job_id: str | None = None,
                   connection=None) -> int:
    """Requeue one failed job (``job_id``) or every failed job of ``queue_name``, audited."""

    queue = get_queue(queue_name, connection)
    registry = queue.failed_job_registry
    ids = [job_id] if job_id else registry.get_job_ids()
    count = 0
    for one in ids:
        try:
            registry.requeue(one)
            count += 1
        except Exception as exc:  # noqa: BLE001 - gone meanwhile: reported, others continue
            log.warning("could not requeue job", extra={"job_id": one, "error": str(exc)})
    if job_id and not count:
        raise ActionError(f"job {job_id} is no longer in the failed registry of {queue_name}")
    audit.record(session, user, "ops.requeue_failed", "queue", queue_name,
                 after={"job_id": job_id, "requeued": count})
    session.commit()
    return count
