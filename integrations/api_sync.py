"""Incremental sync of a paginated JSON API (W4 cards, LOS applications) into PostgreSQL.

One run = one ``integration_runs`` row. Pages are read from the cursor stored in
``integration_settings.cursor`` (or from the start for a full run); each page is one
transaction: its records are transformed (bad ones quarantined with reason and raw payload),
COPied into a staging table and upserted by the integration's ``PageLoader`` (only real changes
are written and produce events), and the page's ``cursor`` is stored **in the same
transaction**. So a run that stops anywhere (outage after the client's retries, killed worker)
has loaded exactly the pages before its stored cursor; the next run resumes from it, with nothing
skipped and nothing loaded twice. Progress (records done / total) is written on the run row after
each page; the case totals and priorities of the customers whose products changed are
recomputed once, at the end of the run (a run that stops before its end leaves them to the
hourly ``cases.priorities`` job, which recomputes every case). Products the source gives
another customer are held in place while the pages load and decided at the end
(integrations/owner_moves.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from psycopg import Connection
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb

from integrations import owner_moves
from integrations.case_totals import MAX_CASE_IDS, recompute_cases, recompute_totals_of_touched
from integrations.changes import ensure_change_table, publish_one
from integrations.fields import Quarantine, Row
from integrations.http import Page
from portal import clock
from portal.run_counts import RunCounts
from portal.tracing import current_trace_id

log = logging.getLogger(__name__)


@dataclass
class PageCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0  # rejected while loading (unknown customer, ...)
    events: int = 0
    extra: dict = field(default_factory=dict)


class PageLoader:
    """What an integration does with one page of valid rows (inside the page's transaction)."""

    integration = "API"
    entity = "records"

    def load(self, conn: Connection, rows: dict[str, Row], run: ApiRun) -> PageCounts:
        raise NotImplementedError

    def finish(self, conn: Connection, run: ApiRun) -> dict:
        """After the last page (own transaction); extra figures for the run's control totals."""
        return {}


@dataclass
class ApiRun:
    run_id: int
    integration: str
    full: bool
    cursor_before: str | None
    cursor_after: str | None = None
    status: str = "running"
    extracted: int = 0
    transformed: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    events: int = 0
    pages: int = 0
    total: int | None = None
    errors: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    correlation_id: str | None = None
    kind: str = "sync"
    touched: set[str] = field(default_factory=set)  # cifs whose case totals are to recompute
    all_touched: bool = False  # too many: recompute every case

    @property
    def loaded(self) -> int:
        return self.inserted + self.updated

    def control(self) -> dict:
        return {"pages": self.pages, "source_total": self.total, "extracted": self.extracted,
                "inserted": self.inserted, "updated": self.updated,
                "unchanged": self.unchanged, "quarantined": self.quarantined,
                "events": self.events,
                # every record received is accounted for exactly once
                "difference": self.extracted - (self.loaded + self.unchanged + self.quarantined),
                **self.extra}


def read_cursor(conn: Connection, integration: str) -> str | None:
    row = conn.execute("SELECT cursor FROM integration_settings WHERE integration = %s",
                       (integration,)).fetchone()
    return row[0] if row else None


def store_cursor(conn: Connection, integration: str, cursor: str | None) -> None:
    conn.execute("INSERT INTO integration_settings (integration, cursor) VALUES (%s, %s) "
                 "ON CONFLICT (integration) DO UPDATE SET cursor = EXCLUDED.cursor",
                 (integration, cursor))


def quarantine_rows(conn: Connection, integration: str, run_id: int,
                    items: list[Quarantine]) -> None:
    if not items:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO quarantined_records (integration, run_id, entity, record_key, reason, "
            "payload, raw, source_file, line_number) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(integration, run_id, q.entity, q.record_key, q.reason[:2000],
              Jsonb(q.payload) if q.payload is not None else None, q.raw, q.source_file,
              q.record_number) for q in items])


def sync_pages(conn: Connection, *, integration: str, pages: Callable[[str | None], Iterator[Page]],
               transform: Callable[..., Row | Quarantine], loader: PageLoader,
               full: bool = False, trigger: str = "manual", triggered_by_id: int | None = None,
               retry_of_id: int | None = None, attempt: int = 1,
               correlation_id: str | None = None, kind: str = "sync",
               note: str | None = None) -> ApiRun:
    """Run one sync of ``integration``. Raises what the client raises (``Unavailable`` …) after
    recording the run as failed; the pages loaded before stay loaded, with their cursor.

    ``kind="refresh"`` (one customer fetched now, integrations/refresh.py): the same load, but
    the stored cursor is neither read nor moved (the daily sync's position is its own)."""
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise ValueError("sync_pages needs a connection with no transaction in progress")
    started = time.perf_counter()
    with conn.transaction():
        stored = read_cursor(conn, integration) if kind == "sync" else None
        start = None if full else stored
        run_id = conn.execute(
            "INSERT INTO integration_runs (integration, kind, trigger, status, mode, "
            "started_at, triggered_by_id, retry_of_id, attempt, correlation_id, cursor_before, "
            "progress_done, note, trace_id) VALUES (%s, %s, %s, 'running', %s, %s, %s, %s, %s, "
            "%s, %s, 0, %s, %s) RETURNING id",
            (integration, kind, trigger, "full" if full else "delta", clock.running_now(),
             triggered_by_id, retry_of_id, attempt, correlation_id, start, note,
             current_trace_id())).fetchone()[0]
    run = ApiRun(run_id, integration, full, start, cursor_after=start,
                 correlation_id=correlation_id, kind=kind)
    try:
        for page in pages(start):
            with conn.transaction():
                _load_page(conn, page, transform, loader, run)
                if page.cursor and kind == "sync":
                    store_cursor(conn, integration, page.cursor)
                    run.cursor_after = page.cursor
            run.pages += 1
            if run.total is None and page.total is not None:
                run.total = page.total
            with conn.transaction():
                conn.execute("UPDATE integration_runs SET progress_done = %s, "
                             "progress_total = %s WHERE id = %s",
                             (run.extracted, run.total, run_id))
        with conn.transaction():
            ensure_change_table(conn)
            run.extra.update(loader.finish(conn, run))
            _decide_moves(conn, run)
            run.extra["cases_updated"] = _recompute_cases(conn, run)
            run.status = "partial" if run.quarantined else "succeeded"
            _finish(conn, run, started)
    except BaseException as exc:
        run.status = "failed"
        run.errors.append(f"{type(exc).__name__}: {exc}"[:2000])
        if not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE:
            with conn.transaction():
                # the moves of the pages loaded before wait for ops (nothing else is lost)
                run.extra["owner_moves_held"] = owner_moves.hold_pending(
                    conn, run.run_id, "its run failed before deciding: an ops decision is needed")
                _finish(conn, run, started)
        raise
    return run


