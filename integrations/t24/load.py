"""Load a verified T24 file set into PostgreSQL: streaming, batched, only real changes written.

How a file's records become rows is the set's mapping profile (``verify(…, profile=…)``,
integrations/t24/mapping.py): ``crm-json``'s files are our entities; a mapped profile's files
are its sources — several may feed one entity (AA and LD loans), and related records (bills)
are read before the source whose DPD and amounts they give, counted and never written. The files
are read, validated and encoded for COPY in batches (``batch_size`` records) by
integrations/t24/batches.py — in a reader process of its own one batch ahead (``READ_AHEAD``),
so that on a multi-core host parsing overlaps with PostgreSQL's work. For each entity in load
order, each batch is

1. COPied into a temporary staging table (same column types as the target, plus the record's
   number in the file);
2. cleaned in SQL: keys already loaded from this file (duplicates) and rows whose references do
   not exist (a loan whose cif is not a customer) are removed and quarantined;
3. upserted: ``INSERT … SELECT … FROM staging ON CONFLICT (natural key) DO UPDATE … WHERE
   (columns) IS DISTINCT FROM (EXCLUDED columns)`` — an unchanged row is not written at all; the
   statement records the rows changed with their values before and after (the columns that
   differ) and the rows created with their headline fields (``CREATED_FIELDS``).

Customers' and references' phones, addresses and e-mails (T24's own rows, ``source_system =
'T24'``; what the collection team entered is never touched) are reconciled per owner: rows T24 no
longer sends are deleted, changed ones updated, new ones inserted; a customer whose contacts
changed counts as changed. Loans: the bucket is recomputed by the transform, bucket history gets
a new stay when the bucket changes, and in a **full** set loans absent from the file are closed
(status CLOSED, close_date = business date), never deleted.

Everything of one set is one transaction: a worker killed mid-load leaves nothing behind, and
the same set run again ends in the same state (unchanged rows are not rewritten). The
``integration_runs`` row is written before (status running, its own transaction) and completed
after; bad records go to ``quarantined_records`` with the run.

Memory does not grow with the file: a batch or two of encoded rows; which keys the file held so
far (duplicates, loans absent from a full file) is in PostgreSQL, not in Python — the rows this
load wrote carry its ``last_synced_at``, the other keys (rows left unchanged, rows rejected) are
kept in a temporary table (``seen_<entity>``; empty in a first load). Statements joining a batch
with a large table go through the table's index (``Loader._by_index``): their cost is per batch,
not per table.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from psycopg import Connection, sql
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb

from integrations import owner_moves
from integrations.case_totals import recompute_totals_of_touched
from integrations.changes import (
    CHANGES_TABLE,
    UPSERT_RECORDING_CHANGES,
    change_rows,
    ensure_change_table,
    key_match,
    numeric_columns,
    publish_changes,
    publish_one,
    touch_cifs,
)
from integrations.fields import Quarantine, json_safe
from integrations.t24.batches import (
    CONTACT_OWNERS,
    CONTACT_TABLES,
    RECORD_COLUMN,
    Batch,
    BatchReader,
    contact_columns,
    load_columns,
)
from integrations.t24.formats import NATURAL_KEYS
from integrations.t24.inbox import Inbox
from integrations.t24.manifest import Verification, verify
from integrations.t24.mapping import Profile, ReadContext
from integrations.t24.transform import ControlTotals
from portal import clock
from portal.run_counts import RunCounts
from portal.tracing import current_trace_id

__all__ = ["CONTACT_OWNERS", "CONTACT_TABLES", "load_columns", "load_set", "process_inbox"]

BATCH_SIZE = 20000
# Read, validate and encode the files in a child process one batch ahead of the loader
# (integrations/t24/batches.py); 0: in the loader's own process.
READ_AHEAD = os.environ.get("T24_READ_AHEAD", "1") == "1"


BY_INDEX_ON, BY_INDEX_OFF = "SET LOCAL enable_seqscan = off", "SET LOCAL enable_seqscan = on"
PROBE_ON = f"{BY_INDEX_ON}; SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off"
PROBE_OFF = f"{BY_INDEX_OFF}; SET LOCAL enable_hashjoin = on; SET LOCAL enable_mergejoin = on"

TABLES_WITH_TIMESTAMPS = {"customers", "reference_customers", "collaterals", "loans"}
# (column, referenced table, referenced column): a staged row whose value is not there is
# quarantined instead of breaking the foreign key.
REFERENCES = {
    "reference_customers": (("primary_cif", "customers", "cif"),),
    "collaterals": (("cif", "customers", "cif"),),
    "loans": (("cif", "customers", "cif"),),
    "loan_collaterals": (("account_number", "loans", "account_number"),
                         ("collateral_number", "collaterals", "collateral_number")),
}
# The column holding the customer a row belongs to (the cif of its events, case totals).
OWNER_COLUMNS = {"customers": "cif", "reference_customers": "primary_cif",
                 "collaterals": "cif", "loans": "cif"}
# Products whose customer may change (integrations/owner_moves.py): entity -> product.
MOVABLE = {"loans": "loan"}
# What the changes of a *created* row hold (``{column: {"old": null, "new": …}}``): the row is
# in the database, its event names it and says ``created``; these are its headline fields.
CREATED_FIELDS = {
    "customers": ("name", "status"),
    "reference_customers": ("primary_cif", "relationship_type", "name"),
    "collaterals": ("type", "value"),
    "loans": ("status", "outstanding", "dpd", "bucket"),
    "loan_collaterals": ("account_number", "collateral_number"),
}
@dataclass
class EntityResult:
    entity: str
    extracted: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    closed: int = 0
    contacts_changed: int = 0
    unreadable_keys: int = 0  # quarantined records whose key could not be read
    totals: ControlTotals | None = None
    target: str | None = None  # the entity its rows went to (a mapped source's; else entity)

    def __post_init__(self) -> None:
        self.target = self.target or self.entity

    def as_json(self) -> dict:
        return {"extracted": self.extracted, "inserted": self.inserted, "updated": self.updated,
                "unchanged": self.unchanged, "quarantined": self.quarantined,
                "closed": self.closed, "contacts_changed": self.contacts_changed}


@dataclass
class LoadResult:
    run_id: int
    status: str
    entities: dict[str, EntityResult] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    control_differences: dict = field(default_factory=dict)
    events: int = 0  # CUSTOMER/LOAN/COLLATERAL_UPDATED published
    owner_moves: dict = field(default_factory=dict)  # products given other customers
    kind: str = "sync"  # refresh: one customer's enquiry (integrations/t24/enquiry.py)

    @property
    def changed(self) -> int:
        return sum(e.inserted + e.updated + e.closed for e in self.entities.values())


# Called for every row inserted or changed: (entity, key, inserted, {column: [before, after]}).
ChangeHook = Callable[[str, str, bool, dict], None]


def _ident(name: str) -> sql.Identifier:
    return sql.Identifier(name)


def _cols(names) -> sql.Composed:
    return sql.SQL(", ").join(map(_ident, names))


def _staged_key(entity: str, values: dict) -> str:
    """A staged row's natural key as the transform writes it (``Row.key``)."""
    return "|".join(str(values[k]) for k in NATURAL_KEYS[entity])[:64]


