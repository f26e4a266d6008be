"""Refresh one customer now: fetch the customer's latest records from each source and apply
them through the daily sync's own transform, loader, change capture and events.

- T24: the per-customer enquiry (integrations/t24/enquiry.py, ``T24_ENQUIRY_URL``), written as
  a one-customer delta file set of the enquiry's mapping profile and loaded by the file sync's
  ``load_set`` (same mapping, contacts, bucket history, events).
- W4: ``GET /api/v1/clients/<cif>/cards`` (W4Client.client_cards); LOS: ``GET
  /api/v1/customers/<cif>/applications`` (LOSClient.customer_applications). Their records are
  the collection endpoints' records: they go through ``transform_card`` / ``CardLoader`` and
  ``transform_application`` / ``ApplicationLoader`` as one page of ``api_sync.sync_pages``
  (``kind = 'refresh'``: the daily sync's cursor is neither read nor moved).
- Each source is its own ``integration_runs`` row of kind ``refresh`` (trigger ``manual``,
  ``triggered_by_id`` the user, the customer in its note): the trace on the ops run pages, with
  the usual counts, quarantine, LOAN_UPDATED / CUSTOMER_UPDATED and SYNC_COMPLETED.

A source is refused — and nothing of it is written (its run row says why) — when ops paused it
(integrations/control.py), when it is down (connection refused, timeout, 5xx after the
refresh's short retries, or its circuit breaker open), when it does not know the customer (404)
or refuses the request (credentials, another 4xx). **The sources that answered are applied**
(each in its own transaction): a refresh reports per source what it applied and what it could
not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask

from integrations import control
from integrations.api_sync import sync_pages
from integrations.changes import capturing_changes
from integrations.http import ApiError, JsonApiClient, Page, Unavailable
from integrations.los.load import ApplicationLoader
from integrations.los.transform import transform_application
from integrations.sync import SyncError, connect, make_client
from integrations.t24.enquiry import T24EnquiryClient, apply_position
from integrations.t24.mapping import load_profile
from integrations.w4.load import CardLoader
from integrations.w4.transform import transform_card
from portal import clock
from portal.tracing import current_trace_id

log = logging.getLogger(__name__)

KIND = "refresh"
# outcome of one source
APPLIED, PAUSED, DOWN, UNKNOWN, REFUSED, NOT_CONFIGURED, FAILED = (
    "applied", "paused", "down", "unknown", "refused", "not_configured", "failed")


@dataclass
class FieldChange:
    table: str  # cards, loan_applications, reference_customers, customers, loans, ...
    key: str
    field: str
    old: object
    new: object
    created: bool = False


@dataclass
class SourceResult:
    integration: str
    status: str
    run_id: int | None = None
    detail: str | None = None  # what the source said, or why it was not asked (English, logs)
    received: int = 0
    changes: list[FieldChange] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == APPLIED

    def as_dict(self) -> dict:
        return {"integration": self.integration, "status": self.status, "run_id": self.run_id,
                "detail": self.detail, "received": self.received,
                "changes": [[c.table, c.key, c.field, _text(c.old), _text(c.new), c.created]
                            for c in self.changes]}


@dataclass
class RefreshOutcome:
    cif: str
    sources: list[SourceResult] = field(default_factory=list)

    @property
    def applied(self) -> list[SourceResult]:
        return [s for s in self.sources if s.ok]

    @property
    def refused(self) -> list[SourceResult]:
        return [s for s in self.sources if not s.ok and s.status != NOT_CONFIGURED]

    @property
    def status(self) -> str:
        """applied (every asked source), partial (some), refused (none)."""
        asked = [s for s in self.sources if s.status != NOT_CONFIGURED]
        if asked and all(s.ok for s in asked):
            return "applied"
        return "partial" if self.applied else "refused"

    def as_dict(self) -> dict:
        return {"cif": self.cif, "status": self.status,
                "sources": [s.as_dict() for s in self.sources]}


def _text(value):
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


@dataclass(frozen=True)
class Source:
    integration: str
    fetch: Callable[[JsonApiClient, str], list[dict]]
    transform: Callable
    loader: Callable


def _t24_client(app: Flask) -> T24EnquiryClient:
    url, key = app.config.get("T24_ENQUIRY_URL"), app.config.get("T24_ENQUIRY_API_KEY")
    if not url or not key:
        raise SyncError("the T24 enquiry is not configured (T24_ENQUIRY_URL, "
                        "T24_ENQUIRY_API_KEY)")
    return T24EnquiryClient(url, key, breaker=control.breaker("T24"))


SOURCES: dict[str, Source] = {
    "T24": Source("T24", lambda client, cif: client.customer_position(cif), None, None),
    "W4": Source("W4", lambda client, cif: client.client_cards(cif), transform_card,
                 CardLoader),
    "LOS": Source("LOS", lambda client, cif: client.customer_applications(cif),
                  transform_application, ApplicationLoader),
}


def refresh_customer(app: Flask, cif: str, *, user_id: int | None = None,
                     correlation_id: str | None = None,
                     sources: tuple[str, ...] | None = None) -> RefreshOutcome:
    """Fetch ``cif`` from every source (``sources``: some of them) and apply what answered."""
    outcome = RefreshOutcome(cif)
    for name in sources or tuple(SOURCES):
        outcome.sources.append(_refresh_one(app, SOURCES[name], cif, user_id, correlation_id))
    return outcome


def _refresh_one(app: Flask, source: Source, cif: str, user_id: int | None,
                 correlation_id: str | None) -> SourceResult:
    name = source.integration
    note = f"customer {cif}"
    if control.is_paused(name):
        return _refused(app, name, PAUSED, "paused by ops", cif, user_id, correlation_id,
                        "skipped")
    try:
        client = _t24_client(app) if name == "T24" else make_client(app, name)
    except SyncError as exc:
        return SourceResult(name, NOT_CONFIGURED, detail=str(exc))
    client.timeout = app.config["REFRESH_HTTP_TIMEOUT"]
    client.retries = app.config["REFRESH_HTTP_RETRIES"]
    client.max_backoff = 1.0
    try:
        records = source.fetch(client, cif)
    except Unavailable as exc:
        return _refused(app, name, DOWN, str(exc), cif, user_id, correlation_id, "failed")
    except ApiError as exc:
        if exc.status == 404:
            return _refused(app, name, UNKNOWN, exc.remote_message or str(exc), cif, user_id,
                            correlation_id, "skipped")
        return _refused(app, name, REFUSED, str(exc), cif, user_id, correlation_id, "failed")
    finally:
        client.close()
    if name == "T24":
        return _apply_t24(app, records, cif, user_id, correlation_id)
    page = Page(data=records, cursor=None, next_cursor=None, total=len(records), number=1)
    try:
        with capturing_changes() as captured, connect(app) as conn:
            run = sync_pages(conn, integration=name, pages=lambda _cursor: iter([page]),
                             transform=source.transform, loader=source.loader(),
                             trigger="manual", triggered_by_id=user_id,
                             correlation_id=correlation_id, kind=KIND, note=note)
    except Exception as exc:  # noqa: BLE001 - the source's run row says failed; report it
        log.exception("customer refresh failed to apply", extra={"integration": name,
                                                                  "cif": cif})
        return SourceResult(name, FAILED, detail=f"{type(exc).__name__}: {exc}"[:500],
                            received=len(records))
    changes = [FieldChange(table, key, column, (value or {}).get("old"),
                           (value or {}).get("new"), inserted)
               for table, key, _owner, inserted, diff in captured
               for column, value in sorted((diff or {}).items())]
    return SourceResult(name, APPLIED, run_id=run.run_id, received=len(records),
                        changes=changes, detail=run.status)


def _apply_t24(app: Flask, position: dict, cif: str, user_id: int | None,
               correlation_id: str | None) -> SourceResult:
    changes: list[FieldChange] = []

    def on_change(entity: str, key: str, inserted: bool, diff: dict) -> None:
        for column, values in sorted(diff.items()):
            old, new = (values if isinstance(values, list | tuple) and len(values) == 2
                        else (None, values))
            changes.append(FieldChange(entity, key, column, old, new, inserted))

    received = len(position["body"])
    try:
        profile = load_profile(app.config.get("T24_ENQUIRY_PROFILE")
                               or app.config.get("T24_MAPPING_PROFILE") or "crm-json")
        with connect(app) as conn:
            result = apply_position(conn, position, profile, cif=cif, triggered_by_id=user_id,
                                    correlation_id=correlation_id, on_change=on_change)
    except ApiError as exc:  # a record the profile cannot read: nothing loaded
        return _refused(app, "T24", REFUSED, str(exc), cif, user_id, correlation_id, "failed")
    except Exception as exc:  # noqa: BLE001 - the run row says failed; report it
        log.exception("customer refresh failed to apply", extra={"integration": "T24",
                                                                  "cif": cif})
        return SourceResult("T24", FAILED, detail=f"{type(exc).__name__}: {exc}"[:500],
                            received=received)
    if result.status == "failed":
        return SourceResult("T24", FAILED, run_id=result.run_id,
                            detail="; ".join(result.errors)[:500], received=received)
    return SourceResult("T24", APPLIED, run_id=result.run_id, received=received,
                        changes=changes, detail=result.status)


def _refused(app: Flask, name: str, status: str, detail: str, cif: str, user_id: int | None,
             correlation_id: str | None, run_status: str) -> SourceResult:
    """The run row of a source that was not applied (nothing else written)."""
    run_id = None
    try:
        with connect(app) as conn:
            now = clock.running_now()
            run_id = conn.execute(
                "INSERT INTO integration_runs (integration, kind, trigger, status, started_at, "
                "finished_at, duration_ms, triggered_by_id, correlation_id, note, errors, "
                "trace_id) VALUES (%s, %s, 'manual', %s, %s, %s, 0, %s, %s, %s, "
                "jsonb_build_array(%s::text), %s) RETURNING id",
                (name, KIND, run_status, now, now, user_id, correlation_id,
                 f"customer {cif}: {status}", detail[:2000],
                 current_trace_id())).fetchone()[0]
    except Exception:  # noqa: BLE001 - the refusal itself is still reported
        log.warning("could not record the refused refresh", exc_info=True)
    log.warning("customer refresh refused by a source",
                extra={"integration": name, "cif": cif, "status": status, "detail": detail})
    return SourceResult(name, status, run_id=run_id, detail=detail[:500])
