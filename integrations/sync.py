"""Running the bank synchronisations (T24 files, W4 cards, LOS applications): one entry point for
the RQ jobs (``workers/jobs/sync.py``), the daily schedules, ``flask sync …`` and the ops page.

- :func:`trigger` — enqueue a run on the ``integrations`` queue; returns the RQ job id (the ops
  page's "Sync now" / "Full resync" buttons).
- :func:`run_sync` — one run, in the calling process: takes the integration's lock (one run at a
  time per integration), retries a failed attempt with exponential backoff (``SYNC_RETRIES``
  more attempts, ``SYNC_RETRY_BACKOFF`` · 2^(n-1) seconds; each attempt is its own
  ``integration_runs`` row, ``trigger = 'retry'``, ``retry_of_id`` the previous one), then, when
  every attempt failed (or a T24 set was rejected), notifies every active ops user.
- Progress of a running run: ``integration_runs.progress_done`` / ``progress_total`` (records
  done / records to do), written while it runs — see :func:`progress`.

Every run ends with SYNC_COMPLETED (published by the loaders in their transaction). Where the
data of each integration goes, and how, is in ``integrations/t24/load.py``,
``integrations/w4/load.py``, ``integrations/los/load.py``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import psycopg
from flask import Flask, current_app
from redis import Redis
from sqlalchemy import func, select, text

from integrations.control import breaker
from integrations.http import Unavailable
from integrations.los.client import LOSClient
from integrations.los.load import sync_los
from integrations.runs import record_run
from integrations.sftp import SftpSettings, fetch
from integrations.t24.inbox import Inbox
from integrations.t24.load import load_set, process_inbox
from integrations.t24.manifest import verify
from integrations.t24.mapping import load_profile
from integrations.w4.client import W4Client
from integrations.w4.load import sync_w4
from portal import clock
from portal.events.relay import request_relay_after_commit
from portal.extensions import db
from portal.logging import correlation_scope, get_correlation_id
from portal.models import ProductOwnerMove, User
from portal.notifications.messages import N_, counted, message
from portal.notifications.operations import notify
from portal.queues import enqueue
from portal.schedules import Jobs

log = logging.getLogger(__name__)

INTEGRATIONS = ("T24", "W4", "LOS")
QUEUE = "integrations"
JOB = Jobs.SYNC
LOCK_CLASS = 5_240_000  # pg advisory lock (class, integration index): one run at a time
# Failures worth another attempt: the remote system or the database was unreachable.
RETRYABLE = (Unavailable, psycopg.OperationalError, ConnectionError, TimeoutError, OSError)


class SyncError(Exception):
    """A run that did not succeed (after its retries)."""


class AlreadyRunning(SyncError):
    pass


@dataclass
class SyncOutcome:
    integration: str
    status: str  # succeeded, partial, failed, skipped, nothing
    run_ids: list[int] = field(default_factory=list)
    attempts: int = 0
    summary: dict = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"integration": self.integration, "status": self.status,
                "run_ids": self.run_ids, "attempts": self.attempts, "summary": self.summary,
                "errors": self.errors}


def normalise(integration: str) -> str:
    name = str(integration).upper()
    if name not in INTEGRATIONS:
        raise ValueError(f"unknown integration {integration!r}; one of {', '.join(INTEGRATIONS)}")
    return name


# -- connections ---------------------------------------------------------------------------------

def database_url(app: Flask) -> str:
    return app.config["SQLALCHEMY_DATABASE_URI"].replace("postgresql+psycopg://", "postgresql://")


def connect(app: Flask) -> psycopg.Connection:
    """An autocommit psycopg connection for a loader (it opens its own transactions)."""
    return psycopg.connect(database_url(app), autocommit=True, **clock.postgres_connect_args())


# -- one attempt per integration -----------------------------------------------------------------

def _t24(conn, app: Flask, *, full: bool, business_date: date | None, trigger: str,
         user_id: int | None, retry_of_id: int | None, attempt: int,
         correlation_id: str | None) -> tuple[list[int], str, dict, list[str]]:
    # a mapping file that cannot be used refuses the run (MappingError names file, line, field)
    profile = load_profile(app.config.get("T24_MAPPING_PROFILE", "crm-json"))
    inbox = Inbox(Path(app.config["T24_INBOX_DIR"])).ensure()
    fetched = fetch_sftp(app, inbox.inbox)
    options = {"trigger": trigger, "triggered_by_id": user_id, "retry_of_id": retry_of_id,
               "attempt": attempt, "correlation_id": correlation_id}
    with connect(app) as progress_conn:
        outcomes = process_inbox(conn, inbox, include_stale=True, business_date=business_date,
                                 progress_conn=progress_conn, profile=profile, **options)
        if full and not any(not isinstance(o, str) for o in outcomes):
            latest = latest_processed_set(inbox, business_date)
            if latest is None:
                raise SyncError("full refresh: no processed T24 set to load again")
            outcomes.append(load_set(conn, verify(latest, profile=profile, count=False),
                                     progress_conn=progress_conn,
                                     **options))
    results = [o for o in outcomes if not isinstance(o, str)]
    duplicates = [o for o in outcomes if isinstance(o, str)]
    errors = [e for r in results if r.status == "failed" for e in r.errors]
    reason = None
    if not results:
        status = "nothing"
        if duplicates:
            reason = (f"Nothing to load: {len(duplicates)} file set(s) had been loaded before "
                      "(moved to rejected/ as duplicates).")
        else:
            day = f" for {business_date:%d/%m/%Y}" if business_date else ""
            reason = f"Nothing to do: no T24 file set waiting in the inbox{day}."
    elif any(r.status == "failed" for r in results):
        status = "failed"
    elif any(r.status == "partial" for r in results):
        status = "partial"
    else:
        status = "succeeded"
    summary = {"sets": len(results), "duplicates": duplicates, "fetched": fetched,
               "changed": sum(r.changed for r in results),
               "events": sum(r.events for r in results),
               **{name: sum(r.owner_moves.get(name, 0) for r in results)
                  for name in ("owner_moves", "owner_moves_held")}}
    if reason:
        summary["reason"] = reason
    return [r.run_id for r in results], status, summary, errors


def latest_processed_set(inbox, business_date: date | None) -> Path | None:
    """The manifest of the newest processed set that was a full set (of ``business_date``)."""

    candidates = sorted(inbox.processed.glob("*/*/t24_manifest_*.json"),
                        key=lambda p: (p.parent.parent.name, p.stat().st_mtime), reverse=True)
    for path in candidates:
        if business_date and path.parent.parent.name != f"{business_date:%Y%m%d}":
            continue
        try:
            mode = json.loads(path.read_text(encoding="utf-8")).get("mode")
        except (OSError, ValueError):
            continue
        return path if mode == "full" else None  # a newer delta: reloading older data is wrong
    return None


def _api(conn, app: Flask, integration: str, *, full: bool, trigger: str, user_id: int | None,
         retry_of_id: int | None, attempt: int,
         correlation_id: str | None) -> tuple[list[int], str, dict, list[str]]:
    client = make_client(app, integration)
    options = {"full": full, "trigger": trigger, "triggered_by_id": user_id,
               "retry_of_id": retry_of_id, "attempt": attempt, "correlation_id": correlation_id}
    try:
        if integration == "W4":
            run = sync_w4(conn, client, **options)
        else:
            run = sync_los(conn, client, **options)
    finally:
        client.close()
    return [run.run_id], run.status, run.control(), run.errors


def make_client(app: Flask, integration: str):
    options = {"timeout": app.config["SYNC_HTTP_TIMEOUT"],
               "retries": app.config["SYNC_HTTP_RETRIES"],
               "page_size": app.config["SYNC_PAGE_SIZE"]}
    options["breaker"] = breaker(integration)  # the system's circuit breaker (ops switches)
    if integration == "W4":
        url, secret = app.config.get("W4_API_URL"), app.config.get("W4_API_KEY")
        if not url or not secret:
            raise SyncError("W4 is not configured (W4_API_URL, W4_API_KEY)")
        return W4Client(url, secret, **options)

    url, secret = app.config.get("LOS_API_URL"), app.config.get("LOS_API_TOKEN")
    if not url or not secret:
        raise SyncError("LOS is not configured (LOS_API_URL, LOS_API_TOKEN)")
    return LOSClient(url, secret, **options)


def fetch_sftp(app: Flask, target: Path) -> list[str]:
    """The SFTP fetch step (configuration only; skipped when ``T24_SFTP_HOST`` is unset)."""
    if not app.config.get("T24_SFTP_HOST"):
        return []

    return fetch(SftpSettings.from_config(app.config), target)


# -- a run with its retries -----------------------------------------------------------------------

def _last_run_id(conn, integration: str) -> int | None:
    row = conn.execute("SELECT max(id) FROM integration_runs WHERE integration = %s",
                       (integration,)).fetchone()
    return row[0] if row else None


def _close_failed_attempt(conn, integration: str, before: int | None,
                          exc: BaseException) -> int:
    """Mark failed the run rows this attempt left 'running' (its loader could not: e.g. its
    database connection was cut mid-load). Under the integration's lock, so only ours."""
    error = f"{type(exc).__name__}: {exc}"[:2000]
    return conn.execute(
        "UPDATE integration_runs SET status = 'failed', finished_at = crm_now(), errors = "
        "coalesce(errors, '[]'::jsonb) || jsonb_build_array(%s::text) WHERE integration = %s "
        "AND kind = 'sync' AND status = 'running' AND id > %s",
        (error, integration, before or 0)).rowcount