def _key_expr(entity: str, alias: str) -> sql.Composable:
    parts = [sql.SQL("{}.{}").format(_ident(alias), _ident(k)) for k in NATURAL_KEYS[entity]]
    if len(parts) == 1:
        return parts[0]
    return sql.SQL("concat_ws('|', {})").format(sql.SQL(", ").join(parts))


class Loader:
    def __init__(self, conn: Connection, *, business_date: date, mode: str, run_id: int,
                 batch_size: int = BATCH_SIZE, on_change: ChangeHook | None = None,
                 progress: Callable[[int], None] | None = None, publish_events: bool = True,
                 correlation_id: str | None = None):
        self.conn = conn
        self.publish_events = publish_events
        self.correlation_id = correlation_id
        self.events = 0
        self.business_date = business_date
        self.mode = mode
        self.run_id = run_id
        self.batch_size = batch_size
        self.on_change = on_change
        self.progress = progress
        self.now = clock.running_now()
        self.done = 0
        self.quarantine_buffer: list[tuple] = []

    @contextmanager
    def _by_index(self, probe: bool = False):
        """Statements that join a staged batch with a large table: through the table's index,
        never a scan of the whole table per batch (quadratic in the file). The planner's
        statistics of the tables are those from before the load (they grow within this
        transaction: a table empty before a first load holds a million rows at its end), so it
        is told rather than left to guess.

        ``probe``: the statement looks up each staged row in the table (``EXISTS`` / ``NOT
        EXISTS`` on a unique key, the staged batch the outer side): only a nested loop probing
        the index, never a hash or merge of the table's whole index per batch either, which is
        what a table believed empty gets."""
        self.conn.execute(PROBE_ON if probe else BY_INDEX_ON)
        yield  # (an error aborts the whole load's transaction: nothing to restore then)
        self.conn.execute(PROBE_OFF if probe else BY_INDEX_OFF)

    # -- staging -------------------------------------------------------------------------------
    def _prepare(self, entity: str) -> None:
        ensure_change_table(self.conn)
        self.conn.execute(sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS {stg} ON COMMIT DROP AS SELECT {cols}, "
            "0::integer AS {rec} FROM {t} WITH NO DATA").format(
                stg=_ident(f"stg_{entity}"), cols=_cols(load_columns(entity)),
                rec=_ident(RECORD_COLUMN), t=_ident(entity)))
        self.conn.execute(sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS {seen} (key text PRIMARY KEY) ON COMMIT DROP"
        ).format(seen=_ident(f"seen_{entity}")))
        if entity in CONTACT_OWNERS:
            for table in CONTACT_TABLES:
                self.conn.execute(sql.SQL(
                    "CREATE TEMP TABLE IF NOT EXISTS {stg} ON COMMIT DROP AS SELECT {cols} "
                    "FROM {t} WITH NO DATA").format(
                        stg=_ident(f"stg_{entity}_{table}"),
                        cols=_cols(contact_columns(entity, table)), t=_ident(table)))

    def _copy(self, table: str, columns: list[str], data: bytes) -> None:
        """Stage COPY text (integrations/t24/batches.py) in ``table`` (emptied first)."""
        self.conn.execute(sql.SQL("TRUNCATE {}").format(_ident(table)))
        if not data:
            return
        with self.conn.cursor() as cur, cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(
                _ident(table), _cols(columns))) as copy:
            copy.write(data)
        # statistics of what was staged: without them the planner guesses and joins badly
        self.conn.execute(sql.SQL("ANALYZE {}").format(_ident(table)))

    # -- quarantine ----------------------------------------------------------------------------
    def quarantine(self, item: Quarantine) -> None:
        self.quarantine_buffer.append((
            "T24", self.run_id, item.entity, item.record_key, item.reason[:2000],
            Jsonb(item.payload) if item.payload is not None else None, item.raw,
            item.source_file, item.line_number if item.line_number is not None
            else item.record_number))
        if len(self.quarantine_buffer) >= 1000:
            self.flush_quarantine()

    def flush_quarantine(self) -> None:
        if not self.quarantine_buffer:
            return
        with self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO quarantined_records (integration, run_id, entity, record_key, "
                "reason, payload, raw, source_file, line_number) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", self.quarantine_buffer)
        self.quarantine_buffer.clear()

    # -- one entity ----------------------------------------------------------------------------
    def load_file(self, entity: str, batches: Iterable[Batch], result: EntityResult) -> None:
        """Load one file's batches (``BatchReader.batches``)."""
        self._prepare(entity)
        for batch in batches:
            result.extracted += batch.records
            result.totals.merge(batch.totals)
            result.quarantined += len(batch.quarantined)
            result.unreadable_keys += batch.unreadable_keys
            for item in batch.quarantined:
                self.quarantine(item)
            if entity == "loans" and batch.bad_keys:  # not closed for being bad
                self.conn.execute(sql.SQL(
                    "INSERT INTO {} (key) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING")
                    .format(_ident(f"seen_{entity}")), (batch.bad_keys,))
            if batch.rows:
                self._load_batch(entity, batch, result)
            self.done += batch.records
            if self.progress:
                self.progress(self.done)
        self.flush_quarantine()

    def account_related(self, batches: Iterable[Batch], result: EntityResult) -> None:
        """A mapped profile's related records (bills): read by the reader (into its
        ReadContext, for the arrangements' derived fields), written nowhere. The valid ones are
        counted unchanged, the bad ones quarantined."""
        for batch in batches:
            result.extracted += batch.records
            result.totals.merge(batch.totals)
            result.quarantined += len(batch.quarantined)
            result.unchanged += batch.records - len(batch.quarantined)
            for item in batch.quarantined:
                self.quarantine(item)
            self.done += batch.records
            if self.progress:
                self.progress(self.done)
        self.flush_quarantine()

    def _load_batch(self, entity: str, batch: Batch, result: EntityResult) -> None:
        columns = load_columns(entity)
        stg = _ident(f"stg_{entity}")
        seen = _ident(f"seen_{entity}")
        self._copy(f"stg_{entity}", [*columns, RECORD_COLUMN], batch.data)
        staged = sql.SQL(", ").join([*(sql.SQL("s.{}").format(_ident(c)) for c in columns),
                                     sql.SQL("s.{}").format(_ident(RECORD_COLUMN))])

        # Whether any staged key is in the table already (never in a first load).
        with self._by_index(probe=True):
            known = self.conn.execute(sql.SQL(
                "SELECT EXISTS (SELECT 1 FROM {stg} s WHERE EXISTS (SELECT 1 FROM {t} t "
                "WHERE {match}))").format(
                    t=_ident(entity), stg=stg,
                    match=key_match(NATURAL_KEYS[entity]))).fetchone()[0]
        # Keys already loaded from this file: the first record won. The rows this load wrote
        # are in the table with its last_synced_at; the other keys (unchanged, rejected) are
        # in seen_<entity>.
        written = sql.SQL("")
        if known:
            written = sql.SQL(" OR EXISTS (SELECT 1 FROM {t} t WHERE {match} AND "
                              "t.last_synced_at = %(now)s)").format(
                t=_ident(entity), match=key_match(NATURAL_KEYS[entity]))
        with self._by_index(probe=True):
            dropped = self.conn.execute(sql.SQL(
                "DELETE FROM {stg} s WHERE EXISTS (SELECT 1 FROM {seen} x WHERE x.key = {k})"
                "{written} RETURNING {staged}").format(
                    stg=stg, seen=seen, k=_key_expr(entity, "s"), written=written,
                    staged=staged), {"now": self.now}).fetchall()
        rejected = len(dropped)
        for row in dropped:
            key = _staged_key(entity, dict(zip(columns, row, strict=False)))
            self._reject(entity, batch, columns, row,
                         f"duplicate {entity} key {key!r} in the file", result)
        # Referential integrity: what a row points to must exist (in this or an earlier load).
        for column, table, target in REFERENCES.get(entity, ()):
            with self._by_index(probe=True):
                missing = self.conn.execute(sql.SQL(
                    "WITH m AS (DELETE FROM {stg} s WHERE NOT EXISTS (SELECT 1 FROM {t} p "
                    "WHERE p.{tc} = s.{c}) RETURNING {staged}), k AS (INSERT INTO {seen} (key) "
                    "SELECT {mk} FROM m ON CONFLICT DO NOTHING) SELECT * FROM m").format(
                        stg=stg, t=_ident(table), tc=_ident(target), c=_ident(column),
                        staged=staged, seen=seen, mk=_key_expr(entity, "m"))).fetchall()
            rejected += len(missing)
            noun = table[:-1].replace("_", " ")
            for row in missing:
                value = row[columns.index(column)]
                self._reject(entity, batch, columns, row,
                             f"{column}: {value!r} is not a known {noun}", result)
        if batch.rows == rejected:
            return
        if entity in MOVABLE and known:  # a product T24 now gives another customer
            with self._by_index(probe=True):
                owner_moves.detect(self.conn, run_id=self.run_id, integration="T24",
                                   product=MOVABLE[entity], staging=f"stg_{entity}")

        all_new = self._upsert(entity, columns, batch.rows - rejected, result, known)
        if not all_new:  # the keys of the rows left unchanged (the others carry last_synced_at)
            self.conn.execute(sql.SQL(
                "INSERT INTO {seen} (key) SELECT {k} FROM {stg} s WHERE NOT EXISTS (SELECT 1 "
                "FROM {chg} c WHERE c.key = {k}) ON CONFLICT DO NOTHING").format(
                    seen=seen, k=_key_expr(entity, "s"), stg=stg, chg=_ident(CHANGES_TABLE)))
        if entity in CONTACT_OWNERS:
            owners, added = self._contacts(entity, batch, all_new, bool(rejected))
            result.contacts_changed += owners
            result.updated += added  # only their contacts changed
            result.unchanged -= added
        if entity == "loans":
            self._bucket_history(all_new)
            touch_cifs(self.conn)
        self._changes_recorded(entity)

    def _reject(self, entity: str, batch: Batch, columns: list[str], staged: tuple,
                reason: str, result: EntityResult) -> None:
        values = dict(zip(columns, staged, strict=False))
        key = _staged_key(entity, values)
        result.quarantined += 1
        result.totals.rows -= 1
        result.totals.quarantined += 1
        for name in result.totals.sums:
            result.totals.sums[name] -= values[name] or 0
        self.quarantine(Quarantine(entity, reason, key,
                                   json_safe(values), None, batch.source_file, None,
                                   staged[-1]))

    def _upsert(self, entity: str, columns: list[str], staged: int,
                result: EntityResult, known: bool) -> bool:
        """Write the staged rows that are new or really changed; they (and only they) land in
        ``sync_changes``: a changed row with ``{column: {old, new}}`` of the columns that
        differ, a created one with its CREATED_FIELDS. A batch none of whose keys is in the
        table yet (a first load) is a plain INSERT: no conflict handling, no rows as they were
        (a key inserted meanwhile by another transaction fails the load, which is retried).
        ``known``: whether some staged key is in the table. Returns whether every staged row
        was new."""
        conn = self.conn
        keys = list(NATURAL_KEYS[entity])
        data = [c for c in columns if c not in keys]
        diff_columns = [c for c in columns if c != "source_system"]
        conn.execute(f"TRUNCATE {CHANGES_TABLE}")
        sets = [sql.SQL("{c} = EXCLUDED.{c}").format(c=_ident(c)) for c in data]
        sets.append(sql.SQL("last_synced_at = EXCLUDED.last_synced_at"))
        if entity in TABLES_WITH_TIMESTAMPS:
            sets.append(sql.SQL("updated_at = crm_now()"))
        numeric = numeric_columns(conn, entity)

        def value(alias: str, column: str) -> sql.Composable:
            ref = sql.SQL("{}.{}").format(_ident(alias), _ident(column))
            return sql.SQL("{}::text").format(ref) if column in numeric else ref

        # {column: {"old", "new"}} of the columns that differ, as scalar expressions (no
        # subquery per row): every column's entry, minus the columns that did not change.
        entries = sql.SQL(", ").join(
            sql.SQL("{name}, CASE WHEN o.{c} IS DISTINCT FROM u.{c} THEN jsonb_build_object("
                    "'old', {old}, 'new', {new}) END").format(
                        name=sql.Literal(c), c=_ident(c), old=value("o", c), new=value("u", c))
            for c in diff_columns)
        unchanged = sql.SQL(", ").join(
            sql.SQL("CASE WHEN o.{c} IS DISTINCT FROM u.{c} THEN NULL ELSE {name} END").format(
                name=sql.Literal(c), c=_ident(c)) for c in diff_columns)
        created = sql.SQL(", ").join(
            sql.SQL("{name}, jsonb_build_object('old', NULL, 'new', {new})").format(
                name=sql.Literal(c), new=value("u", c)) for c in CREATED_FIELDS[entity])
        owner = OWNER_COLUMNS.get(entity)
        params = {
            "t": _ident(entity), "stg": _ident(f"stg_{entity}"), "keys": _cols(keys),
            "cols": _cols(columns), "tk": _key_expr(entity, "t"), "chg": _ident(CHANGES_TABLE),
            "match": key_match(keys),
            "owner": sql.SQL("u.{}").format(_ident(owner)) if owner else sql.SQL("NULL"),
            "created": created}
        if not known:  # every staged row is new (a first load): a plain insert
            conn.execute(sql.SQL("""
                WITH u AS (
                    INSERT INTO {t} AS t ({cols}, last_synced_at)
                    SELECT {cols}, %(now)s FROM {stg}
                    RETURNING {returned}
                )
                INSERT INTO {chg} (key, cif, inserted, changes)
                SELECT {uk}, {owner}, true, jsonb_build_object({created}) FROM u""").format(
                    uk=_key_expr(entity, "u"), returned=_cols(dict.fromkeys(
                        [*keys, *([owner] if owner else []), *CREATED_FIELDS[entity]])),
                    **params), {"now": self.now})
            result.inserted += staged
            return True
        # created rows: their headline fields; changed rows: the columns that differ
        changes = sql.SQL(
            "CASE WHEN u.inserted THEN jsonb_build_object({created}) ELSE "
            "jsonb_build_object({entries}) - array_remove(ARRAY[{unchanged}]::text[], NULL) "
            "END").format(created=created, entries=entries, unchanged=unchanged)
        statement = UPSERT_RECORDING_CHANGES.format(
            sets=sql.SQL(", ").join(sets),
            tcols=sql.SQL(", ").join(sql.SQL("t.{}").format(_ident(c)) for c in diff_columns),
            tdata=sql.SQL(", ").join(sql.SQL("t.{}").format(_ident(c)) for c in data),
            edata=sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(_ident(c)) for c in data),
            changes=changes, **params)
        with self._by_index():
            conn.execute(statement, {"now": self.now})
        inserted, total = conn.execute(
            f"SELECT count(*) FILTER (WHERE inserted), count(*) FROM {CHANGES_TABLE}").fetchone()
        result.inserted += inserted
        result.updated += total - inserted
        result.unchanged += staged - total
        return inserted == staged

    def _contacts(self, entity: str, batch: Batch, all_new: bool = False,
                  rejected: bool = False) -> tuple[int, int]:
        """Reconcile T24's phones/addresses/emails of the batch's owners. Owners whose contacts
        changed are added to ``sync_changes`` with, per kind, the number of T24 rows before and
        after (``{"phones": {"old": 1, "new": 2}}``; same numbers: rows changed in place); a
        customer created by this batch keeps its creation changes only. ``all_new``: every owner
        of the batch was just inserted, so none has T24 contacts yet — they are only inserted
        (an initial load skips the delete and update passes). ``rejected``: some owners of the
        batch were quarantined in SQL; their contacts are dropped from the staging.
        Returns (owners whose contacts changed, of them not otherwise changed)."""
        owner = CONTACT_OWNERS[entity]
        owners_stg = _ident(f"stg_{entity}")
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS sync_contact_changes "
                          "(key text, tbl text, op char) ON COMMIT DROP")
        self.conn.execute("TRUNCATE sync_contact_changes")
        for table, (ident, data) in CONTACT_TABLES.items():
            stg = _ident(f"stg_{entity}_{table}")
            columns = contact_columns(entity, table)
            self._copy(f"stg_{entity}_{table}", columns, batch.contacts.get(table, b""))
            if rejected:
                self.conn.execute(sql.SQL(
                    "DELETE FROM {stg} c WHERE NOT EXISTS (SELECT 1 FROM {owners} s "
                    "WHERE s.{o} = c.{o})").format(stg=stg, owners=owners_stg, o=_ident(owner)))
            if not all_new:
                # one primary per type (a partial unique index): the primary the CRM (or
                # another system) holds stays; T24's row of that type is loaded not primary
                self.conn.execute(sql.SQL(
                    "UPDATE {stg} s SET is_primary = false WHERE s.is_primary AND EXISTS "
                    "(SELECT 1 FROM {t} p WHERE p.{o} = s.{o} AND p.type = s.type "
                    "AND p.is_primary AND p.source_system <> 'T24')").format(
                        stg=stg, t=_ident(table), o=_ident(owner)))
            match = sql.SQL(" AND ").join(
                sql.SQL("p.{c} = s.{c}").format(c=_ident(c)) for c in [owner, *ident])
            params = {
                "t": _ident(table), "stg": stg, "o": _ident(owner), "owners": owners_stg,
                "match": match, "cols": _cols(columns),
                "sets": sql.SQL(", ").join(sql.SQL("{c} = s.{c}").format(c=_ident(c))
                                           for c in data),
                "pdata": sql.SQL(", ").join(sql.SQL("p.{}").format(_ident(c)) for c in data),
                "sdata": sql.SQL(", ").join(sql.SQL("s.{}").format(_ident(c)) for c in data),
            }
            params["tbl"] = sql.Literal(table)
            statements = (
                # gone from T24 (only owners present in this batch, only T24's rows)
                "d", "DELETE FROM {t} p WHERE p.source_system = 'T24' AND p.{o} IN "
                "(SELECT {o} FROM {owners}) AND NOT EXISTS (SELECT 1 FROM {stg} s WHERE {match}) "
                "RETURNING p.{o}",
                # no longer the primary of its type: unset first, so that the rows becoming
                # primary below never meet a second primary of their type
                "u", "UPDATE {t} p SET is_primary = false, last_synced_at = %(now)s, "
                "updated_at = crm_now() FROM {stg} s WHERE p.source_system = 'T24' AND {match} "
                "AND p.is_primary AND (NOT s.is_primary OR p.type IS DISTINCT FROM s.type) "
                "RETURNING p.{o}",
                "u", "UPDATE {t} p SET {sets}, last_synced_at = %(now)s, updated_at = crm_now() "
                "FROM {stg} s WHERE p.source_system = 'T24' AND {match} "
                "AND ({pdata}) IS DISTINCT FROM ({sdata}) RETURNING p.{o}",
                "i", "INSERT INTO {t} ({cols}, source_system, last_synced_at) "
                "SELECT {cols}, 'T24', %(now)s FROM {stg} s WHERE NOT EXISTS "
                "(SELECT 1 FROM {t} p WHERE p.source_system = 'T24' AND {match}) "
                "RETURNING {o}",
            )
            if all_new:
                self.conn.execute(sql.SQL(
                    "INSERT INTO {t} ({cols}, source_system, last_synced_at) "
                    "SELECT {cols}, 'T24', %(now)s FROM {stg}").format(**params),
                    {"now": self.now})
                continue
            for op, statement in zip(statements[::2], statements[1::2], strict=True):
                self.conn.execute(sql.SQL(
                    "WITH w AS (" + statement + ") INSERT INTO sync_contact_changes "
                    "SELECT {o}, {tbl}, {op} FROM w").format(op=sql.Literal(op), **params),
                    {"now": self.now})
        if all_new and not rejected:  # new owners: their creation event says it all
            return batch.contact_owners, 0
        if all_new:
            having = sql.SQL(" OR ").join(
                sql.SQL("EXISTS (SELECT 1 FROM {c} c WHERE c.{o} = s.{o})").format(
                    c=_ident(f"stg_{entity}_{table}"), o=_ident(owner))
                for table in CONTACT_TABLES)
            return self.conn.execute(sql.SQL("SELECT count(*) FROM {owners} s WHERE {having}")
                                     .format(owners=owners_stg, having=having)).fetchone()[0], 0
        owners = self.conn.execute(
            "SELECT count(DISTINCT key) FROM sync_contact_changes").fetchone()[0]
        if not owners:
            return 0, 0
        counts = sql.SQL(" ").join(
            sql.SQL("WHEN {name} THEN (SELECT count(*) FROM {t} p WHERE p.source_system = 'T24' "
                    "AND p.{o} = c.key)").format(name=sql.Literal(table), t=_ident(table),
                                                 o=_ident(owner))
            for table in CONTACT_TABLES)
        added = self.conn.execute(sql.SQL("""
            INSERT INTO {chg} (key, cif, inserted, changes)
            SELECT key, NULL, false,
                   jsonb_object_agg(tbl, jsonb_build_object('old', after - ins + del,
                                                            'new', after))
            FROM (SELECT c.key, c.tbl, c.ins, c.del, CASE c.tbl {counts} END AS after
                  FROM (SELECT key, tbl, count(*) FILTER (WHERE op = 'i') AS ins,
                               count(*) FILTER (WHERE op = 'd') AS del
                        FROM sync_contact_changes GROUP BY key, tbl) c) x
            GROUP BY key
            ON CONFLICT (key) DO UPDATE SET changes = CASE WHEN {chg}.inserted
                THEN {chg}.changes ELSE {chg}.changes || EXCLUDED.changes END
            RETURNING (xmax = 0)""").format(chg=_ident(CHANGES_TABLE), counts=counts)
        ).fetchall()
        if entity == "customers":
            self.conn.execute(f"UPDATE {CHANGES_TABLE} SET cif = key WHERE cif IS NULL")
        else:
            self.conn.execute(f"UPDATE {CHANGES_TABLE} c SET cif = r.primary_cif FROM "
                              "reference_customers r WHERE c.cif IS NULL AND r.ref_cif = c.key")
        return owners, sum(1 for (new,) in added if new)

    def _changes_recorded(self, entity: str) -> None:
        """The batch's changes are in ``sync_changes``: publish their events (outbox, this
        transaction) and hand them to the ``on_change`` hook."""
        if self.publish_events:
            self.events += publish_changes(
                self.conn, entity, source_system="T24", run_id=self.run_id,
                correlation_id=self.correlation_id,
                extra={"business_date": self.business_date.isoformat()})
        if self.on_change:
            for key, inserted, changes in change_rows(self.conn):
                self.on_change(entity, key, inserted, changes)

    def _bucket_history(self, all_new: bool = False) -> None:
        """A new stay in loan_bucket_history for every loan of the batch whose bucket is not
        the one of its open stay (or that has none). ``all_new``: every loan of the batch was
        just inserted, so none has a stay yet (history rows go with their loan)."""
        day = self.business_date
        if all_new:
            self.conn.execute("""
                INSERT INTO loan_bucket_history (account_number, bucket, dpd, from_date)
                SELECT s.account_number, s.bucket, s.dpd, %(day)s FROM stg_loans s""",
                              {"day": day})
            return
        with self._by_index():
            self.conn.execute("""
                UPDATE loan_bucket_history h SET bucket = s.bucket, dpd = s.dpd
                FROM stg_loans s
                WHERE h.account_number = s.account_number AND h.to_date IS NULL
                  AND h.from_date >= %(day)s AND h.bucket <> s.bucket""", {"day": day})
            self.conn.execute("""
                UPDATE loan_bucket_history h SET to_date = %(day)s::date - 1
                FROM stg_loans s
                WHERE h.account_number = s.account_number AND h.to_date IS NULL
                  AND h.from_date < %(day)s AND h.bucket <> s.bucket""", {"day": day})
            self.conn.execute("""
                INSERT INTO loan_bucket_history (account_number, bucket, dpd, from_date)
                SELECT s.account_number, s.bucket, s.dpd, %(day)s FROM stg_loans s
                WHERE NOT EXISTS (SELECT 1 FROM loan_bucket_history h
                                  WHERE h.account_number = s.account_number AND h.to_date IS NULL)
            """, {"day": day})

    def close_absent_loans(self, result: EntityResult) -> None:
        """Full set: open T24 loans that the loans file did not mention are closed (a
        LOAN_UPDATED each, with the status and close date change)."""
        self.conn.execute(f"TRUNCATE {CHANGES_TABLE}")
        result.closed += self.conn.execute(f"""
            WITH closed AS (
                UPDATE loans l SET status = 'CLOSED',
                       close_date = coalesce(l.close_date, %(day)s),
                       last_synced_at = %(now)s, updated_at = crm_now()
                FROM loans o
                WHERE o.id = l.id AND l.source_system = 'T24' AND l.status <> 'CLOSED'
                  AND l.last_synced_at IS DISTINCT FROM %(now)s
                  AND NOT EXISTS (SELECT 1 FROM seen_loans s WHERE s.key = l.account_number)
                RETURNING l.account_number, l.cif, o.status AS old_status, l.close_date,
                          o.close_date AS old_close_date
            )
            INSERT INTO {CHANGES_TABLE} (key, cif, inserted, changes)
            SELECT account_number, cif, false,
                   jsonb_build_object('status', jsonb_build_object('old', old_status,
                                                                   'new', 'CLOSED'))
                   || CASE WHEN old_close_date IS DISTINCT FROM close_date THEN
                        jsonb_build_object('close_date', jsonb_build_object(
                            'old', old_close_date, 'new', close_date))
                      ELSE '{{}}'::jsonb END
            FROM closed""", {"day": self.business_date, "now": self.now}).rowcount
        touch_cifs(self.conn)
        self._changes_recorded("loans")


