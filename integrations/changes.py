"""Set-based change capture and event publishing for the bank-sync loaders (T24, W4, LOS).

The loaders work on a psycopg 3 connection with COPY into a staging table. Here:

- :func:`upsert_changes` — one statement per batch: ``INSERT … SELECT FROM staging ON CONFLICT
  (natural key) DO UPDATE … WHERE (data) IS DISTINCT FROM (new data)``, in a CTE beside the rows as
  they were, so that every row inserted or really changed lands in the temporary table
  ``sync_changes`` (key, owner cif, inserted, ``{column: {"old": …, "new": …}}``) without a
  round trip per row. Unchanged rows are not written and leave no trace.
- :func:`publish_changes` — one ``INSERT INTO events … SELECT FROM sync_changes`` (the outbox, in
  the caller's transaction): CUSTOMER_UPDATED / LOAN_UPDATED / COLLATERAL_UPDATED with the
  changed fields. Payloads follow ``portal/events/catalog.py`` (money as decimal strings, dates as
  ``YYYY-MM-DD``); the tests validate every published payload against the catalog.
- :func:`publish_one` — a single event (SYNC_COMPLETED), validated by the catalog first.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from psycopg import Connection, sql
from psycopg.types.json import Jsonb

from portal import clock
from portal.events.catalog import get_event_type, validate_payload
from portal.events.publish import to_json
from portal.tracing import current_traceparent

CHANGES_TABLE = "sync_changes"
# entity -> (event type, aggregate type, payload key of the aggregate id, prefix of change keys)
EVENTS_BY_ENTITY = {
    "customers": ("CUSTOMER_UPDATED", "customer", "cif", ""),
    "reference_customers": ("CUSTOMER_UPDATED", "customer", "ref_cif", "reference."),
    "collaterals": ("COLLATERAL_UPDATED", "collateral", "collateral_number", ""),
    "loans": ("LOAN_UPDATED", "loan", "account_number", ""),
    "cards": ("LOAN_UPDATED", "loan", "account_number", ""),
}

_numeric_cache: dict[str, set[str]] = {}


def _ident(name: str) -> sql.Identifier:
    return sql.Identifier(name)


def ensure_change_table(conn: Connection) -> None:
    """The per-transaction scratch tables (dropped at commit)."""
    conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {CHANGES_TABLE} (key text PRIMARY KEY, "
                 "cif text, inserted boolean NOT NULL, changes jsonb NOT NULL) ON COMMIT DROP")
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS sync_touched_cifs (cif text PRIMARY KEY) "
                 "ON COMMIT DROP")


def numeric_columns(conn: Connection, table: str) -> set[str]:
    """Columns of ``table`` that hold money/decimals (sent as strings in event payloads)."""
    if table not in _numeric_cache:
        rows = conn.execute("SELECT column_name FROM information_schema.columns WHERE "
                            "table_schema = current_schema() AND table_name = %s AND "
                            "data_type = 'numeric'", (table,)).fetchall()
        _numeric_cache[table] = {name for (name,) in rows}
    return _numeric_cache[table]


def key_expr(keys, alias: str) -> sql.Composable:
    parts = [sql.SQL("{}.{}").format(_ident(alias), _ident(k)) for k in keys]
    if len(parts) == 1:
        return parts[0]
    return sql.SQL("concat_ws('|', {})").format(sql.SQL(", ").join(parts))


def key_match(keys, table: str = "t", staged: str = "s") -> sql.Composable:
    """``t.k1 = s.k1 AND …``: a staged row's natural key equals a table row's."""
    return sql.SQL(" AND ").join(
        sql.SQL("{t}.{k} = {s}.{k}").format(t=_ident(table), s=_ident(staged), k=_ident(k))
        for k in keys)


def _json_value(conn, table: str, alias: str, column: str) -> sql.Composable:
    ref = sql.SQL("{}.{}").format(_ident(alias), _ident(column))
    if column in numeric_columns(conn, table):
        return sql.SQL("{}::text").format(ref)
    return ref


# Upsert a staging table into its table, writing only rows whose data differ, and record each
# written row in sync_changes: {t} the table, {stg} the staging table, {keys} / {cols} column
# lists, {sets} the DO UPDATE assignments, {tdata} / {edata} the data columns of the row and of
# EXCLUDED, {tk} the key expression, {tcols} the compared columns (the old row "o", the written
# "u"), {match} the staged row's key = the table row's (``key_match``), {owner} the row's
# customer, {changes} what a written row's change record holds. The rows as they were are read
# by a lookup per staged row (LATERAL … LIMIT 1, which the planner cannot turn into a join):
# a batch is small beside the table, and a merge join read a million-row table's whole index
# per batch.
UPSERT_RECORDING_CHANGES = sql.SQL("""
    WITH o AS (
        SELECT t.* FROM {stg} s CROSS JOIN LATERAL (
            SELECT {tk} AS key, {tcols} FROM {t} t WHERE {match} LIMIT 1) t
    ), u AS (
        INSERT INTO {t} AS t ({cols}, last_synced_at)
        SELECT {cols}, %(now)s FROM {stg}
        ON CONFLICT ({keys}) DO UPDATE SET {sets}
        WHERE ({tdata}) IS DISTINCT FROM ({edata})
        RETURNING {tk} AS key, (xmax = 0) AS inserted, {tcols}
    )
    INSERT INTO {chg} (key, cif, inserted, changes)
    SELECT u.key, {owner}, u.inserted, {changes}
    FROM u LEFT JOIN o ON o.key = u.key""")


_capture: ContextVar[list | None] = ContextVar("sync_change_capture", default=None)


@contextmanager
def capturing_changes() -> Iterator[list[tuple[str, str, str | None, bool, dict]]]:
    """Collect what every ``upsert_changes`` in this context wrote: (table, key, cif, inserted,
    {column: {"old", "new"}}) per row changed (a customer refresh shows them,
    integrations/refresh.py). One extra read of ``sync_changes`` per upsert, only here."""
    token = _capture.set([])
    try:
        yield _capture.get()
    finally:
        _capture.reset(token)


def upsert_changes(conn: Connection, table: str, staging: str, keys, columns,
                   *, owner: str | None, now: datetime, diff_columns=None,
                   timestamps: bool = True, extra_sets=()) -> tuple[int, int]:
    """Upsert ``staging`` into ``table`` writing only real changes; record them (replacing what
    ``sync_changes`` held). ``columns`` are the staged columns (keys included), ``owner`` the
    column holding the customer (cif) of a row. Returns (inserted, updated)."""
    keys = list(keys)
    data = [c for c in columns if c not in keys]
    diff_columns = [c for c in (diff_columns or columns) if c != "source_system"]
    conn.execute(f"TRUNCATE {CHANGES_TABLE}")
    sets = [sql.SQL("{c} = EXCLUDED.{c}").format(c=_ident(c)) for c in data]
    sets.append(sql.SQL("last_synced_at = EXCLUDED.last_synced_at"))
    if timestamps:
        sets.append(sql.SQL("updated_at = crm_now()"))
    sets += [sql.SQL(s) for s in extra_sets]
    # {column: {"old", "new"}} of the columns that differ, as scalar expressions (no subquery
    # per row): every column's entry, minus the keys of the columns that did not change.
    entries = sql.SQL(", ").join(
        sql.SQL("{name}, CASE WHEN o.{c} IS DISTINCT FROM u.{c} THEN jsonb_build_object("
                "'old', {old}, 'new', {new}) END").format(
                    name=sql.Literal(c), c=_ident(c), old=_json_value(conn, table, "o", c),
                    new=_json_value(conn, table, "u", c))
        for c in diff_columns)
    unchanged = sql.SQL(", ").join(
        sql.SQL("CASE WHEN o.{c} IS DISTINCT FROM u.{c} THEN NULL ELSE {name} END").format(
            name=sql.Literal(c), c=_ident(c))
        for c in diff_columns)
    diff = sql.SQL("jsonb_build_object({entries}) - array_remove(ARRAY[{unchanged}]::text[], "
                   "NULL)").format(entries=entries, unchanged=unchanged)
    statement = UPSERT_RECORDING_CHANGES.format(
        t=_ident(table), stg=_ident(staging), keys=sql.SQL(", ").join(map(_ident, keys)),
        cols=sql.SQL(", ").join(map(_ident, columns)), sets=sql.SQL(", ").join(sets),
        tk=key_expr(keys, "t"), chg=_ident(CHANGES_TABLE), match=key_match(keys),
        tcols=sql.SQL(", ").join(sql.SQL("t.{}").format(_ident(c)) for c in diff_columns),
        tdata=sql.SQL(", ").join(sql.SQL("t.{}").format(_ident(c)) for c in data)
        if data else sql.SQL("NULL"),
        edata=sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(_ident(c)) for c in data)
        if data else sql.SQL("NULL"),
        owner=sql.SQL("u.{}").format(_ident(owner)) if owner else sql.SQL("NULL"),
        changes=diff,
    )
    conn.execute(statement, {"now": now})
    inserted, total = conn.execute(
        f"SELECT count(*) FILTER (WHERE inserted), count(*) FROM {CHANGES_TABLE}").fetchone()
    captured = _capture.get()
    if captured is not None and total:
        captured.extend((table, key, cif, was_inserted, changes) for key, cif, was_inserted, changes
                        in conn.execute(f"SELECT key, cif, inserted, changes FROM {CHANGES_TABLE} "
                                        "ORDER BY key"))
    return inserted, total - inserted


def change_rows(conn: Connection) -> list[tuple[str, bool, dict]]:
    """What ``sync_changes`` holds: (key, inserted, {column: [old, new]})."""
    rows = conn.execute(f"SELECT key, inserted, changes FROM {CHANGES_TABLE} ORDER BY key")
    return [(key, inserted, {c: [v.get("old"), v.get("new")] for c, v in changes.items()})
            for key, inserted, changes in rows]


def touch_cifs(conn: Connection) -> None:
    """Remember the owners of the current changes (their case totals are recomputed)."""
    conn.execute(f"INSERT INTO sync_touched_cifs SELECT DISTINCT cif FROM {CHANGES_TABLE} "
                 "WHERE cif IS NOT NULL ON CONFLICT DO NOTHING")


def uuid7_prefix(at: datetime) -> str:
    """The first 24 characters of UUIDs version 7 (RFC 9562) made at ``at`` by one statement:
    its 48-bit Unix time in milliseconds, the version digit, 12 random bits, the variant and 12
    more random bits. The statement appends a 48-bit counter from a random start
    (:func:`uuid7_counter_start`; RFC 9562 §6.2, method 1): its ids sort after earlier ones and
    in the order they are written, so a bulk insert appends to the primary key's index (as
    ``crm_uuid7()``, migration 0009), and it draws no random number per row (a quarter of the
    cost of writing a load's events)."""
    digits = f"{int(at.timestamp() * 1000):012x}"
    return (f"{digits[:8]}-{digits[8:]}-7{secrets.randbits(12):03x}-"
            f"{0x8000 | secrets.randbits(14):04x}-")


def uuid7_counter_start() -> int:
    """Where a statement's 48-bit counter starts: random, with room for 2**47 rows."""
    return secrets.randbits(47)


def _typed(value) -> sql.Composable:
    """A parameter PostgreSQL can type inside ``jsonb_build_object``."""
    if value is None:
        return sql.SQL("NULL")
    cast = "boolean" if isinstance(value, bool) else "bigint" if isinstance(value, int) \
        else "text"
    return sql.SQL("{}::{}").format(sql.Literal(value), sql.SQL(cast))


def publish_changes(conn: Connection, entity: str, *, source_system: str,
                    run_id: int | None, correlation_id: str | None = None,
                    extra: dict | None = None) -> int:
    """One event per row of ``sync_changes`` (the outbox, caller's transaction). Returns the
    number of events."""
    if entity not in EVENTS_BY_ENTITY:
        return 0
    event_type, aggregate_type, key_field, prefix = EVENTS_BY_ENTITY[entity]
    version = get_event_type(event_type).version
    if prefix:
        changes = sql.SQL("(SELECT jsonb_object_agg({p} || e.k, e.v) FROM "
                          "jsonb_each(c.changes) AS e(k, v))").format(p=sql.Literal(prefix))
    else:
        changes = sql.SQL("c.changes")
    aggregate_id = sql.SQL("c.cif") if aggregate_type == "customer" else sql.SQL("c.key")
    base = {"source_system": source_system, "integration_run_id": run_id, **(extra or {})}
    # one jsonb_build_object per row: the fixed fields are literals of the statement
    fixed = sql.SQL(", ").join(sql.SQL("{}, {}").format(sql.Literal(name), _typed(value))
                               for name, value in base.items())
    now = clock.running_now()
    statement = sql.SQL("""
        INSERT INTO events (id, type, version, aggregate_type, aggregate_id, payload,
                            correlation_id, traceparent, occurred_at)
        SELECT (%(id_prefix)s || lpad(to_hex(%(id_start)s + row_number() OVER ()), 12, '0'))::uuid,
               %(type)s,
               %(version)s, %(aggregate_type)s, {aggregate_id},
               jsonb_build_object({fixed}, {key_field}, c.key, 'cif', c.cif,
                                  'created', c.inserted, 'changes', {changes}),
               %(correlation_id)s, %(traceparent)s, %(now)s
        FROM {chg} c WHERE c.cif IS NOT NULL""").format(
        aggregate_id=aggregate_id, key_field=sql.Literal(key_field), changes=changes,
        chg=_ident(CHANGES_TABLE), fixed=fixed)
    return conn.execute(statement, {
        "id_prefix": uuid7_prefix(now), "id_start": uuid7_counter_start(), "type": event_type,
        "version": version, "aggregate_type": aggregate_type, "correlation_id": correlation_id,
        # one traceparent for the whole statement (no per-row cost)
        "traceparent": current_traceparent(), "now": now}).rowcount


def publish_one(conn: Connection, event_type: str, payload: dict, *,
                correlation_id: str | None = None) -> uuid.UUID:
    """Validate ``payload`` by the catalog and add the event to the outbox (no commit)."""

    data = to_json(payload)
    kind = validate_payload(event_type, data)
    event_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO events (id, type, version, aggregate_type, aggregate_id, payload, "
        "correlation_id, traceparent, occurred_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (event_id, event_type, kind.version, kind.aggregate_type,
         str(data[kind.aggregate_key]), Jsonb(data), correlation_id, current_traceparent(),
         clock.running_now()))
    return event_id


def dumps(value) -> str:
    return json.dumps(value, default=str)