def run_sync(integration: str, *, full: bool = False, business_date: date | str | None = None,
             trigger: str = "manual", user_id: int | None = None, app: Flask | None = None,
             retries: int | None = None, backoff: float | None = None,
             sleep: Callable[[float], None] = time.sleep,
             correlation_id: str | None = None) -> SyncOutcome:
    """Run one sync of ``integration`` now (T24: every complete set waiting in the inbox, or
    only ``business_date``'s; ``full``: W4/LOS from the start instead of the stored cursor, T24
    the newest full set again). Raises :class:`SyncError` when it failed after its retries
    (ops users have been notified) and :class:`AlreadyRunning` when another run holds the lock.
    """
    integration = normalise(integration)
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    if isinstance(business_date, str):
        business_date = date.fromisoformat(business_date)
    retries = app.config["SYNC_RETRIES"] if retries is None else retries
    backoff = app.config["SYNC_RETRY_BACKOFF"] if backoff is None else backoff

    correlation_id = correlation_id or get_correlation_id() or uuid.uuid4().hex
    with correlation_scope(correlation_id):  # the run's log lines carry the run's id
        return _run_with_retries(integration, app, full=full, business_date=business_date,
                                 trigger=trigger, user_id=user_id, retries=retries,
                                 backoff=backoff, sleep=sleep, correlation_id=correlation_id)