# entity -> the tables its rows are written to (the entity's own, its contacts, its history)
WRITTEN_TABLES = {
    "customers": ("customers", *CONTACT_TABLES), "reference_customers": ("reference_customers",
                                                                         *CONTACT_TABLES),
    "collaterals": ("collaterals",), "loans": ("loans", "loan_bucket_history"),
    "loan_collaterals": ("loan_collaterals",),
}


def analyze_grown_tables(conn: Connection, result: LoadResult) -> list[str]:
    """In the load's transaction: ANALYZE (from a small sample: ``_tune_session``) the tables
    into which it inserted more than a fifth of what their statistics say they hold (plus
    1,000 rows), so that what runs next — a delta day, the portal's queries — is not planned
    for the empty tables of before a first load; autovacuum refines them after the commit.
    Without it the delta after a first load of 100k loans took 3.4 s instead of 1.2 s (a
    phone number's trigram index probed per staged phone, the tables believed empty).
    Returns the tables analyzed."""
    believed = dict(conn.execute(
        "SELECT relname, greatest(reltuples, 0) FROM pg_class WHERE relkind = 'r' AND "
        "relnamespace = current_schema()::regnamespace AND relname = ANY(%s)",
        (sorted({t for tables in WRITTEN_TABLES.values() for t in tables}),)).fetchall())
    grown: list[str] = []
    inserted: dict[str, int] = {}
    for outcome in result.entities.values():
        inserted[outcome.target] = inserted.get(outcome.target, 0) + outcome.inserted
    for entity, count in inserted.items():
        if count > 0.2 * believed.get(entity, 0) + 1000:
            grown += [t for t in WRITTEN_TABLES.get(entity, ()) if t not in grown]
    for table in grown:
        conn.execute(sql.SQL("ANALYZE {}").format(_ident(table)))
    return grown