def _load_page(conn: Connection, page: Page, transform, loader: PageLoader,
               run: ApiRun) -> None:
    rows: dict[str, Row] = {}
    bad: list[Quarantine] = []
    twice = 0
    # records read count at once; the others only once the page is loaded (a page whose load
    # fails is rolled back: its records are the run's failed ones, portal.run_counts)
    for number, record in enumerate(page.data, start=run.extracted + 1):
        run.extracted += 1
        item = transform(record, source=f"page {run.pages + 1}", number=number)
        if isinstance(item, Quarantine):
            if item.payload is None and item.raw is None:
                item.raw = str(record)[:4000]
            bad.append(item)
        else:
            if item.key in rows:  # the same record twice in one page: the later one counts
                twice += 1
            rows[item.key] = item
    quarantine_rows(conn, run.integration, run.run_id, bad)
    counts = PageCounts()
    if rows:
        ensure_change_table(conn)
        counts = loader.load(conn, rows, run)
    run.quarantined += len(bad) + counts.quarantined
    run.transformed += len(page.data) - len(bad) - counts.quarantined
    run.unchanged += twice
    if not rows:
        return
    run.inserted += counts.inserted
    run.updated += counts.updated
    run.unchanged += counts.unchanged
    run.events += counts.events
    for name, value in counts.extra.items():
        run.extra[name] = run.extra.get(name, 0) + value
    # customers whose products changed: their case totals are recomputed once, at the end
    if not run.all_touched:
        run.touched.update(cif for (cif,) in conn.execute("SELECT cif FROM sync_touched_cifs"))
        if len(run.touched) > MAX_CASE_IDS:
            run.all_touched, run.touched = True, set()


def _decide_moves(conn: Connection, run: ApiRun) -> None:
    """The products this run gives other customers: applied, or held for ops when too many
    (integrations/owner_moves.py); both owners' cases are recomputed with the others."""
    decision = owner_moves.decide(conn, run.run_id, run.inserted + run.updated + run.unchanged)
    run.extra.update(decision.control())
    if not run.all_touched:
        run.touched.update(decision.cifs)
        if len(run.touched) > MAX_CASE_IDS:
            run.all_touched, run.touched = True, set()


def _recompute_cases(conn: Connection, run: ApiRun) -> int:
    """Totals and priority of the cases whose products changed (every case when too many)."""
    if run.all_touched:
        return recompute_cases(conn)
    if not run.touched:
        return 0
    with conn.cursor() as cur, cur.copy("COPY sync_touched_cifs (cif) FROM STDIN") as copy:
        for cif in run.touched:
            copy.write_row((cif,))
    return recompute_totals_of_touched(conn)


def counts_of(run: ApiRun) -> RunCounts:
    """The run's counts (portal.run_counts): records read and neither quarantined, loaded nor
    unchanged failed (the page being loaded when the run failed)."""
    return RunCounts.rest_failed(extracted=run.extracted, quarantined=run.quarantined,
                                 loaded=run.loaded, unchanged=run.unchanged)


def _finish(conn: Connection, run: ApiRun, started: float) -> None:
    counts = counts_of(run)
    conn.execute(
        "UPDATE integration_runs SET status = %s, finished_at = %s, extracted = %s, "
        "transformed = %s, loaded = %s, unchanged = %s, quarantined = %s, failed = %s, "
        "control_totals = %s, errors = %s, duration_ms = %s, cursor_after = %s, "
        "progress_done = %s, progress_total = coalesce(progress_total, %s) WHERE id = %s",
        (run.status, clock.running_now(), counts.extracted, counts.transformed, counts.loaded,
         counts.unchanged, counts.quarantined, counts.failed, Jsonb(run.control()),
         Jsonb(run.errors) if run.errors else None,
         int((time.perf_counter() - started) * 1000), run.cursor_after, run.extracted,
         run.extracted, run.run_id))
    publish_one(conn, "SYNC_COMPLETED", {
        "run_id": run.run_id, "integration": run.integration, "kind": run.kind,
        "status": run.status, "extracted": counts.extracted, "loaded": counts.loaded,
        "failed": counts.failed, "unchanged": counts.unchanged, "events": run.events,
        "full_refresh": run.full, "cursor": run.cursor_after,
        "owner_moves": run.extra.get("owner_moves", 0),
        "owner_moves_held": run.extra.get("owner_moves_held", 0),
    }, correlation_id=run.correlation_id)