def _run_with_retries(integration: str, app: Flask, *, full: bool,
                      business_date: date | None, trigger: str, user_id: int | None,
                      retries: int, backoff: float, sleep: Callable[[float], None],
                      correlation_id: str) -> SyncOutcome:
    outcome = SyncOutcome(integration, "running")
    with connect(app) as lock_conn:
        # One run per integration at a time: a session-level advisory lock, released by the
        # server when this connection ends, even when the worker is killed.
        conn = lock_conn
        if not conn.execute("SELECT pg_try_advisory_lock(%s, %s)",
                            (LOCK_CLASS, INTEGRATIONS.index(integration))).fetchone()[0]:
            raise AlreadyRunning(f"a {integration} sync is already running")
        abandoned = conn.execute(
            "UPDATE integration_runs SET status = 'failed', finished_at = crm_now(), errors = "
            "coalesce(errors, '[]'::jsonb) || '[\"abandoned: its worker stopped mid-run\"]'"
            "::jsonb WHERE integration = %s AND kind = 'sync' AND status = 'running'",
            (integration,)).rowcount
        if abandoned:
            log.warning("runs left running by a dead worker marked failed",
                        extra={"integration": integration, "runs": abandoned})
        retry_of_id = None
        for attempt in range(1, retries + 2):
            outcome.attempts = attempt
            run_trigger = trigger if attempt == 1 else "retry"
            before = _last_run_id(conn, integration)
            try:
                with connect(app) as data_conn:  # a fresh connection per attempt
                    if integration == "T24":
                        run_ids, status, summary, errors = _t24(
                            data_conn, app, full=full, business_date=business_date,
                            trigger=run_trigger, user_id=user_id, retry_of_id=retry_of_id,
                            attempt=attempt, correlation_id=correlation_id)
                    else:
                        run_ids, status, summary, errors = _api(
                            data_conn, app, integration, full=full, trigger=run_trigger,
                            user_id=user_id, retry_of_id=retry_of_id, attempt=attempt,
                            correlation_id=correlation_id)
            except RETRYABLE as exc:
                _close_failed_attempt(conn, integration, before, exc)
                failed_run = _last_run_id(conn, integration)
                if failed_run == before:  # it failed before its loader wrote a run
                    failed_run = record_attempt(
                        app, integration, status="failed", errors=[f"{type(exc).__name__}: "
                                                                   f"{exc}"],
                        trigger=run_trigger, user_id=user_id, business_date=business_date,
                        attempt=attempt, retry_of_id=retry_of_id) or before
                if failed_run != before:
                    outcome.run_ids.append(failed_run)
                    retry_of_id = failed_run
                outcome.errors.append(f"attempt {attempt}: {type(exc).__name__}: {exc}")
                log.warning("sync attempt failed", extra={
                    "integration": integration, "attempt": attempt, "error": str(exc)})
                if attempt <= retries:
                    sleep(min(backoff * 2 ** (attempt - 1), 3600))
                    continue
                outcome.status = "failed"
                break
            except Exception as exc:  # not worth retrying: credentials, a bug, bad data
                _close_failed_attempt(conn, integration, before, exc)
                failed_run = _last_run_id(conn, integration)
                if failed_run == before:  # it failed before its loader wrote a run
                    failed_run = record_attempt(
                        app, integration, status="failed", errors=[f"{type(exc).__name__}: "
                                                                   f"{exc}"],
                        trigger=run_trigger, user_id=user_id, business_date=business_date,
                        attempt=attempt, retry_of_id=retry_of_id) or before
                if failed_run != before:
                    outcome.run_ids.append(failed_run)
                outcome.errors.append(f"{type(exc).__name__}: {exc}")
                log.exception("sync failed", extra={"integration": integration})
                outcome.status = "failed"
                break
            outcome.run_ids += run_ids
            outcome.status, outcome.summary = status, summary
            outcome.errors += errors
            if status == "nothing":  # the trace of a run that found no work, and why
                skipped = record_attempt(
                    app, integration, status="skipped", note=summary.get("reason"),
                    trigger=run_trigger, user_id=user_id, business_date=business_date,
                    attempt=attempt, retry_of_id=retry_of_id)
                outcome.run_ids += [skipped] if skipped else []
            break
    if outcome.status != "nothing":
        request_relay_after_commit()
    if outcome.run_ids:
        tell_ops_of_held_moves(app, outcome)
    if outcome.status == "failed":
        alert_ops(app, outcome)
        raise SyncError(f"{integration} sync failed after {outcome.attempts} attempt(s): "
                        + "; ".join(outcome.errors)[:1000])
    return outcome