def _tune_session(conn: Connection) -> None:
    """Settings of the load's transaction. The load may be re-run whole (one transaction,
    idempotent): no need to wait for the WAL flush at commit. No JIT: a batch's statements
    are estimated costly enough to be compiled, which takes longer than running them. The
    staged batches' statistics (ANALYZE after each COPY) come from a small sample: they only
    steer the joins."""
    conn.execute("SET LOCAL synchronous_commit = off")
    conn.execute("SET LOCAL jit = off")
    conn.execute("SET LOCAL default_statistics_target = 10")
    # A batch's rows are looked up in the large tables by key: a few index and heap pages each,
    # mostly cached (the default 4 prices each as a disk seek, and the planner then prefers to
    # read a million-row table's whole index in order, per batch, to a probe per row).
    conn.execute("SET LOCAL random_page_cost = 1.1")


def _start_run(conn: Connection, verification: Verification, trigger: str,
               triggered_by_id: int | None, retry_of_id: int | None = None,
               attempt: int = 1, correlation_id: str | None = None, kind: str = "sync",
               note: str | None = None) -> int:
    manifest = verification.manifest
    total = sum(entry.records for entry in manifest.files) if manifest else None
    with conn.transaction():
        return conn.execute(
            "INSERT INTO integration_runs (integration, kind, trigger, status, business_date, "
            "mode, started_at, triggered_by_id, retry_of_id, attempt, correlation_id, "
            "progress_done, progress_total, note, trace_id) VALUES ('T24', %s, %s, 'running', "
            "%s, %s, %s, %s, %s, %s, %s, 0, %s, %s, %s) RETURNING id",
            (kind, trigger, manifest.business_date if manifest else None,
             manifest.mode if manifest else None, clock.running_now(), triggered_by_id,
             retry_of_id, attempt, correlation_id, total, note, current_trace_id()),
        ).fetchone()[0]


def run_counts(result: LoadResult) -> RunCounts:
    """The run's counts (portal.run_counts) over its records: inserted or updated are loaded.
    Loans closed because a full file no longer lists them are no record of the files: they are
    in the control totals (``entities.loans.closed``), not in the counts."""
    entities = result.entities.values()
    return RunCounts(extracted=sum(e.extracted for e in entities),
                     quarantined=sum(e.quarantined for e in entities),
                     loaded=sum(e.inserted + e.updated for e in entities),
                     unchanged=sum(e.unchanged for e in entities))


def _finish_run(conn: Connection, run_id: int, result: LoadResult, started: float,
                counts: RunCounts, control: dict, total_amount: Decimal | None) -> None:
    with conn.transaction():
        conn.execute(
            "UPDATE integration_runs SET status = %s, finished_at = %s, extracted = %s, "
            "transformed = %s, loaded = %s, unchanged = %s, quarantined = %s, failed = %s, "
            "control_totals = %s, errors = %s, duration_ms = %s, total_amount = %s, "
            "progress_done = CASE WHEN %s IN ('succeeded', 'partial') THEN progress_total "
            "ELSE progress_done END WHERE id = %s",
            (result.status, clock.running_now(), counts.extracted, counts.transformed,
             counts.loaded, counts.unchanged, counts.quarantined, counts.failed,
             Jsonb(control), Jsonb(result.errors) if result.errors else None,
             int((time.perf_counter() - started) * 1000), total_amount, result.status, run_id))