def record_attempt(app: Flask, integration: str, *, status: str, trigger: str,
                   note: str | None = None, errors: list[str] | None = None,
                   user_id: int | None = None, business_date: date | None = None,
                   attempt: int = 1, retry_of_id: int | None = None) -> int | None:
    """Record a sync run no loader recorded (it had nothing to do, or failed before starting);
    returns its id, None when even that failed (the database is down: logged)."""
    try:
        with app.app_context():
            run = record_run(db.session, integration, "sync", status=status, note=note,
                             errors=errors, trigger=trigger, user_id=user_id,
                             business_date=business_date, attempt=attempt,
                             retry_of_id=retry_of_id)
            db.session.commit()
            return run.id
    except Exception:  # noqa: BLE001 - the job's own outcome still says what happened
        log.warning("could not record the %s run", integration, exc_info=True)
        return None


def tell_ops_of_held_moves(app: Flask, outcome: SyncOutcome) -> int:
    """A notification to every active ops user for each run of ``outcome`` that held products
    it would have given other customers (their decision is on the run page); returns how
    many runs held some."""

    with app.app_context():
        held = db.session.execute(
            select(ProductOwnerMove.run_id, func.count())
            .where(ProductOwnerMove.run_id.in_(outcome.run_ids),
                   ProductOwnerMove.status == "held")
            .group_by(ProductOwnerMove.run_id).order_by(ProductOwnerMove.run_id)).all()
        if not held:
            return 0
        users = db.session.scalars(select(User.id).where(User.role == "ops",
                                                         User.active.is_(True))).all()
        for run_id, count in held:
            for user_id in users:
                notify(db.session, user_id, "owner_moves_held",
                       counted(N_("%(integration)s run %(run)s: %(num)d product held"),
                               N_("%(integration)s run %(run)s: %(num)d products held"),
                               count, integration=outcome.integration, run=run_id),
                       counted(N_("The run would give %(num)d product to other customers. "
                                  "Apply or reject the moves on the run page."),
                               N_("The run would give %(num)d products to other customers. "
                                  "Apply or reject the moves on the run page."), count),
                       link=f"/ops/integrations/runs/{run_id}")
        db.session.commit()
    log.warning("product owner moves held for ops", extra={
        "integration": outcome.integration, "runs": [r for r, _ in held],
        "held": sum(c for _, c in held)})
    return len(held)