def _sync_completed(conn: Connection, result: LoadResult, counts: RunCounts,
                    manifest, correlation_id: str | None, moves: dict | None = None) -> None:
    publish_one(conn, "SYNC_COMPLETED", {
        "run_id": result.run_id, "integration": "T24", "kind": result.kind,
        "status": result.status,
        "business_date": manifest.business_date if manifest else None,
        "extracted": counts.extracted, "loaded": counts.loaded,
        "failed": counts.failed, "unchanged": counts.unchanged,
        "events": result.events, "full_refresh": bool(manifest and manifest.mode == "full"),
        **(moves or {}),
    }, correlation_id=correlation_id)


def _decide_moves(conn: Connection, result: LoadResult) -> owner_moves.Decision:
    """The loans this set gives other customers: applied, or held for ops when too many
    (integrations/owner_moves.py); both owners' cases are recomputed with the others."""
    received = 0
    for outcome in result.entities.values():
        if outcome.target in MOVABLE:
            received += outcome.inserted + outcome.updated + outcome.unchanged
    decision = owner_moves.decide(conn, result.run_id, received)
    owner_moves.touch(conn, decision.cifs)
    return decision


def _progress_writer(run_id: int, total: int, progress, progress_conn):
    if progress is None and progress_conn is None:
        return None
    last = [0.0]

    def write(done: int) -> None:
        if progress_conn is not None:
            now = time.monotonic()
            if now - last[0] >= 1.0 or done >= total:
                last[0] = now
                progress_conn.execute("UPDATE integration_runs SET progress_done = %s "
                                      "WHERE id = %s", (done, run_id))
        if progress is not None:
            progress(done, total)

    return write