def alert_ops(app: Flask, outcome: SyncOutcome) -> int:
    """A notification to every active ops user; returns how many were notified."""

    with app.app_context():
        users = db.session.scalars(select(User.id).where(User.role == "ops",
                                                         User.active.is_(True))).all()
        run = outcome.run_ids[-1] if outcome.run_ids else None
        for user_id in users:
            notify(db.session, user_id, "sync_failed",
                   counted(N_("%(integration)s sync failed after %(num)d attempt"),
                           N_("%(integration)s sync failed after %(num)d attempts"),
                           outcome.attempts, integration=outcome.integration),
                   "; ".join(outcome.errors)[-2000:] or None,
                   link=f"/ops/integrations/runs/{run}" if run else "/ops/integrations")
        db.session.commit()
    log.error("sync failed; ops notified", extra={
        "integration": outcome.integration, "attempts": outcome.attempts,
        "errors": outcome.errors[-3:], "notified": len(users)})
    return len(users)


def _redis(app: Flask):
    return Redis.from_url(app.config["REDIS_URL"])


# -- on demand and progress ------------------------------------------------------------------------

def trigger(integration: str, *, full: bool = False, business_date: date | str | None = None,
            user_id: int | None = None) -> str:
    """Enqueue a sync of ``integration`` on the integrations queue (what the ops page calls);
    returns the RQ job id."""

    integration = normalise(integration)
    if isinstance(business_date, date):
        business_date = business_date.isoformat()
    job = enqueue(QUEUE, JOB, integration, full=full, business_date=business_date,
                  trigger="manual", user_id=user_id,
                  job_id=f"sync-{integration.lower()}-{uuid.uuid4().hex[:12]}",
                  meta={"integration": integration, "full": full, "user_id": user_id})
    return job.id


def progress(conn_or_session, integration: str) -> dict | None:
    """The newest run of ``integration``: ``{run_id, status, done, total, percent}``."""

    query = ("SELECT id, status, progress_done, progress_total FROM integration_runs "
             "WHERE integration = :i ORDER BY id DESC LIMIT 1")
    row = conn_or_session.execute(text(query), {"i": normalise(integration)}).first()
    if row is None:
        return None
    run_id, status, done, total = row
    percent = round(100 * done / total, 1) if done is not None and total else None
    return {"run_id": run_id, "status": status, "done": done, "total": total,
            "percent": percent}


# -- the ops page's buttons (portal/ops/actions.py) --------------------------------------

def ops_run_now(integration: str):
    def run_now(*, user=None, run=None) -> str:
        job_id = trigger(integration, user_id=getattr(user, "id", None))
        return message(N_("%(name)s sync enqueued (job %(job)s)"), name=integration,
                       job=job_id).render()
    return run_now


def ops_full_resync(integration: str):
    def full_resync(*, user=None, run=None) -> str:
        job_id = trigger(integration, full=True, user_id=getattr(user, "id", None))
        if integration == "T24":
            return message(N_("%(name)s full resync enqueued (newest full set loaded again; "
                              "job %(job)s)"), name=integration, job=job_id).render()
        return message(N_("%(name)s full resync enqueued (from the start; job %(job)s)"),
                       name=integration, job=job_id).render()
    return full_resync


def ops_retry_run(integration: str):
    def retry_run(*, user=None, run=None) -> str:
        # T24: the failed run's set is still in work/ (or rejected: a resend is needed); the
        # next run picks up what was left. W4/LOS: the next run resumes from the stored cursor.
        day = getattr(run, "business_date", None) if integration == "T24" else None
        job_id = trigger(integration, business_date=day, user_id=getattr(user, "id", None))
        return message(N_("%(name)s run %(run)s retried (job %(job)s)"), name=integration,
                       run=getattr(run, "id", "?"), job=job_id).render()
    return retry_run