def _load_files(conn: Connection, loader: Loader, reader: BatchReader, files, profile: Profile,
                manifest, result: LoadResult, control: dict) -> None:
    """Every file of the set, in order, through the loader (the load's transaction)."""
    _tune_session(conn)
    for entry, _path in files:
        # the file's source; its rows go to the entity the profile maps it to
        source, entity = entry.entity, profile.target(entry.entity)
        entity_result = EntityResult(source, totals=ControlTotals(entity), target=entity)
        result.entities[source] = entity_result
        if profile.entity_of(source) is None:  # related records: read, counted
            loader.account_related(reader.batches(source), entity_result)
        else:
            loader.load_file(entity, reader.batches(source), entity_result)
        if (entity == "loans" and manifest.mode == "full"
                and profile.last_source_of("loans") == source):
            unreadable = sum(r.unreadable_keys for r in result.entities.values()
                             if r.target == "loans")
            if unreadable:
                # A loan we could not read is not absent: closing would be a guess.
                result.errors.append(f"absent loans not closed: {unreadable} loan records "
                                     "without a readable account number")
            else:
                loader.close_absent_loans(entity_result)
        differences = entity_result.totals.compare(entry.control_totals)
        if differences:
            result.control_differences[source] = differences
        control["entities"][source] = {
            **entity_result.as_json(), "manifest_records": entry.records,
            "manifest_totals": {k: str(v) for k, v in entry.control_totals.items()},
            "loaded_totals": {k: str(v) for k, v in entity_result.totals.sums.items()},
            "differences": differences,
        }


def _conclude(conn: Connection, loader: Loader, result: LoadResult, control: dict, manifest,
              update_cases: bool, correlation_id: str | None) -> RunCounts:
    """After the files, in their transaction: statistics, owner moves, case totals and
    SYNC_COMPLETED. Returns the run's counts."""
    control["analyzed"] = analyze_grown_tables(conn, result)
    moves = _decide_moves(conn, result)
    result.owner_moves = moves.control()
    control.update(result.owner_moves)
    if update_cases:
        control["cases_updated"] = recompute_totals_of_touched(conn)
    result.events = loader.events
    control["events"] = loader.events
    counts = run_counts(result)
    result.status = "partial" if counts.quarantined else "succeeded"
    _sync_completed(conn, result, counts, manifest, correlation_id, moves.control())
    return counts


def _rejected(conn: Connection, verification: Verification, result: LoadResult,
              started: float, correlation_id: str | None) -> LoadResult:
    """A set that did not verify: the run fails with the reasons, nothing else is written (but
    SYNC_COMPLETED with status failed)."""
    result.status = "failed"
    result.errors = verification.errors
    with conn.transaction():
        _sync_completed(conn, result, RunCounts(), verification.manifest, correlation_id)
    _finish_run(conn, result.run_id, result, started, RunCounts(), {"rejected": True}, None)
    return result


def load_set(conn: Connection, verification: Verification, *, trigger: str = "manual",
             triggered_by_id: int | None = None, batch_size: int = BATCH_SIZE,
             on_change: ChangeHook | None = None,
             progress: Callable[[int, int], None] | None = None,
             publish_events: bool = True, update_cases: bool = True,
             retry_of_id: int | None = None, attempt: int = 1,
             correlation_id: str | None = None,
             progress_conn: Connection | None = None, kind: str = "sync",
             note: str | None = None, read_ahead: bool | None = None) -> LoadResult:
    """Load a verified set (``manifest.verify``; made with ``count=False``, its record counts
    are checked here while the reader starts on the files) on a psycopg connection. A set that
    did not verify is not loaded: the run is recorded as failed with the reasons, nothing else is
    written (but SYNC_COMPLETED with status failed). Returns the counts per entity; the run row
    holds the same.

    ``progress_conn`` (a second autocommit connection): the run row's ``progress_done`` is
    written on it while the load runs (at most once a second), for the ops page.

    In the data's transaction: CUSTOMER_UPDATED / LOAN_UPDATED / COLLATERAL_UPDATED for every
    row inserted or really changed (``publish_events``), the case totals of the customers whose
    loans changed (``update_cases``), and SYNC_COMPLETED."""
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise ValueError("load_set needs a connection with no transaction in progress")
    started = time.perf_counter()
    run_id = _start_run(conn, verification, trigger, triggered_by_id, retry_of_id, attempt,
                        correlation_id, kind, note)
    result = LoadResult(run_id, "running", kind=kind)
    if not verification.ok:
        return _rejected(conn, verification, result, started, correlation_id)
    manifest = verification.manifest
    total = sum(entry.records for entry in manifest.files)
    loader = Loader(conn, business_date=manifest.business_date, mode=manifest.mode,
                    run_id=run_id, batch_size=batch_size, on_change=on_change,
                    progress=_progress_writer(run_id, total, progress, progress_conn),
                    publish_events=publish_events, correlation_id=correlation_id)
    control: dict = {"mode": manifest.mode, "entities": {}}
    files = verification.files()
    profile = verification.profile
    control["mapping"] = profile.describe()
    context = ReadContext(manifest.business_date)
    try:
        with BatchReader([(entry.entity, path) for entry, path in files], batch_size,
                         READ_AHEAD if read_ahead is None else read_ahead, profile,
                         context) as reader:
            if not verification.counted:  # counted here while the reader starts on the files
                verification.count_records()
                if not verification.ok:
                    return _rejected(conn, verification, result, started, correlation_id)
            with conn.transaction():
                _load_files(conn, loader, reader, files, profile, manifest, result, control)
                counts = _conclude(conn, loader, result, control, manifest, update_cases,
                                   correlation_id)
    except BaseException as exc:
        result.status = "failed"
        result.errors = [f"{type(exc).__name__}: {exc}"[:2000]]
        if not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE:
            _finish_run(conn, run_id, result, started, RunCounts(), control, None)
        raise
    loans = [r for r in result.entities.values() if r.target == "loans"]
    total_amount = sum((r.totals.sums.get("outstanding") or 0 for r in loans), Decimal("0.00")) \
        if loans else None
    _finish_run(conn, run_id, result, started, counts, control, total_amount)
    return result


def process_inbox(conn: Connection, inbox, *, trigger: str = "schedule",
                  triggered_by_id: int | None = None, include_stale: bool = False,
                  business_date: date | None = None, profile: Profile | None = None,
                  **kwargs) -> list[LoadResult | str]:
    """Deal with every complete set waiting in the inbox, oldest business date first: claim it,
    verify it against its manifest, then load it and move it to processed/, or move it whole to
    rejected/ (with reason.json) when it contradicts its manifest or was processed before.
    ``include_stale`` also re-runs sets a killed worker left in work/; ``business_date`` limits
    the run to that date's sets; ``profile``: the mapping the files are read with (default
    crm-json). Returns one LoadResult per loaded or rejected set ("duplicate: <set id>" for a
    set seen before)."""

    inbox = inbox if isinstance(inbox, Inbox) else Inbox(inbox)
    inbox.ensure()
    outcomes: list[LoadResult | str] = []
    claimed = inbox.stale_claims() if include_stale else []
    if business_date is not None:
        claimed = [s for s in claimed if s.business_date == business_date]
    for pending in inbox.pending():
        if business_date is not None and pending.business_date != business_date:
            continue
        taken = inbox.claim(pending)
        if taken is not None:
            claimed.append(taken)
    for file_set in claimed:
        if inbox.already_processed(file_set):
            inbox.mark_rejected(file_set, ["this set (name and sha256) was processed before"],
                                duplicate=True)
            outcomes.append(f"duplicate: {file_set.set_id}")
            continue
        verification = verify_set(file_set, profile)
        result = load_set(conn, verification, trigger=trigger,
                          triggered_by_id=triggered_by_id, **kwargs)
        if verification.ok:
            inbox.mark_processed(file_set)
        else:
            inbox.mark_rejected(file_set, verification.errors)
        outcomes.append(result)
    return outcomes


def verify_set(file_set, profile: Profile | None = None) -> Verification:
    """A set checked for loading: its record counts are left to ``load_set``."""
    return verify(file_set.manifest_path, profile=profile, count=False)
